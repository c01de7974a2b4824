/* io/loop.c: placeholder. */
#include "io/loop.h"
int placeholder_loop;
