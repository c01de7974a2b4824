/*
 * net/api_join_group.c: placeholder while the handler is being written (issue 6).
 */
#include <errno.h>

#include "net/api.h"

int api_join_group_handle(struct api_request *req)
{
	(void)req;
	return -ENOSYS;
}
