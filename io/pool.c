/* io/pool.c: placeholder, being written. */
#include "io/pool.h"
int placeholder_pool;
