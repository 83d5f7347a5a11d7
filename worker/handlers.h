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

struct job_ctx {
	struct db *db;
	const struct job *job;
	struct worker *w;
	const volatile sig_atomic_t *stop;
	/* The runner thread's mail state, NULL until a mail handler makes it
	 * (worker/outbox.h: outbox_get). */
	struct outbox **outbox;
};

struct handler {
	const char *kind;
	int (*run)(struct job_ctx *ctx, struct err *err);
};

const struct handler *handler_find(const char *kind);

int job_noop(struct job_ctx *ctx, struct err *err);
int job_probe(struct job_ctx *ctx, struct err *err);
int job_maintenance(struct job_ctx *ctx, struct err *err);
int job_magic_link(struct job_ctx *ctx, struct err *err);
int job_notify(struct job_ctx *ctx, struct err *err);

#endif
