/* core/crc32c.h: placeholder, being written. */
#pragma once
