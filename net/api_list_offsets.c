/* net/api_list_offsets.c: placeholder, being written. */
int placeholder_api_list_offsets;
