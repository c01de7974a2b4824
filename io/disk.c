/* io/disk.c: placeholder, being written. */
#include "io/disk.h"
int placeholder_disk;
