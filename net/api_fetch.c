/* net/api_fetch.c: placeholder, being written. */
int placeholder_api_fetch;
