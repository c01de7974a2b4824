/* net/api_metadata.c: placeholder, being written. */
int placeholder_api_metadata;
