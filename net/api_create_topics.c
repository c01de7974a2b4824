/* net/api_create_topics.c: placeholder, being written. */
int placeholder_api_create_topics;
