/* net/api_describe_configs.c: placeholder, being written. */
int placeholder_api_describe_configs;
