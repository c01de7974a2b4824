/* net/api.c: placeholder, being written. */
#include "net/api.h"
int placeholder_api;
