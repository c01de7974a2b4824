/* net/conn.c: placeholder, being written. */
#include "net/conn.h"
int placeholder_conn;
