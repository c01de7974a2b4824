/*
 * tools/sluicectl.c: placeholder while the admin tool is being written (issue 6).
 */
#include <stdio.h>

int main(void)
{
	fputs("sluicectl: not written yet\n", stderr);
	return 1;
}
