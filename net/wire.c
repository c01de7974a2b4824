/* net/wire.c: placeholder, being written. */
#include "net/wire.h"
int placeholder_wire;
