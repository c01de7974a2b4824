/*
 * tests/unit/unit.h: the shared main() of the Check unit tests. Each test program
 * builds one Suite for its module and hands it to unit_run(), which runs every test
 * case in a forked child and prints TAP to stdout for Automake's tap-driver, so each
 * case becomes its own PASS/FAIL line in `make check`. A test that cannot run on this
 * machine prints a TAP "# SKIP" line with its reason instead of failing silently.
 */
#ifndef SLUICE_TESTS_UNIT_H
#define SLUICE_TESTS_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A test body for skipped cases: it asserts nothing because it is reported as SKIP. */
static void unit_skipped_body(int _i)
{
	(void)_i;
}
static const TTest unit_skipped_ttest = {"skipped", unit_skipped_body, __FILE__, __LINE__};

/* Adds a case NAME running TEST, expecting it to die of SIGNAL (0: to return), or,
 * when SKIP_REASON is not NULL, a case that Automake's TAP driver reports as
 * "SKIP: reason": Check has no skip result, but it puts the case name into its TAP
 * line, so the "# SKIP" directive rides there. */
static inline void unit_add_case(Suite *suite, const char *name, const TTest *test, int signal,
				 const char *skip_reason)
{
	/* Check keeps the name pointer for the whole run, so labels live here. */
	static char labels[32][320];
	static unsigned label_count;
	TCase *tc;
	if (skip_reason) {
		if (label_count == sizeof(labels) / sizeof(labels[0]))
			abort();
		char *label = labels[label_count++];
		snprintf(label, sizeof(labels[0]), "%s # SKIP %s", name, skip_reason);
		tc = tcase_create(label);
		tcase_add_test(tc, &unit_skipped_ttest);
	} else {
		tc = tcase_create(name);
		tcase_add_test_raise_signal(tc, test, signal);
	}
	tcase_set_timeout(tc, 120);
	suite_add_tcase(suite, tc);
}

static inline int unit_run(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	srunner_set_tap(runner, "-");
	srunner_run_all(runner, CK_SILENT);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
