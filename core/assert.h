/*
 * core/assert.h: sluice's two tiers of assertion. ASSERT() is always compiled in: it
 * guards internal invariants whose failure means the process can no longer be trusted,
 * so it logs the file, line and expression and aborts. DASSERT() is for expensive
 * checks (the *_sanity() walkers) and compiles to nothing unless the build was
 * configured with --enable-debug. Neither is ever used on bytes that came from a client
 * or a file: untrusted input goes through validating functions that return errors.
 */
#ifndef SLUICE_CORE_ASSERT_H
#define SLUICE_CORE_ASSERT_H

#include <stdbool.h>

/* Logs "assertion failed: EXPR at FILE:LINE" through the logger and aborts. */
_Noreturn void assert_fail(const char *expr, const char *file, int line);

#define ASSERT(expr) \
	((__builtin_expect(!!(expr), 1)) ? (void)0 : assert_fail(#expr, __FILE__, __LINE__))

#ifdef SLUICE_DEBUG
#define DASSERT(expr) ASSERT(expr)
#define ASSERT_DEBUG_BUILD true
#else
#define DASSERT(expr) ((void)sizeof(!!(expr)))
#define ASSERT_DEBUG_BUILD false
#endif

#endif
