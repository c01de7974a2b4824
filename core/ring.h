/* core/ring.h: placeholder, being written. */
#pragma once
