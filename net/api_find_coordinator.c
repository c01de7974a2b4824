/*
 * net/api_find_coordinator.c: placeholder while the handler is being written (issue 6).
 */
#include <errno.h>

#include "net/api.h"

int api_find_coordinator_handle(struct api_request *req)
{
	(void)req;
	return -ENOSYS;
}
