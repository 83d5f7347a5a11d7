/* worker/housekeeper.c: one thread per worker process that renews the
 * leases of every job this process holds (every lease_s / 3), gives back
 * expired leases of dead or stalled workers (every maintenance_s) and
 * schedules the periodic jobs. The reaper runs here, not as a job: a job
 * can starve behind a backlog or die with its worker, and then nothing
 * would reap it (concurrent reapers skip each other's rows). Scheduling is
 * an enqueue with a unique key, so any number of workers on any number of
 * hosts keep one copy queued. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/backoff.h"
#include "common/db_deliveries.h"
#include "common/job_kinds.h"
#include "common/limits.h"
#include "common/log.h"
#include "worker/worker.h"

#define LIVE(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A copy of (id, lease token) of every job in flight. */
static int
snapshot(struct worker *w, struct job *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&w->mu);
	for (int r = 0; r < WORKER_THREADS_MAX; r++)
		for (int i = 0; i < w->ninflight[r] && n < max; i++) {
			memset(&out[n], 0, sizeof out[n]);
			out[n].id = w->inflight[r][i].id;
			out[n].lease_token = w->inflight[r][i].lease_token;
			n++;
		}
	pthread_mutex_unlock(&w->mu);
	return n;
}

static int
heartbeat(struct worker *w, struct db *db, struct err *err)
{
	static struct job held[WORKER_THREADS_MAX * JOB_CLAIM_MAX];
	int n = snapshot(w, held, (int)(sizeof held / sizeof held[0])), kept;

	if (n == 0)
		return 0;
	if (db_jobs_heartbeat(db, held, n, LIVE(&w->cfg.worker.lease_s), &kept,
	        err) < 0)
		return -1;
	log_debug("event=leases_renewed held=%d kept=%d", n, kept);
	return 0;
}

static int
schedule(struct worker *w, struct db *db, long long delay_ms,
    struct err *err)
{
	/* Later issues add digests, reports and IMAP sync here, each with a
	 * key that names its period or mailbox. */
	const struct job_kind *k = job_kind_find("maintenance");
	struct job_new j = {
		.kind = "maintenance",
		.priority = k->priority,
		.max_attempts = k->max_attempts,
		.delay_ms = delay_ms,
		.unique_key = "maintenance",
	};
	int64_t id;

	(void)w;
	return db_jobs_enqueue(db, &j, &id, err) < 0 ? -1 : 0;
}

#define REAP_PER_ROUND 1000

/* One transaction: jobs made dead by the reaper end their mail too: a
 * delivery still queued or deferred would otherwise stay so forever. */
static int
reap(struct db *db, struct err *err)
{
	static int64_t dead[REAP_PER_ROUND];
	int requeued = 0, killed = 0, failed = 0;

	if (db_begin(db, err) < 0)
		return -1;
	if (db_jobs_reap(db, REAP_PER_ROUND, &requeued, &killed, dead,
	        err) < 0 ||
	    db_deliveries_fail_jobs(db, killed, dead, "lease expired on the "
	        "job's last attempt (worker died or stalled); the mail may "
	        "or may not have left", &failed, err) < 0 ||
	    db_commit(db, err) < 0) {
		db_rollback(db);
		return -1;
	}
	if (requeued > 0 || killed > 0)
		log_warn("event=leases_expired requeued=%d dead=%d "
		    "deliveries_failed=%d", requeued, killed, failed);
	return 0;
}

static int
connect_db(struct worker *w, struct db **db_r, struct err *err)
{
	struct db_opts o = {
		.url = w->cfg.database.url,
		.app_name = "postern-worker",
		.connect_timeout_s = w->cfg.database.connect_timeout_s,
		.statement_timeout_ms = w->cfg.database.statement_timeout_ms,
		.tries = 1,
		.stop = &w->stop_int,
	};
	return db_open(&o, db_r, err);
}

void *
housekeeper_main(void *arg)
{
	struct worker *w = arg;
	struct db *db = NULL;
	struct err err;
	int64_t next_beat = 0, next_sched = 0, next_reap = 0;
	unsigned fails = 0;
	char q[300];

	while (!w->stop) {
		int64_t t = now_ms();

		if (db == NULL && connect_db(w, &db, &err) < 0) {
			log_warn("event=housekeeper_db_unavailable err=%s",
			    log_quote(q, sizeof q, err.msg));
			backoff_sleep_ms(backoff_delay_ms(fails++, 500,
			    LIMIT_DB_BACKOFF_MAX_MS), &w->stop_int);
			continue;
		}
		fails = 0;
		if (t >= next_beat) {
			if (heartbeat(w, db, &err) < 0)
				goto lost;
			next_beat = t + LIVE(&w->cfg.worker.lease_s) * 1000 / 3;
		}
		if (t >= next_reap) {
			if (reap(db, &err) < 0)
				goto lost;
			next_reap = t + LIVE(&w->cfg.worker.maintenance_s) * 1000;
		}
		if (t >= next_sched) {
			/* Due now; while one is queued or running this is a
			 * no-op, so N workers cause at most N runs an interval. */
			if (schedule(w, db, 0, &err) < 0)
				goto lost;
			next_sched = t + LIVE(&w->cfg.worker.maintenance_s) * 1000;
		}
		backoff_sleep_ms(200, &w->stop_int);
		continue;
lost:
		log_warn("event=housekeeper_error err=%s",
		    log_quote(q, sizeof q, err.msg));
		if (!db_ok(db))
			db_close(&db);
		backoff_sleep_ms(1000, &w->stop_int);
	}
	db_close(&db);
	return NULL;
}

void
housekeeper_release_all(struct worker *w, struct db *db)
{
	static struct job held[WORKER_THREADS_MAX * JOB_CLAIM_MAX];
	int n = snapshot(w, held, (int)(sizeof held / sizeof held[0]));
	int released = 0;
	struct err err;

	for (int i = 0; i < n; i++) {
		int rc = db_jobs_release(db, &held[i], &err);
		if (rc < 0)
			break;
		released += rc;
	}
	if (n > 0)
		log_warn("event=jobs_abandoned held=%d released=%d", n, released);
}
