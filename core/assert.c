/*
 * core/assert.c: the failure path of ASSERT() and DASSERT(): one log line naming the
 * expression and where it failed, then abort() so a core dump holds the state.
 */
#include "core/assert.h"

#include <stdlib.h>

#include "core/logger.h"

_Noreturn void assert_fail(const char *expr, const char *file, int line)
{
	LOG_ERROR("assertion failed: %s at %s:%d", expr, file, line);
	abort();
}
