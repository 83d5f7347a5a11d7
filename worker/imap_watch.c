/* worker/imap_watch.c: the IMAP watcher thread: makes imap_sync jobs run
 * when mail arrives.
 *
 * With [imap] idle = yes it keeps its own IMAP connection in IDLE on the
 * mailbox (re-issued every LIMIT_IMAP_IDLE_S, well under the 29 minutes
 * after which servers may drop an idle client) and enqueues an imap_sync
 * job as soon as the server reports anything. Whatever happens to IDLE, it
 * also enqueues one every [imap] poll_s (the poll fallback), and one at
 * start. The job's unique key "imap_sync:<mailbox>" keeps it to one
 * queued-or-running job however many workers watch. A job already running
 * may have made its last UID SEARCH before the new mail arrived, so when
 * the key is taken the enqueue is repeated every second for a while.
 *
 * IMAP trouble (server down, bad password) is logged and retried with
 * backoff; polling goes on meanwhile, and the job reports its own errors. */
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/backoff.h"
#include "common/db.h"
#include "common/db_jobs.h"
#include "common/job_kinds.h"
#include "common/limits.h"
#include "common/log.h"
#include "mailer/imap.h"
#include "worker/worker.h"

#define RETRY_TAKEN_MS 1000
#define RETRY_TAKEN_TIMES 10

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms unless stopping. */
static void
nap(struct worker *w, int64_t ms)
{
	struct pollfd p = { .fd = w->wake_fd[0], .events = POLLIN };

	if (ms > 0 && !w->stop)
		(void)poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
}

/* 1 enqueued, 0 the key is taken, -1 database trouble (logged). */
static int
enqueue_sync(struct worker *w, struct db *db, const char *mailbox)
{
	const struct job_kind *k = job_kind_find("imap_sync");
	char key[300];
	struct job_new j = {
		.kind = "imap_sync",
		.priority = k != NULL ? k->priority : 0,
		.max_attempts = k != NULL ? k->max_attempts : 0,
		.unique_key = key,
	};
	struct err err = { 0 };
	int64_t id;
	int r;

	snprintf(key, sizeof key, "imap_sync:%s", mailbox);
	if (!db_ok(db) && db_reconnect(db, &err) < 0) {
		log_warn("event=imap_watch_db_error error=%s",
		    LOG_Q(err.msg));
		return -1;
	}
	r = db_jobs_enqueue(db, &j, &id, &err);
	if (r < 0)
		log_warn("event=imap_watch_db_error error=%s",
		    LOG_Q(err.msg));
	(void)w;
	return r;
}

static int
watch_open(struct worker *w, struct imap_conn **c, struct err *err)
{
	const struct cfg *cfg = &w->cfg;
	char secret[IMAP_SECRET_MAX];
	struct imap_opts o;
	int rc;
	uint32_t uv, next;

	rc = imap_opts_from_cfg(&o, cfg, secret, err);
	if (rc == 0)
		rc = imap_open(&o, c, err);
	sodium_memzero(secret, sizeof secret);
	if (rc < 0)
		return -1;
	if (imap_select(*c, cfg->imap.mailbox, &uv, &next, err) < 0 ||
	    !imap_can_idle(*c)) {
		if (err->msg[0] == '\0')
			err_set(err, false, "the server does not offer IDLE");
		imap_close(c);
		return -1;
	}
	return 0;
}

void *
imap_watch_main(void *arg)
{
	struct worker *w = arg;
	const struct cfg *cfg = &w->cfg;
	struct db_opts o = {
		.url = cfg->database.url,
		.app_name = "postern-worker-imap",
		.connect_timeout_s = cfg->database.connect_timeout_s,
		.statement_timeout_ms = cfg->database.statement_timeout_ms,
		.tries = LIMIT_DB_CONNECT_TRIES,
		.stop = &w->stop_int,
	};
	struct imap_conn *c = NULL;
	struct db *db = NULL;
	struct err err = { 0 };
	bool idle = strcmp(cfg->imap.idle, "yes") == 0;
	int64_t next_poll = 0, next_open = 0, open_backoff = 1000;
	int taken_retries = 0;

	while (!w->stop && db_open(&o, &db, &err) < 0) {
		log_warn("event=imap_watch_db_error error=%s",
		    LOG_Q(err.msg));
		nap(w, 5000);
	}
	log_info("event=imap_watch_started mailbox=%s idle=%s poll_s=%d",
	    LOG_Q(cfg->imap.mailbox),
	    idle ? "yes" : "no", cfg->imap.poll_s);
	while (!w->stop) {
		int64_t t = now_ms(), wait;
		bool due = t >= next_poll || taken_retries > 0;

		if (due) {
			int r = enqueue_sync(w, db, cfg->imap.mailbox);

			if (t >= next_poll)
				next_poll = t + (int64_t)cfg->imap.poll_s * 1000;
			if (r == 0 && taken_retries == 0)
				taken_retries = RETRY_TAKEN_TIMES;
			else if (r == 0)
				taken_retries--;
			else
				taken_retries = 0;
		}
		wait = next_poll - now_ms();
		if (taken_retries > 0 && wait > RETRY_TAKEN_MS)
			wait = RETRY_TAKEN_MS;
		if (!idle) {
			nap(w, wait);
			continue;
		}
		if (c == NULL) {
			if (now_ms() < next_open) {
				nap(w, next_open - now_ms() < wait ?
				    next_open - now_ms() : wait);
				continue;
			}
			err_clear(&err);
			if (watch_open(w, &c, &err) < 0) {
				log_warn("event=imap_watch_error error=%s "
				    "retry_ms=%lld note=\"polling every %d s "
				    "meanwhile\"",
				    LOG_Q(err.msg),
				    (long long)open_backoff, cfg->imap.poll_s);
				next_open = now_ms() + open_backoff;
				if (open_backoff < 300000)
					open_backoff *= 2;
				continue;
			}
			open_backoff = 1000;
		}
		if (wait > (int64_t)LIMIT_IMAP_IDLE_S * 1000)
			wait = (int64_t)LIMIT_IMAP_IDLE_S * 1000;
		if (wait < 0)
			wait = 0;
		switch (imap_idle(c, (int)wait, w->wake_fd[0], &err)) {
		case 1:
			log_info("event=imap_idle_activity");
			next_poll = 0;          /* enqueue now */
			break;
		case 0:
			break;
		default:
			log_warn("event=imap_watch_error error=%s",
			    LOG_Q(err.msg));
			imap_close(&c);
			next_open = now_ms() + open_backoff;
			break;
		}
	}
	imap_close(&c);
	db_close(&db);
	return NULL;
}
