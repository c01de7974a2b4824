/* io/uring.c: placeholder. */
#include "io/uring.h"
int placeholder_uring;
