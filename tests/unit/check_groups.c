/*
 * tests/unit/check_groups.c: placeholder while the Check tests of core/groups are being
 * written (issue 6).
 */
#include "core/groups.h"

#include "tests/unit/unit.h"

START_TEST(groups_placeholder)
{
	ck_assert_int_eq(GROUPS_OK, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("groups");
	unit_add_case(s, "placeholder", groups_placeholder, 0, NULL);
	return unit_run(s);
}
