/* net/api_produce.c: placeholder, being written. */
int placeholder_api_produce;
