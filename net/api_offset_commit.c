/*
 * net/api_offset_commit.c: placeholder while the handler is being written (issue 6).
 */
#include <errno.h>

#include "net/api.h"

int api_offset_commit_handle(struct api_request *req)
{
	(void)req;
	return -ENOSYS;
}
