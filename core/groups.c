/*
 * core/groups.c: placeholder while the state machine is being written (issue 6).
 */
#include "core/groups.h"
