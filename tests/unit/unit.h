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
#include <stdlib.h>

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
