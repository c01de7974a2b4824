/* core/broker.c: placeholder, being written. */
#include "core/broker.h"
int placeholder_broker;
