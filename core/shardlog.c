/* core/shardlog.c: placeholder, being written. */
#include "core/shardlog.h"
int placeholder_shardlog;
