/* worker/job_probe.c: the `probe` job records each run in job_probe_runs
 * and then sleeps or fails as its payload asks:
 *   {"tag": "t", "sleep_ms": 200, "fail": "temp", "fail_times": 2}
 * fails temporarily on attempts 1 and 2 and succeeds on the third. */
#include <string.h>

#include "common/backoff.h"
#include "common/db_job_probe_runs.h"
#include "worker/handlers.h"

int
job_probe(struct job_ctx *ctx, struct err *err)
{
	struct probe_plan plan;

	if (db_job_probe_runs_record(ctx->db, ctx->job, ctx->w->id, &plan,
	        err) < 0)
		return -1;
	/* Sleep in slices so SIGTERM's grace period is honoured. */
	for (long long left = plan.sleep_ms; left > 0 && !*ctx->stop;
	     left -= 100)
		backoff_sleep_ms(left < 100 ? left : 100, NULL);
	if (ctx->job->attempts <= plan.fail_times) {
		if (strcmp(plan.fail, "temp") == 0)
			return err_set(err, true, "probe: asked to fail (temp) on "
			    "attempt %d", ctx->job->attempts);
		if (strcmp(plan.fail, "perm") == 0)
			return err_set(err, false, "probe: asked to fail (perm)");
	}
	return 0;
}
