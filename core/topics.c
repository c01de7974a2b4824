/* core/topics.c: placeholder, being written. */
#include "core/topics.h"
int placeholder_topics;
