/* worker/job_maintenance.c: the periodic `maintenance` job prunes finished
 * jobs and old probe runs, and purges the raw bytes of old inbound mail
 * ([ingest] keep_raw_days for mail that became a message, an auto-reply,
 * a bounce or a duplicate; keep_review_days for quarantined, held and
 * rejected mail, which admins review), bounded per run (the next run
 * continues).
 * Expired leases are the housekeeper's (housekeeper.c), so they are given
 * back even while this job waits or its worker is gone. */
#include "common/db_inbound_mail.h"
#include "common/db_job_probe_runs.h"
#include "common/db_jobs.h"
#include "common/log.h"
#include "worker/handlers.h"

#define PRUNE_PER_RUN 10000

int
job_maintenance(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	int keep_done = __atomic_load_n(&cfg->worker.keep_done_s, __ATOMIC_RELAXED);
	int keep_dead = __atomic_load_n(&cfg->worker.keep_dead_s, __ATOMIC_RELAXED);
	int64_t pruned = 0, probes = 0, purged = 0;

	if (db_jobs_prune(ctx->db, keep_done, keep_dead, PRUNE_PER_RUN, &pruned,
	        err) < 0)
		return -1;
	if (db_job_probe_runs_prune(ctx->db, keep_dead, &probes, err) < 0)
		return -1;
	if (db_inbound_purge_raw(ctx->db, cfg->ingest.keep_raw_days,
	        cfg->ingest.keep_review_days, PRUNE_PER_RUN, &purged, err) < 0)
		return -1;
	if (pruned > 0 || probes > 0 || purged > 0)
		log_info("event=jobs_pruned jobs=%lld probe_runs=%lld "
		    "inbound_raw_purged=%lld", (long long)pruned,
		    (long long)probes, (long long)purged);
	return 0;
}
