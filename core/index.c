/* core/index.c: placeholder, being written. */
#include "core/index.h"
int placeholder_index;
