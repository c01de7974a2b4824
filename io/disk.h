/* io/disk.h: placeholder, being written. */
#pragma once
