/* worker/job_noop.c: the `noop` job does nothing. It measures the queue
 * itself (make bench-queue) and checks that a worker is alive. */
#include "worker/handlers.h"

int
job_noop(struct job_ctx *ctx, struct err *err)
{
	(void)ctx;
	(void)err;
	return 0;
}
