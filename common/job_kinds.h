/* common/job_kinds.h: the kinds of job postern knows, with the defaults
 * every enqueuer uses (httpd, posternctl, the worker's scheduler) and the
 * per-process concurrency cap the worker applies. The worker maps each kind
 * to its handler (worker/handlers.c); a job of a kind not listed there goes
 * dead with a clear error. */
#ifndef POSTERN_COMMON_JOB_KINDS_H
#define POSTERN_COMMON_JOB_KINDS_H

struct job_kind {
	const char *name;
	int priority;           /* smaller runs first: people waiting come first */
	int max_attempts;
	int concurrency;        /* at most this many at once per worker; 0: any */
	const char *summary;    /* for --help and metrics */
};

/* The table, ended by an entry with name NULL. */
extern const struct job_kind job_kinds[];

/* The entry for name, or NULL. */
const struct job_kind *job_kind_find(const char *name);
/* Number of entries (without the terminator). */
int job_kinds_count(void);

#endif
