/* worker/handlers.h: one handler per job kind, one file each
 * (worker/job_<kind>.c), listed in handlers.c.
 *
 * A handler runs with no transaction open on ctx->db (the runner's own
 * connection; it may begin and commit its own). It returns 0 when the job
 * is done, or -1 with err set: err->temp = true asks for a retry after
 * backoff, false makes the job dead at once. It must be idempotent: after a
 * crash the same job may run again. It should check *ctx->stop between
 * long steps. */
#ifndef POSTERN_WORKER_HANDLERS_H
#define POSTERN_WORKER_HANDLERS_H

#include "common/db.h"
#include "common/db_jobs.h"
#include "common/err.h"
#include "worker/worker.h"

/* What a mail handler leaves for the runner after an SMTP 2xx instead of
 * writing "sent" itself: the runner records it in the transaction that
 * completes the job, fenced by the job's lease token like the completion,
 * so a batch of mails costs one commit. A crash in between leaves the
 * delivery queued (or deferred) and the job running: after its lease the
 * job runs again and sends the same mail, with the same Message-ID. */
#define JOB_SENT_REPLY_MAX 256
struct job_sent {
	int64_t delivery_id;          /* 0: nothing to record */
	long code;
	char reply[JOB_SENT_REPLY_MAX];
};

struct job_ctx {
	struct db *db;
	const struct job *job;
	struct worker *w;
	const volatile sig_atomic_t *stop;
	/* The runner thread's mail state, NULL until a mail handler makes it
	 * (worker/outbox.h: outbox_get). */
	struct outbox **outbox;
	/* NULL: a mail handler records "sent" at once; else it fills this
	 * and returns 0, and the runner writes it with the completion. */
	struct job_sent *sent;
	/* What the kind's prepare() left for this job (NULL: nothing; the
	 * handler does all its own work). The handler may take it over
	 * (and set ctx->prep = NULL); the runner frees what is left. */
	void *prep;
};

struct handler {
	const char *kind;
	int (*run)(struct job_ctx *ctx, struct err *err);
};

const struct handler *handler_find(const char *kind);

/* Optional, per kind: prepare() is called once per claimed batch, before
 * any of its jobs runs, with that batch's jobs of the kind (ctx->job is
 * NULL), to do their database work together: prep[i] (NULL on entry) gets
 * what run() finds in ctx->prep for jobs[i]. -1 (err set) is only logged:
 * then every job does its own work. prep_free() frees one (NULL-safe). */
struct handler_batch {
	const char *kind;
	int (*prepare)(struct job_ctx *ctx, const struct job *const *jobs,
	    int n, void **prep, struct err *err);
	void (*prep_free)(void *prep);
};
const struct handler_batch *handler_batch_find(const char *kind);

int job_noop(struct job_ctx *ctx, struct err *err);
int job_probe(struct job_ctx *ctx, struct err *err);
int job_maintenance(struct job_ctx *ctx, struct err *err);
int job_magic_link(struct job_ctx *ctx, struct err *err);
int job_notify(struct job_ctx *ctx, struct err *err);
int job_notify_prepare(struct job_ctx *ctx, const struct job *const *jobs,
    int n, void **prep, struct err *err);
void job_notify_prep_free(void *prep);
int job_confirm_sender(struct job_ctx *ctx, struct err *err);
int job_rejection_notice(struct job_ctx *ctx, struct err *err);
int job_urgent_ack(struct job_ctx *ctx, struct err *err);
int job_imap_sync(struct job_ctx *ctx, struct err *err);
int job_release_held(struct job_ctx *ctx, struct err *err);

#endif
