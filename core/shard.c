/* core/shard.c: placeholder, being written. */
#include "core/shard.h"
int placeholder_shard;
