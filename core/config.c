/* core/config.c: placeholder, being written. */
#include "core/config.h"
int placeholder_config;
