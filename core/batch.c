/* core/batch.c: placeholder, being written. */
#include "core/batch.h"
int placeholder_batch;
