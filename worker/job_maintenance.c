/* worker/job_maintenance.c: the periodic `maintenance` job: gives back
 * expired leases (crashed or stalled workers), then prunes finished jobs
 * and old probe runs. Bounded work per run; the next run continues. */
#include "common/db_job_probe_runs.h"
#include "common/db_jobs.h"
#include "common/log.h"
#include "worker/handlers.h"

#define REAP_PER_RUN 1000
#define PRUNE_PER_RUN 10000

int
job_maintenance(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	int keep_done = __atomic_load_n(&cfg->worker.keep_done_s, __ATOMIC_RELAXED);
	int keep_dead = __atomic_load_n(&cfg->worker.keep_dead_s, __ATOMIC_RELAXED);
	int requeued = 0, killed = 0;
	int64_t pruned = 0, probes = 0;

	if (db_jobs_reap(ctx->db, REAP_PER_RUN, &requeued, &killed, err) < 0)
		return -1;
	if (requeued > 0 || killed > 0)
		log_warn("event=leases_expired requeued=%d dead=%d", requeued,
		    killed);
	if (db_jobs_prune(ctx->db, keep_done, keep_dead, PRUNE_PER_RUN, &pruned,
	        err) < 0)
		return -1;
	if (db_job_probe_runs_prune(ctx->db, keep_dead, &probes, err) < 0)
		return -1;
	if (pruned > 0 || probes > 0)
		log_info("event=jobs_pruned jobs=%lld probe_runs=%lld",
		    (long long)pruned, (long long)probes);
	return 0;
}
