/* core/ring.c: placeholder, being written. */
#include "core/ring.h"
int placeholder_ring;
