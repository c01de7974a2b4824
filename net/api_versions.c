/* net/api_versions.c: placeholder, being written. */
int placeholder_api_versions;
