/* worker/main.c: postern-worker, the daemon that runs jobs.
 *
 * Reads the config, checks the database, starts [worker] threads runners
 * (runner.c), the housekeeper (housekeeper.c) and /metrics (metrics.c),
 * then waits for signals. SIGTERM/SIGINT: runners stop claiming, finish
 * the job in hand within grace_s and give the rest back; what is still
 * running after that is given back too, and the process exits 0. SIGHUP:
 * the config file is read again; batch, poll_ms, lease_s, maintenance_s,
 * keep_done_s, keep_dead_s and the log level apply at once, other changes
 * need a restart (and are logged as such). SIGKILL at any moment loses
 * nothing: leases run out and the jobs run again. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/crypto.h"
#include "common/limits.h"
#include "common/log.h"
#include "worker/outbox.h"
#include "worker/worker.h"

static struct worker W;

static void
on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP) {
		W.reload = 1;
	} else if (!W.stop) {
		W.stop = 1;
		W.stop_int = 1;
		if (write(W.wake_fd[1], "x", 1) < 0) {
			/* the pollers still wake at poll_ms */
		}
	}
	errno = saved;
}

static const char help_text[] =
"NAME\n"
"    postern-worker - run postern's jobs: mail out, mail in, digests, reports\n"
"\n"
"SYNOPSIS\n"
"    postern-worker [--config FILE] [--drain]\n"
"\n"
"DESCRIPTION\n"
"    Claims due jobs from the jobs table in PostgreSQL and runs them with\n"
"    [worker] threads threads, each on its own connection. Idle threads wake\n"
"    on NOTIFY postern_jobs and poll every [worker] poll_ms as a fallback.\n"
"    Claimed jobs are leased ([worker] lease_s) and the lease is renewed\n"
"    while they run, so a job whose worker dies runs again elsewhere.\n"
"    Failed jobs are retried with exponential backoff and jitter, up to the\n"
"    kind's max attempts, then kept as dead for inspection\n"
"    (posternctl jobs list --state dead). Several workers, on one or many\n"
"    hosts, may share a database.\n"
"\n"
"    With [imap] username set, an IMAP watcher thread holds the [imap]\n"
"    mailbox in IDLE and enqueues an imap_sync job as soon as mail arrives,\n"
"    and at least every [imap] poll_s seconds; imap_sync ingests the new\n"
"    mail exactly once (see README, \"Incoming mail\"). Not with --drain.\n"
"\n"
"    With [worker] metrics_port set, Prometheus metrics are served on\n"
"    http://[worker] metrics_listen:metrics_port/metrics.\n"
"\n"
"    Logs one logfmt line per event on stderr.\n"
"\n"
"SIGNALS\n"
"    SIGTERM, SIGINT  stop claiming; let running jobs finish within\n"
"                     [worker] grace_s; give back the rest; exit 0.\n"
"    SIGHUP           re-read the config file (a bad file is logged and the\n"
"                     old settings kept). batch, poll_ms, lease_s,\n"
"                     maintenance_s, keep_done_s, keep_dead_s and log level\n"
"                     apply at once; other keys need a restart. The mail\n"
"                     templates ([mail] templates_dir) are read again; a\n"
"                     broken one is logged with file:line and the old\n"
"                     ones kept (at start it is an error: exit 1).\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE   config file (default: $POSTERN_CONFIG, else\n"
"                        " CFG_DEFAULT_PATH ")\n"
"    -d, --drain         run until no job is due, then exit 0 and log\n"
"                        event=drained with the jobs done and the rate\n"
"                        (batch runs from cron, benchmarks)\n"
"    -h, --help          this text\n"
"\n"
"ENVIRONMENT\n"
"    POSTERN_CONFIG, POSTERN_DATABASE_URL, POSTERN_SERVER_KEY (see\n"
"    posternctl --help).\n"
"\n"
"EXIT STATUS\n"
"    0 after a clean stop; 1 bad config or the database could not be\n"
"    reached at startup.\n";

static void
apply_log_level(const struct cfg *cfg)
{
	enum log_level lvl;

	if (log_level_parse(cfg->log.level, &lvl) == 0)
		log_set_level(lvl);
}

#define SET_LIVE(field)                                                     \
	do {                                                                \
		if (W.cfg.worker.field != next->worker.field)               \
			log_info("event=config_changed key=worker." #field     \
			    " from=%d to=%d", W.cfg.worker.field,               \
			    next->worker.field);                                \
		__atomic_store_n(&W.cfg.worker.field, next->worker.field,   \
		    __ATOMIC_RELAXED);                                      \
	} while (0)

/* Applies what can change while running; the rest waits for a restart. */
static void
reload(void)
{
	struct cfg next_cfg, *next = &next_cfg;
	struct err err;
	char q[300];

	if (cfg_load(next, W.config_path, &err) < 0) {
		log_error("event=config_reload_failed err=%s",
		    log_quote(q, sizeof q, err.msg));
		return;
	}
	SET_LIVE(batch);
	SET_LIVE(poll_ms);
	SET_LIVE(lease_s);
	SET_LIVE(retry_base_ms);
	SET_LIVE(retry_max_s);
	SET_LIVE(maintenance_s);
	SET_LIVE(keep_done_s);
	SET_LIVE(keep_dead_s);
	apply_log_level(next);
	/* The mail templates are read again too; a broken one keeps the set
	 * in use (the error names file:line). */
	if (outbox_templates_load(next->mail.templates_dir, &err) < 0)
		log_error("event=templates_reload_failed err=%s",
		    log_quote(q, sizeof q, err.msg));
	else
		log_info("event=templates_loaded dir=%s",
		    log_quote(q, sizeof q, next->mail.templates_dir[0] != '\0'
		        ? next->mail.templates_dir : "(built-in)"));
	if (strcmp(next->database.url, W.cfg.database.url) != 0 ||
	    next->worker.threads != W.cfg.worker.threads ||
	    next->worker.metrics_port != W.cfg.worker.metrics_port)
		log_warn("event=config_needs_restart keys=database.url,"
		    "worker.threads,worker.metrics_port");
	cfg_fini(next);
	log_info("event=config_reloaded");
}

static bool
all_done(struct runner *runners, int n)
{
	for (int i = 0; i < n; i++)
		if (!__atomic_load_n(&runners[i].done, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "drain", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct runner runners[WORKER_THREADS_MAX];
	struct timespec started;
	struct metrics_server *ms = NULL;
	pthread_t hk, watcher;
	bool watching;
	struct sigaction sa;
	struct db *db = NULL;
	struct err err;
	char host[64];
	int c, nthreads;

	log_init("postern-worker");
	while ((c = getopt_long(argc, argv, "c:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': W.config_path = optarg; break;
		case 'd': W.drain = true; break;
		case 'h': fputs(help_text, stdout); return 0;
		default:
			fputs("Try 'postern-worker --help'.\n", stderr);
			return 1;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (try --help)", argv[optind]);
	if (crypto_init(&err) < 0)
		die("%s", err.msg);
	if (cfg_load(&W.cfg, W.config_path, &err) < 0)
		die("%s", err.msg);
	if (cfg_require_server_key(&W.cfg, &err) < 0)
		die("%s", err.msg);
	apply_log_level(&W.cfg);
	cfg_log(&W.cfg);
	/* A broken template override stops the start, not the first mail. */
	if (outbox_templates_load(W.cfg.mail.templates_dir, &err) < 0)
		die("%s", err.msg);
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	snprintf(W.id, sizeof W.id, "%s:%ld", host, (long)getpid());
	pthread_mutex_init(&W.mu, NULL);
	if (pipe(W.wake_fd) != 0)
		die("pipe: %s", strerror(errno));

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;       /* no SA_RESTART: waits wake up */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The database must answer at startup (a clear error otherwise);
	 * later outages are waited out by each thread. */
	struct db_opts o = {
		.url = W.cfg.database.url,
		.app_name = "postern-worker",
		.connect_timeout_s = W.cfg.database.connect_timeout_s,
		.statement_timeout_ms = W.cfg.database.statement_timeout_ms,
		.tries = LIMIT_DB_CONNECT_TRIES,
		.stop = &W.stop_int,
	};
	if (db_open(&o, &db, &err) < 0) {
		if (W.stop)
			return 0;
		die("%s", err.msg);
	}
	if (metrics_start(&W, &ms, &err) < 0)
		die("%s", err.msg);

	nthreads = W.cfg.worker.threads;
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (pthread_create(&hk, NULL, housekeeper_main, &W) != 0)
		die("cannot start the housekeeper thread");
	for (int i = 0; i < nthreads; i++) {
		runners[i].w = &W;
		runners[i].idx = i;
		if (pthread_create(&runners[i].thread, NULL, runner_main,
		        &runners[i]) != 0)
			die("cannot start runner thread %d", i);
	}
	/* Not in --drain mode: a drain ends when the queue is empty, and the
	 * watcher would keep filling it. */
	watching = W.cfg.imap.username[0] != '\0' && !W.drain;
	if (watching && pthread_create(&watcher, NULL, imap_watch_main, &W) != 0)
		die("cannot start the IMAP watcher thread");
	log_info("event=worker_started id=%s threads=%d batch=%d poll_ms=%d "
	    "lease_s=%d", W.id, nthreads, W.cfg.worker.batch,
	    W.cfg.worker.poll_ms, W.cfg.worker.lease_s);

	while (!W.stop) {
		if (W.reload) {
			W.reload = 0;
			reload();
		}
		if (W.drain && all_done(runners, nthreads)) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double s = (double)(now.tv_sec - started.tv_sec) +
			    (double)(now.tv_nsec - started.tv_nsec) / 1e9;
			uint64_t done = 0;
			for (int k = 0; k <= WORKER_KINDS_MAX; k++)
				done += __atomic_load_n(&W.metrics[k].done,
				    __ATOMIC_RELAXED);
			log_info("event=drained jobs_done=%llu seconds=%.3f "
			    "jobs_per_s=%.0f", (unsigned long long)done, s,
			    s > 0 ? (double)done / s : 0.0);
			W.stop = 1;
			W.stop_int = 1;
			break;
		}
		backoff_sleep_ms(W.drain ? 2 : 200, &W.stop_int);
	}

	log_info("event=worker_stopping grace_s=%d", W.cfg.worker.grace_s);
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (all_done(runners, nthreads))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= W.cfg.worker.grace_s) {
			/* Handlers still running: give their jobs back and
			 * leave without them. */
			if (db_ok(db) || db_reconnect(db, &err) == 0)
				housekeeper_release_all(&W, db);
			log_warn("event=worker_grace_expired");
			metrics_stop(&ms);
			db_close(&db);
			log_info("event=worker_stopped");
			_exit(0);
		}
		backoff_sleep_ms(50, NULL);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(runners[i].thread, NULL);
	pthread_join(hk, NULL);
	if (watching)
		pthread_join(watcher, NULL);
	metrics_stop(&ms);
	db_close(&db);
	outbox_templates_unload();
	cfg_fini(&W.cfg);
	log_info("event=worker_stopped");
	return 0;
}
