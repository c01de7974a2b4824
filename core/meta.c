/* core/meta.c: placeholder, being written. */
#include "core/meta.h"
int placeholder_meta;
