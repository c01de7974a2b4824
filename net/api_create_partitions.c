/* net/api_create_partitions.c: placeholder, being written. */
int placeholder_api_create_partitions;
