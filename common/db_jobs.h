/* common/db_jobs.h: the job queue: every statement on the jobs table.
 *
 * Life of a job: enqueue (in the caller's transaction, with NOTIFY
 * postern_jobs) → claim (a short transaction: state running, attempts + 1,
 * a fresh lease token, lease_until) → the handler runs with no transaction
 * open → complete or fail, fenced by the lease token: a worker whose lease
 * ran out and whose job was taken over changes nothing (0 rows) and must
 * drop its result. Failures back off exponentially with jitter; after
 * max_attempts, or on a permanent error, the job is dead with its errors
 * kept. The reaper gives expired leases back (or kills exhausted jobs);
 * pruning deletes finished jobs by age.
 *
 * Done jobs without a once_key are deleted at once unless keep_done_s > 0:
 * the durable record of work done lives in its own tables (deliveries,
 * patient_messages…), and a delete writes less than an update. Done jobs
 * with a once_key stay until pruned, because the key must outlive its
 * window (a digest period, a report month). */
#ifndef POSTERN_COMMON_DB_JOBS_H
#define POSTERN_COMMON_DB_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

#define JOB_KIND_MAX 64
#define JOB_PAYLOAD_MAX 65536         /* the schema's limit too */
#define JOB_KEY_MAX 200
#define JOB_ERROR_MAX 1000            /* bytes of error text kept per attempt */
#define JOB_CLAIM_MAX 500             /* jobs one claim may take */
/* Done jobs with a once_key stay at least this long: longer than the
 * longest window a key names (a report month). */
#define JOB_ONCE_KEEP_S (40LL * 86400)

struct job_new {
	const char *kind;              /* [a-z][a-z0-9_]* */
	const char *payload;           /* a JSON object; NULL: {} */
	int priority;                  /* -100..100, smaller runs first */
	long long delay_ms;            /* run_at = now() + delay (>= 0) */
	int max_attempts;              /* 1..100; 0: the schema's default (10) */
	const char *unique_key;        /* one live (queued/running) job per key */
	const char *once_key;          /* one job per key while the row exists */
};

/* Inserts a job and NOTIFYs, inside whatever transaction db is in (commit
 * makes both visible together). 1: inserted, *id_r = its id. 0: a job
 * holding the same key exists, *id_r = that job's id (or 0 if it vanished
 * meanwhile). -1: err set (a bad kind or payload is a permanent error). */
MUST_CHECK int db_jobs_enqueue(struct db *db, const struct job_new *j,
    int64_t *id_r, struct err *err);

/* n jobs of one kind and payload in one statement (bulk, benchmarks).
 * No keys. *count_r = rows inserted. */
MUST_CHECK int db_jobs_enqueue_many(struct db *db, const char *kind,
    const char *payload, long long n, int priority, int max_attempts,
    int64_t *count_r, struct err *err);

/* A claimed job. Strings are owned by the job; db_jobs_free() frees them. */
struct job {
	int64_t id;
	int64_t lease_token;
	char kind[JOB_KIND_MAX];
	char *payload;                 /* JSON text, NUL-terminated */
	int attempts;                  /* including this one */
	int max_attempts;
	bool exhausted_lease;          /* claimed by the reaper path: see reap */
};

/* Claims up to max (<= JOB_CLAIM_MAX) due jobs in claim order, skipping
 * rows other claimers hold and kinds listed in skip_kinds (nskip entries,
 * for per-kind caps). lease_s: how long the lease lasts. who: "host:pid:t".
 * *jobs_r is a heap array of *n_r jobs (free with db_jobs_free), NULL
 * when none was due. */
MUST_CHECK int db_jobs_claim(struct db *db, int max, int lease_s,
    const char *who, const char *const *skip_kinds, int nskip,
    struct job **jobs_r, int *n_r, struct err *err);
void db_jobs_free(struct job **jobs, int n);

/* Extends the leases of n running jobs by lease_s. *kept_r = how many were
 * still ours; a job missing from the answer was taken over. */
MUST_CHECK int db_jobs_heartbeat(struct db *db, const struct job *jobs, int n,
    int lease_s, int *kept_r, struct err *err);

/* Marks n jobs done (batch). ok[i] = true where the lease still held;
 * false means the completion was refused (lease lost) and nothing changed
 * for that job. keep_done keeps the done rows (for [worker] keep_done_s);
 * otherwise rows without a once_key are deleted. */
MUST_CHECK int db_jobs_complete(struct db *db, const struct job *jobs, int n,
    bool keep_done, bool *ok, struct err *err);

/* Records a failed attempt. permanent, or attempts >= max_attempts: dead.
 * Else queued again after backoff_ms. 1: recorded (*dead_r tells which),
 * 0: the lease was lost (nothing changed), -1: err. */
MUST_CHECK int db_jobs_fail(struct db *db, const struct job *job,
    const char *error, bool permanent, long long backoff_ms, bool *dead_r,
    struct err *err);

/* Gives back a claimed job we did not start (shutdown): queued again with
 * its attempt not counted. 1 / 0 (lease lost) / -1. */
MUST_CHECK int db_jobs_release(struct db *db, const struct job *job,
    struct err *err);

/* Expired leases (a worker died or stalled): back to queued after
 * backoff, or dead when attempts are exhausted. Up to limit rows.
 * *requeued_r and *killed_r count them; dead_ids (NULL, or room for limit
 * ids) gets the ids of the jobs made dead, so the caller can end what
 * they left behind in the same transaction. */
MUST_CHECK int db_jobs_reap(struct db *db, int limit, int *requeued_r,
    int *killed_r, int64_t *dead_ids, struct err *err);

/* Deletes done jobs older than done_s seconds (JOB_ONCE_KEEP_S at least
 * for those with a once_key) and dead jobs older than dead_s, up to limit
 * rows. *deleted_r counts them. */
MUST_CHECK int db_jobs_prune(struct db *db, long long done_s,
    long long dead_s, int limit, int64_t *deleted_r, struct err *err);

/* Per kind and state: count, and the age in seconds of the oldest due
 * queued job. Calls fn once per row. */
struct job_stat {
	const char *kind, *state;
	int64_t count;
	double oldest_due_s;           /* queued only; 0 otherwise */
};
MUST_CHECK int db_jobs_stats(struct db *db,
    int (*fn)(const struct job_stat *s, void *arg), void *arg,
    struct err *err);

/* One job in full, for posternctl jobs show/list. */
struct job_info {
	int64_t id;
	const char *kind, *state, *payload, *unique_key, *once_key,
	    *last_error, *errors, *locked_by;
	int priority, attempts, max_attempts;
	const char *run_at, *created_at, *started_at, *finished_at,
	    *lease_until;
};
/* 1 and fn called once; 0: no such job. */
MUST_CHECK int db_jobs_show(struct db *db, int64_t id,
    int (*fn)(const struct job_info *j, void *arg), void *arg,
    struct err *err);
/* Newest first, optionally one state and/or kind (NULL: any), at most
 * limit rows. */
MUST_CHECK int db_jobs_list(struct db *db, const char *state, const char *kind,
    int limit, int (*fn)(const struct job_info *j, void *arg), void *arg,
    struct err *err);

/* A dead (or queued) job back to queued now, with attempts reset.
 * 1 done, 0 no such job or not in a retryable state. */
MUST_CHECK int db_jobs_retry(struct db *db, int64_t id, struct err *err);
/* A queued job to dead ("cancelled by operator"). Running jobs cannot be
 * cancelled (their worker would not know). 1 done, 0 not queued. */
MUST_CHECK int db_jobs_cancel(struct db *db, int64_t id, struct err *err);

#endif
