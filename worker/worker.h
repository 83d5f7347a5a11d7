/* worker/worker.h: what postern-worker's threads share.
 *
 * main.c owns one struct worker: the config, the stop flags, the table of
 * jobs in flight (for heartbeats and per-kind caps) and the metrics. Runner
 * threads (runner.c) claim and run jobs, each on its own connection; the
 * housekeeper thread (housekeeper.c) renews leases and schedules periodic
 * jobs; metrics.c serves /metrics. */
#ifndef POSTERN_WORKER_WORKER_H
#define POSTERN_WORKER_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/cfg.h"
#include "common/db.h"
#include "common/db_jobs.h"
#include "common/err.h"

#define WORKER_THREADS_MAX 64
#define WORKER_KINDS_MAX 32
#define WORKER_LAT_BUCKETS 11

/* Per-kind counters for /metrics; updated with atomics. Index = position
 * in job_kinds[], and the last slot counts kinds we do not know. */
struct kind_metrics {
	uint64_t claimed, done, failed, dead, refused;
	uint64_t lat_bucket[WORKER_LAT_BUCKETS];   /* cumulative on output */
	uint64_t lat_count;
	uint64_t lat_sum_us;
};

struct worker {
	struct cfg cfg;                /* live settings: batch, poll_ms, log */
	const char *config_path;
	char id[128];                  /* "host:pid" for locked_by */
	volatile sig_atomic_t stop;    /* SIGTERM/SIGINT: stop claiming */
	volatile int stop_int;         /* the same, for db retries */
	volatile sig_atomic_t reload;  /* SIGHUP */
	int wake_fd[2];                /* written once at stop: wakes pollers */
	bool drain;                    /* --drain: runners exit when idle */

	/* Jobs claimed and not yet finished, by runner. Guarded by mu. */
	pthread_mutex_t mu;
	struct job *inflight[WORKER_THREADS_MAX];
	int ninflight[WORKER_THREADS_MAX];
	int running[WORKER_KINDS_MAX + 1];   /* per kind, for caps */

	struct kind_metrics metrics[WORKER_KINDS_MAX + 1];
	uint64_t claims, empty_claims, db_reconnects;
};

/* The index of kind in job_kinds[] (the "unknown" slot if not listed). */
int worker_kind_index(const char *kind);

/* runner.c: one runner thread's body; arg is a struct runner. */
struct outbox;                         /* worker/outbox.h */
struct runner {
	struct worker *w;
	int idx;
	pthread_t thread;
	bool done;                     /* set when the thread has returned */
	/* This thread's mail state (SMTP connection, templates, keys): made
	 * by the first mail job, freed when the thread ends. */
	struct outbox *outbox;
};
void *runner_main(void *arg);

/* housekeeper.c: lease renewal and the scheduler, on its own connection. */
void *housekeeper_main(void *arg);
/* Gives back every job still in flight (after the grace period). */
void housekeeper_release_all(struct worker *w, struct db *db);

/* imap_watch.c: enqueues imap_sync on IDLE activity and every poll_s;
 * started when [imap] username is set. */
void *imap_watch_main(void *arg);

/* metrics.c: /metrics on [worker] metrics_listen:metrics_port. */
struct metrics_server;
MUST_CHECK int metrics_start(struct worker *w, struct metrics_server **ms_r,
    struct err *err);
void metrics_stop(struct metrics_server **msp);
void metrics_observe(struct worker *w, int kind_idx, int64_t us);

#endif
