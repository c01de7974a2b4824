/* net/server.c: placeholder, being written. */
#include "net/server.h"
int placeholder_server;
