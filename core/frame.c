/* core/frame.c: placeholder, being written. */
#include "core/frame.h"
int placeholder_frame;
