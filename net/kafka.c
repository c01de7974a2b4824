/* net/kafka.c: placeholder, being written. */
#include "net/kafka.h"
int placeholder_kafka;
