/* core/producers.c: placeholder, being written. */
#include "core/producers.h"
int placeholder_producers;
