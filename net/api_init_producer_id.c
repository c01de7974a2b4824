/* net/api_init_producer_id.c: placeholder, being written. */
int placeholder_api_init_producer_id;
