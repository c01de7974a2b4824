/* core/crc32c.c: placeholder, being written. */
#include "core/crc32c.h"
int placeholder_crc32c;
