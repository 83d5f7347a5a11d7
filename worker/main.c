/* worker/main.c: postern-worker, the daemon that runs jobs.
 *
 * This is the daemon's frame: config, logging, the database connection
 * (reconnect with backoff), LISTEN for wake-ups with a poll fallback, and
 * signals (SIGTERM/SIGINT stop, SIGHUP reloads the config). The job queue
 * and handlers plug into run_once(). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/crypto.h"
#include "common/db.h"
#include "common/limits.h"
#include "common/log.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;
static volatile int stop_int;  /* mirror of stop_flag for db retries */

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload_flag = 1;
	} else {
		stop_flag = 1;
		stop_int = 1;
	}
}

static const char help_text[] =
"NAME\n"
"    postern-worker - run postern's jobs: mail out, mail in, digests, reports\n"
"\n"
"SYNOPSIS\n"
"    postern-worker [--config FILE]\n"
"\n"
"DESCRIPTION\n"
"    Connects to PostgreSQL, waits for jobs (woken by NOTIFY postern_jobs,\n"
"    and polling every [worker] poll_ms as a fallback) and runs them. Logs\n"
"    one logfmt line per event on stderr. Several workers, on one or many\n"
"    hosts, may share a database.\n"
"\n"
"    SIGTERM or SIGINT: stop taking jobs, let running ones finish within\n"
"    [worker] grace_s, exit 0. SIGHUP: re-read the config file (a bad file\n"
"    is logged and the old settings are kept).\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE   config file (default: $POSTERN_CONFIG, else\n"
"                        " CFG_DEFAULT_PATH ")\n"
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

static int
listen_jobs(struct db *db, struct err *err)
{
	return db_cmd(db, "LISTEN postern_jobs", 0, NULL, err);
}

/* Waits for a NOTIFY or the poll interval. 1: woken by NOTIFY, 0: timeout
 * or signal, -1: connection trouble (err set). */
static int
wait_for_work(struct db *db, int timeout_ms, struct err *err)
{
	PGconn *conn = db_conn(db);
	struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
	PGnotify *n;
	int got = 0;

	if (pfd.fd < 0)
		return err_set(err, true, "database: no socket");
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return err_set_errno(err, true, errno, "poll");
	if (!PQconsumeInput(conn))
		return err_set(err, true, "database: connection lost");
	while ((n = PQnotifies(conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

/* One round of work. The job queue plugs in here. */
static int
run_once(struct db *db, struct err *err)
{
	(void)db;
	(void)err;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	struct sigaction sa;
	struct cfg cfg;
	struct db *db = NULL;
	struct err err;
	char q[300];
	int c;

	log_init("postern-worker");
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
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
	if (cfg_load(&cfg, config_path, &err) < 0)
		die("%s", err.msg);
	if (cfg_require_server_key(&cfg, &err) < 0)
		die("%s", err.msg);
	apply_log_level(&cfg);
	cfg_log(&cfg);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;       /* no SA_RESTART: poll() wakes up */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct db_opts dbo = {
		.url = cfg.database.url,
		.app_name = "postern-worker",
		.connect_timeout_s = cfg.database.connect_timeout_s,
		.statement_timeout_ms = cfg.database.statement_timeout_ms,
		.tries = LIMIT_DB_CONNECT_TRIES,
		.stop = &stop_int,
	};
	if (db_open(&dbo, &db, &err) < 0 || listen_jobs(db, &err) < 0) {
		db_close(&db);
		cfg_fini(&cfg);
		if (stop_flag)
			return 0;
		die("%s", err.msg);
	}
	log_info("event=worker_started threads=%d poll_ms=%d",
	    cfg.worker.threads, cfg.worker.poll_ms);

	while (!stop_flag) {
		if (reload_flag) {
			struct cfg next;

			reload_flag = 0;
			if (cfg_load(&next, config_path, &err) < 0) {
				log_error("event=config_reload_failed err=%s",
				    log_quote(q, sizeof q, err.msg));
			} else {
				/* The connection stays; other settings apply now. */
				cfg_fini(&cfg);
				cfg = next;
				apply_log_level(&cfg);
				cfg_log(&cfg);
				log_info("event=config_reloaded");
			}
		}
		int r = wait_for_work(db, cfg.worker.poll_ms, &err);
		if (r >= 0 && run_once(db, &err) == 0)
			continue;
		if (stop_flag)
			break;
		log_warn("event=db_lost err=%s", log_quote(q, sizeof q, err.msg));
		if (db_reconnect(db, &err) < 0 || listen_jobs(db, &err) < 0) {
			if (stop_flag)
				break;
			log_error("event=db_reconnect_failed err=%s",
			    log_quote(q, sizeof q, err.msg));
			continue;   /* keep trying: the database may come back */
		}
		log_info("event=db_reconnected");
	}
	log_info("event=worker_stopping");
	db_close(&db);
	cfg_fini(&cfg);
	log_info("event=worker_stopped");
	return 0;
}
