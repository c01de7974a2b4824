/*
 * core/coordinator.c: placeholder while the coordinator is being written (issue 6).
 */
#include "core/coordinator.h"
