/* net/api_delete_topics.c: placeholder, being written. */
int placeholder_api_delete_topics;
