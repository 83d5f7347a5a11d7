/* worker/runner.c: a runner thread claims batches of due jobs on its own
 * connection and runs them one after another.
 *
 * Completions are collected and written in one statement per batch (fewer
 * writes per job); failures are written at once. Jobs above a kind's
 * concurrency cap are given back unstarted. On stop, the job in hand
 * finishes and the rest of the batch is given back. A lost connection
 * makes the runner reconnect with backoff; what it held is reclaimed when
 * the leases run out. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/backoff.h"
#include "common/db_deliveries.h"
#include "common/job_kinds.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "worker/handlers.h"
#include "worker/outbox.h"

#define LIVE(p) __atomic_load_n((p), __ATOMIC_RELAXED)
/* Completions of quick jobs wait to be written together, at most this
 * long: a batch of them completes in one statement (and a batch of mails
 * records "sent" in the same transaction). A job that took SLOW_JOB_US or
 * more is written at once (with those waiting), so a crash repeats at
 * most the job in hand plus ~COMPLETE_AFTER_US of quick ones. A mail
 * (compose and one SMTP dialogue on a reused connection, 1-5 ms on an
 * idle machine) counts as quick: repeating it after a crash sends the
 * same mail again, with the same Message-ID. Both are wall time: with 8
 * runners on 2 busy cores a mail takes 10-15 ms, and a 10 ms SLOW_JOB_US
 * made every mail its own commit exactly when the machine was busiest
 * (bench-smtp, 8 sessions: 0.5 -> 0.3 commits per mail). */
#define COMPLETE_AFTER_US 20000
#define SLOW_JOB_US 20000
#define COUNT(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits for a NOTIFY, the stop pipe or timeout_ms. 0 or -1. */
static int
wait_for_work(struct worker *w, struct db *db, int timeout_ms,
    struct err *err)
{
	PGconn *conn = db_conn(db);
	struct pollfd pfd[2] = {
		{ .fd = PQsocket(conn), .events = POLLIN },
		{ .fd = w->wake_fd[0], .events = POLLIN },
	};
	PGnotify *n;

	if (pfd[0].fd < 0)
		return err_set(err, true, "database: no socket");
	if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR)
		return err_set_errno(err, true, errno, "poll");
	if (!PQconsumeInput(conn))
		return err_set(err, true, "database: connection lost");
	while ((n = PQnotifies(conn)) != NULL)
		PQfreemem(n);
	return 0;
}

static int
connect_db(struct runner *r, struct db **db_r, struct err *err)
{
	struct worker *w = r->w;
	struct db_opts o = {
		.url = w->cfg.database.url,
		.app_name = "postern-worker",
		.connect_timeout_s = w->cfg.database.connect_timeout_s,
		.statement_timeout_ms = w->cfg.database.statement_timeout_ms,
		.tries = LIMIT_DB_CONNECT_TRIES,
		.stop = &w->stop_int,
	};

	if (db_open(&o, db_r, err) < 0)
		return -1;
	if (db_cmd(*db_r, "LISTEN postern_jobs", 0, NULL, err) < 0) {
		db_close(db_r);
		return -1;
	}
	return 0;
}

/* The kinds at their cap right now, for the claim to skip. */
static int
capped_kinds(struct worker *w, const char **out)
{
	int n = 0;

	pthread_mutex_lock(&w->mu);
	for (int i = 0; job_kinds[i].name != NULL && i < WORKER_KINDS_MAX; i++)
		if (job_kinds[i].concurrency > 0 &&
		    w->running[i] >= job_kinds[i].concurrency)
			out[n++] = job_kinds[i].name;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Takes a slot of the job's kind; false if the kind is at its cap. */
static bool
take_slot(struct worker *w, int kidx)
{
	const struct job_kind *k = kidx < job_kinds_count() ? &job_kinds[kidx]
	                                                    : NULL;
	bool ok;

	pthread_mutex_lock(&w->mu);
	ok = k == NULL || k->concurrency == 0 || w->running[kidx] < k->concurrency;
	if (ok)
		w->running[kidx]++;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void
drop_slot(struct worker *w, int kidx)
{
	pthread_mutex_lock(&w->mu);
	w->running[kidx]--;
	pthread_mutex_unlock(&w->mu);
}

/* Publishes the batch for the housekeeper's heartbeats (n = 0: none). */
static void
set_inflight(struct runner *r, struct job *jobs, int n)
{
	pthread_mutex_lock(&r->w->mu);
	r->w->inflight[r->idx] = jobs;
	r->w->ninflight[r->idx] = n;
	pthread_mutex_unlock(&r->w->mu);
}

static void
log_err(const char *event, const struct job *j, const struct err *err)
{
	char q[300];

	log_warn("event=%s job=%lld kind=%s attempt=%d/%d temp=%d err=%s", event,
	    (long long)j->id, j->kind, j->attempts, j->max_attempts, err->temp,
	    log_quote(q, sizeof q, err->msg));
}

/* Records the deliveries sent[i] of the jobs whose completion held
 * (ok[i]); inside the completion's transaction. */
static int
record_sent(struct db *db, const struct job_sent *sent, const bool *ok,
    int n, struct err *err)
{
	int64_t ids[JOB_CLAIM_MAX];
	long codes[JOB_CLAIM_MAX];
	const char *replies[JOB_CLAIM_MAX];
	int k = 0, updated;

	for (int i = 0; i < n; i++)
		if (ok[i] && sent[i].delivery_id > 0) {
			ids[k] = sent[i].delivery_id;
			codes[k] = sent[i].code;
			replies[k] = sent[i].reply[0] != '\0' ? sent[i].reply : NULL;
			k++;
		}
	return db_deliveries_record_sent(db, k, ids, codes, replies, &updated,
	    err);
}

/* The general path: completions of done[0..n) and, in the same
 * transaction, the deliveries their handlers left in sent[0..n). */
static int
complete_tx(struct runner *r, struct db *db, const struct job *done,
    const struct job_sent *sent, int n, bool *ok, struct err *err)
{
	bool any_sent = false;

	for (int i = 0; i < n; i++)
		any_sent |= sent[i].delivery_id > 0;
	if (any_sent && db_begin(db, err) < 0)
		return -1;
	if (db_jobs_complete(db, done, n,
	        LIVE(&r->w->cfg.worker.keep_done_s) > 0, ok, err) < 0 ||
	    (any_sent && (record_sent(db, sent, ok, n, err) < 0 ||
	        db_commit(db, err) < 0))) {
		if (any_sent)
			db_rollback(db);
		return -1;
	}
	return 0;
}

/* The common case of a batch of mails in one statement: done jobs that
 * share one lease token are deleted and their deliveries marked sent
 * together (db_deliveries_record_sent_done). Jobs it leaves (a once_key, a
 * lost lease) stay not ok for the general path. */
static int
complete_mail_fast(struct db *db, const struct job *done,
    const struct job_sent *sent, int n, bool *ok, struct err *err)
{
	int64_t jids[JOB_CLAIM_MAX], sjob[JOB_CLAIM_MAX], sids[JOB_CLAIM_MAX];
	long codes[JOB_CLAIM_MAX];
	const char *replies[JOB_CLAIM_MAX];
	int k = 0;

	for (int i = 0; i < n; i++) {
		jids[i] = done[i].id;
		if (sent[i].delivery_id > 0) {
			sjob[k] = done[i].id;
			sids[k] = sent[i].delivery_id;
			codes[k] = sent[i].code;
			replies[k] = sent[i].reply[0] != '\0' ? sent[i].reply : NULL;
			k++;
		}
	}
	return db_deliveries_record_sent_done(db, n, jids, done[0].lease_token,
	    k, sjob, sids, codes, replies, ok, err);
}

/* Writes the completions collected in done[0..n), and with them (one
 * transaction) the deliveries their handlers left in sent[0..n). */
static int
flush_done(struct runner *r, struct db *db, struct job *done,
    struct job_sent *sent, int n, struct err *err)
{
	bool ok[JOB_CLAIM_MAX], any_sent = false, one_token = true;
	int left = 0;

	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		ok[i] = false;
		any_sent |= sent[i].delivery_id > 0;
		one_token &= done[i].lease_token == done[0].lease_token;
	}
	if (any_sent && one_token &&
	    LIVE(&r->w->cfg.worker.keep_done_s) == 0 &&
	    complete_mail_fast(db, done, sent, n, ok, err) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		left += !ok[i];
	if (left == n) {
		if (complete_tx(r, db, done, sent, n, ok, err) < 0)
			return -1;
	} else if (left > 0) {
		/* What the one statement left: the general path. */
		struct job *lj = xcalloc((size_t)left, sizeof *lj);
		struct job_sent *ls = xcalloc((size_t)left, sizeof *ls);
		bool lok[JOB_CLAIM_MAX];
		int m = 0, rc;

		for (int i = 0; i < n; i++)
			if (!ok[i]) {
				lj[m] = done[i];
				ls[m++] = sent[i];
			}
		rc = complete_tx(r, db, lj, ls, left, lok, err);
		m = 0;
		for (int i = 0; i < n && rc == 0; i++)
			if (!ok[i])
				ok[i] = lok[m++];
		free(lj);
		free(ls);
		if (rc < 0)
			return -1;
	}
	memset(sent, 0, (size_t)n * sizeof *sent);
	for (int i = 0; i < n; i++) {
		int k = worker_kind_index(done[i].kind);
		if (ok[i]) {
			COUNT(&r->w->metrics[k].done);
		} else {
			COUNT(&r->w->metrics[k].refused);
			log_warn("event=job_completion_refused job=%lld kind=%s "
			    "reason=lease_lost", (long long)done[i].id,
			    done[i].kind);
		}
	}
	return 0;
}

/* Records a failed attempt: retry after backoff, or dead. */
static int
record_failure(struct runner *r, struct db *db, const struct job *j,
    const struct err *jerr, struct err *err)
{
	int k = worker_kind_index(j->kind);
	long long backoff = backoff_delay_ms((unsigned)(j->attempts - 1),
	    LIVE(&r->w->cfg.worker.retry_base_ms),
	    LIVE(&r->w->cfg.worker.retry_max_s) * 1000LL);
	bool dead = false;
	int rc;

	rc = db_jobs_fail(db, j, jerr->msg, !jerr->temp, backoff, &dead, err);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		COUNT(&r->w->metrics[k].refused);
		log_warn("event=job_failure_refused job=%lld kind=%s "
		    "reason=lease_lost", (long long)j->id, j->kind);
		return 0;
	}
	COUNT(&r->w->metrics[k].failed);
	if (dead) {
		COUNT(&r->w->metrics[k].dead);
		log_err("job_dead", j, jerr);
	} else {
		log_err("job_retry", j, jerr);
	}
	return 0;
}

/* Lets kinds with a batch step (handlers.h: handler_batch) do their
 * database work for all their jobs of the batch at once; prep[i] gets
 * what jobs[i]'s handler will find in ctx->prep. */
static void
prepare_batch(struct runner *r, struct db *db, const struct job *jobs, int n,
    void **prep)
{
	const struct job **sel = xcalloc((size_t)n, sizeof *sel);
	void **out = xcalloc((size_t)n, sizeof *out);
	int *at = xcalloc((size_t)n, sizeof *at);
	char q[300];

	for (int i = 0; i < n; i++) {
		const struct handler_batch *hb = handler_batch_find(jobs[i].kind);
		struct job_ctx ctx = { .db = db, .w = r->w, .stop = &r->w->stop,
			               .outbox = &r->outbox };
		struct err err = { 0 };
		bool seen = false;
		int k = 0;

		if (hb == NULL)
			continue;
		for (int m = 0; m < i && !seen; m++)
			seen = strcmp(jobs[m].kind, jobs[i].kind) == 0;
		if (seen)
			continue;                /* its kind was prepared */
		for (int m = i; m < n; m++)
			if (strcmp(jobs[m].kind, jobs[i].kind) == 0) {
				sel[k] = &jobs[m];
				out[k] = NULL;
				at[k++] = m;
			}
		if (hb->prepare(&ctx, sel, k, out, &err) < 0) {
			log_warn("event=batch_prepare_failed kind=%s count=%d "
			    "err=%s", jobs[i].kind, k,
			    log_quote(q, sizeof q, err.msg));
			for (int m = 0; m < k; m++)
				hb->prep_free(out[m]);
			continue;
		}
		for (int m = 0; m < k; m++)
			prep[at[m]] = out[m];
	}
	free(sel);
	free(out);
	free(at);
}

static void
free_prep(const struct job *jobs, int n, void **prep)
{
	for (int i = 0; i < n; i++)
		if (prep[i] != NULL) {
			handler_batch_find(jobs[i].kind)->prep_free(prep[i]);
			prep[i] = NULL;
		}
}

/* Runs one claimed batch in claim order. The whole batch stays published
 * for heartbeats until the batch ends: done jobs not yet written are still
 * leased to us (renewing a failed or given-back job changes
 * nothing: the renewal is fenced like everything else). -1: the connection
 * failed (err set); what was not written is reclaimed when its lease ends. */
static int
run_batch(struct runner *r, struct db *db, struct job *jobs, int n,
    struct err *err)
{
	struct worker *w = r->w;
	struct job *done = xcalloc((size_t)n, sizeof *done);
	struct job_sent *sent = xcalloc((size_t)n, sizeof *sent);
	void **prep = xcalloc((size_t)n, sizeof *prep);
	int64_t pending_since = 0;
	int ndone = 0, ret = -1;

	set_inflight(r, jobs, n);
	if (!w->stop)
		prepare_batch(r, db, jobs, n, prep);
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		int k = worker_kind_index(j->kind);
		const struct handler *h;
		struct err jerr = { 0 };
		int64_t t0;
		int rc;

		if (w->stop) {
			/* Give back what we have not started. */
			for (int m = i; m < n; m++)
				if (db_jobs_release(db, &jobs[m], err) < 0)
					goto out;
			log_info("event=jobs_released count=%d", n - i);
			break;
		}
		if (!take_slot(w, k)) {
			if (db_jobs_release(db, j, err) < 0)
				goto out;
			continue;
		}
		h = handler_find(j->kind);
		t0 = now_us();
		if (h == NULL) {
			err_set(&jerr, false, "no handler for job kind \"%s\"",
			    j->kind);
			rc = -1;
		} else {
			struct job_ctx ctx = {
				.db = db, .job = j, .w = w, .stop = &w->stop,
				.outbox = &r->outbox, .sent = &sent[ndone],
				.prep = prep[i],
			};
			rc = h->run(&ctx, &jerr);
			prep[i] = ctx.prep;     /* NULL when taken over */
			if (rc != 0)
				memset(&sent[ndone], 0, sizeof sent[ndone]);
		}
		drop_slot(w, k);
		int64_t took = now_us() - t0;
		metrics_observe(w, k, took);
		if (db_ok(db) &&
		    PQtransactionStatus(db_conn(db)) != PQTRANS_IDLE) {
			log_error("event=handler_left_transaction job=%lld kind=%s",
			    (long long)j->id, j->kind);
			db_rollback(db);
		}
		if (rc == 0) {
			if (ndone == 0)
				pending_since = now_us();
			done[ndone++] = *j;       /* payload freed with jobs[] */
			if (took >= SLOW_JOB_US ||
			    now_us() - pending_since >= COMPLETE_AFTER_US) {
				if (flush_done(r, db, done, sent, ndone, err) < 0)
					goto out;
				ndone = 0;
			}
			continue;
		}
		if (!db_ok(db)) {
			*err = jerr;
			err->temp = true;
			goto out;
		}
		if (record_failure(r, db, j, &jerr, err) < 0)
			goto out;
	}
	ret = flush_done(r, db, done, sent, ndone, err);
out:
	set_inflight(r, NULL, 0);
	free_prep(jobs, n, prep);
	free(prep);
	free(done);
	free(sent);
	return ret;
}

void *
runner_main(void *arg)
{
	struct runner *r = arg;
	struct worker *w = r->w;
	struct db *db = NULL;
	struct err err;
	char who[160], q[300];
	unsigned fails = 0;

	snprintf(who, sizeof who, "%s:%d", w->id, r->idx);
	while (!w->stop) {
		struct job *jobs = NULL;
		const char *skip[WORKER_KINDS_MAX];
		int n = 0, nskip;

		if (db == NULL) {
			if (connect_db(r, &db, &err) < 0) {
				if (w->stop)
					break;
				log_warn("event=db_unavailable runner=%d err=%s",
				    r->idx, log_quote(q, sizeof q, err.msg));
				backoff_sleep_ms(backoff_delay_ms(fails++, 500,
				    LIMIT_DB_BACKOFF_MAX_MS), &w->stop_int);
				continue;
			}
			if (fails > 0) {
				COUNT(&w->db_reconnects);
				log_info("event=db_reconnected runner=%d", r->idx);
			}
			fails = 0;
		}
		nskip = capped_kinds(w, skip);
		if (db_jobs_claim(db, LIVE(&w->cfg.worker.batch),
		        LIVE(&w->cfg.worker.lease_s), who, skip, nskip, &jobs, &n,
		        &err) < 0)
			goto lost;
		COUNT(&w->claims);
		if (n == 0) {
			COUNT(&w->empty_claims);
			if (w->drain)
				break;            /* --drain: nothing due, done */
			if (wait_for_work(w, db, LIVE(&w->cfg.worker.poll_ms),
			        &err) < 0)
				goto lost;
			continue;
		}
		for (int i = 0; i < n; i++)
			COUNT(&w->metrics[worker_kind_index(jobs[i].kind)].claimed);
		log_debug("event=jobs_claimed runner=%d count=%d", r->idx, n);
		if (run_batch(r, db, jobs, n, &err) < 0) {
			db_jobs_free(&jobs, n);
			goto lost;
		}
		db_jobs_free(&jobs, n);
		/* Drain NOTIFYs that came while we worked: we claim again
		 * right away anyway. */
		if (!PQconsumeInput(db_conn(db))) {
			err_set(&err, true, "database: connection lost");
			goto lost;
		}
		for (PGnotify *nt; (nt = PQnotifies(db_conn(db))) != NULL;)
			PQfreemem(nt);
		continue;
lost:
		if (db_ok(db) && !err.temp) {
			/* A statement failed but the connection is fine: that is a
			 * bug or a schema mismatch; do not spin on it. */
			log_error("event=runner_error runner=%d err=%s", r->idx,
			    log_quote(q, sizeof q, err.msg));
			backoff_sleep_ms(backoff_delay_ms(fails++, 500,
			    LIMIT_DB_BACKOFF_MAX_MS), &w->stop_int);
			continue;
		}
		log_warn("event=db_lost runner=%d err=%s", r->idx,
		    log_quote(q, sizeof q, err.msg));
		db_close(&db);
		fails = 1;
	}
	db_close(&db);
	outbox_free(&r->outbox);          /* QUITs the thread's SMTP session */
	r->done = true;
	return NULL;
}
