/* worker/ctl_jobs.c: `posternctl jobs …`: look into the queue and steer it
 * (stats, list, show, retry, cancel, enqueue). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_deliveries.h"
#include "common/db_jobs.h"
#include "common/job_kinds.h"
#include "common/mem.h"
#include "worker/ctl.h"

static const char jobs_help[] =
"NAME\n"
"    posternctl jobs - inspect and steer the job queue\n"
"\n"
"SYNOPSIS\n"
"    posternctl jobs stats\n"
"    posternctl jobs list [--state queued|running|done|dead] [--kind KIND]\n"
"                         [--limit N]\n"
"    posternctl jobs show ID\n"
"    posternctl jobs retry ID\n"
"    posternctl jobs cancel ID\n"
"    posternctl jobs enqueue KIND [JSON] [--count N] [--priority P]\n"
"                         [--delay-ms MS] [--max-attempts N]\n"
"                         [--unique-key KEY] [--once-key KEY]\n"
"\n"
"DESCRIPTION\n"
"    Every mail, digest, report and mailbox sync is a job in the jobs\n"
"    table; postern-worker claims and runs them.\n"
"\n"
"    stats    jobs per kind and state, and how long the oldest due job of\n"
"             each kind has waited (seconds).\n"
"    list     newest first (default 50), with state, attempts and the last\n"
"             error.\n"
"    show     one job in full: payload, keys, times, every error.\n"
"    retry    a dead job back to the queue, due now, attempts reset. A mail\n"
"             job's failed delivery is sent again (same Message-ID); a\n"
"             bounced one is not.\n"
"    cancel   a queued job to dead (\"cancelled by operator\"), and a mail\n"
"             job's queued or deferred delivery to failed. Running jobs\n"
"             cannot be cancelled.\n"
"    enqueue  add a job (JSON defaults to {}). Defaults for priority and\n"
"             max attempts come from the kind. With --unique-key, nothing\n"
"             is added while a queued or running job holds the key; with\n"
"             --once-key, nothing is added while any job with the key\n"
"             exists. --count N adds N identical jobs in one statement\n"
"             (no keys). A kind no worker handles is accepted with a\n"
"             warning: the worker will move it to dead.\n"
"\n"
"KINDS\n"
"    noop         does nothing (benchmarks, checks)\n"
"    probe        records each run in job_probe_runs; payload\n"
"                 {\"tag\": T, \"sleep_ms\": N, \"fail\": \"temp\"|\"perm\",\n"
"                 \"fail_times\": K}: an end-to-end check of the workers\n"
"    maintenance  prunes old jobs; scheduled by the workers themselves\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 no such job, not in a state that allows it, or a\n"
"    database error; 2 bad command line.\n"
"\n"
"EXAMPLES\n"
"    posternctl jobs stats\n"
"    posternctl jobs list --state dead --limit 20\n"
"    posternctl jobs retry 4711\n"
"    posternctl jobs enqueue probe '{\"tag\": \"smoke\"}'\n";

enum { OPT_STATE = 1000, OPT_KIND, OPT_LIMIT, OPT_COUNT, OPT_PRIORITY,
       OPT_DELAY, OPT_ATTEMPTS, OPT_UNIQUE, OPT_ONCE };

static int
parse_id(const char *cmd, int argc, char **argv, int64_t *id_r)
{
	struct err err;
	long long v;

	if (argc != 2)
		return ctl_usage(cmd, "want exactly one job id");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(jobs_help, stdout);
		return -1;
	}
	if (parse_i64(argv[1], 1, INT64_MAX, &v, &err) < 0)
		return ctl_usage(cmd, "job id '%s': %s", argv[1], err.msg);
	*id_r = v;
	return CTL_OK;
}

static int
print_stat(const struct job_stat *s, void *arg)
{
	int *n = arg;

	if ((*n)++ == 0)
		printf("%-16s %-8s %10s %14s\n", "KIND", "STATE", "JOBS",
		    "OLDEST_DUE_S");
	printf("%-16s %-8s %10lld %14.1f\n", s->kind, s->state,
	    (long long)s->count, s->oldest_due_s);
	return 0;
}

static int
jobs_stats(struct ctl *ctl, int argc, char **argv)
{
	struct db *db;
	struct err err;
	int n = 0;

	(void)argv;
	if (argc > 1)
		return ctl_usage("jobs stats", "takes no arguments");
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (db_jobs_stats(db, print_stat, &n, &err) < 0)
		return ctl_fail("%s", err.msg);
	if (n == 0)
		puts("the queue is empty");
	return CTL_OK;
}

static int
print_row(const struct job_info *j, void *arg)
{
	int *n = arg;
	char err[61];

	if ((*n)++ == 0)
		printf("%-10s %-14s %-8s %-9s %-32s %s\n", "ID", "KIND", "STATE",
		    "ATTEMPTS", "RUN_AT", "LAST_ERROR");
	str_copy(err, sizeof err, j->last_error);
	for (char *p = err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	printf("%-10lld %-14s %-8s %4d/%-4d %-32s %s\n", (long long)j->id,
	    j->kind, j->state, j->attempts, j->max_attempts, j->run_at, err);
	return 0;
}

static int
jobs_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, OPT_STATE },
		{ "kind", required_argument, NULL, OPT_KIND },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = NULL, *kind = NULL;
	long long limit = 50;
	struct db *db;
	struct err err;
	int c, n = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE: state = optarg; break;
		case OPT_KIND: kind = optarg; break;
		case OPT_LIMIT:
			if (parse_i64(optarg, 1, 100000, &limit, &err) < 0)
				return ctl_usage("jobs list", "--limit: %s", err.msg);
			break;
		case 'h': fputs(jobs_help, stdout); return CTL_OK;
		default: return ctl_bad_option("jobs list", c, argv);
		}
	}
	if (optind < argc)
		return ctl_usage("jobs list", "unexpected argument '%s'",
		    argv[optind]);
	if (state != NULL && strcmp(state, "queued") != 0 &&
	    strcmp(state, "running") != 0 && strcmp(state, "done") != 0 &&
	    strcmp(state, "dead") != 0)
		return ctl_usage("jobs list", "--state must be queued, running, "
		    "done or dead");
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (db_jobs_list(db, state, kind, (int)limit, print_row, &n, &err) < 0)
		return ctl_fail("%s", err.msg);
	if (n == 0)
		puts("no jobs");
	return CTL_OK;
}

static int
print_full(const struct job_info *j, void *arg)
{
	(void)arg;
	printf("id:           %lld\nkind:         %s\nstate:        %s\n"
	    "priority:     %d\nattempts:     %d of %d\npayload:      %s\n"
	    "unique_key:   %s\nonce_key:     %s\ncreated_at:   %s\n"
	    "run_at:       %s\nstarted_at:   %s\nfinished_at:  %s\n"
	    "lease_until:  %s\nlocked_by:    %s\nlast_error:   %s\n"
	    "errors:       %s\n", (long long)j->id, j->kind, j->state,
	    j->priority, j->attempts, j->max_attempts, j->payload,
	    j->unique_key, j->once_key, j->created_at, j->run_at, j->started_at,
	    j->finished_at, j->lease_until, j->locked_by, j->last_error,
	    j->errors);
	return 0;
}

static int
jobs_show(struct ctl *ctl, int argc, char **argv)
{
	struct db *db;
	struct err err;
	int64_t id;
	int rc;

	if ((rc = parse_id("jobs show", argc, argv, &id)) != CTL_OK)
		return rc < 0 ? CTL_OK : rc;
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	rc = db_jobs_show(db, id, print_full, NULL, &err);
	if (rc < 0)
		return ctl_fail("%s", err.msg);
	if (rc == 0)
		return ctl_fail("no job %lld (done jobs are removed unless "
		    "[worker] keep_done_s keeps them)", (long long)id);
	return CTL_OK;
}

static int
jobs_retry(struct ctl *ctl, int argc, char **argv)
{
	struct db *db;
	struct err err;
	int64_t id;
	int rc, again = 0;

	if ((rc = parse_id("jobs retry", argc, argv, &id)) != CTL_OK)
		return rc < 0 ? CTL_OK : rc;
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	/* A mail job's failed delivery is made sendable again in the same
	 * transaction (same row, same Message-ID): what failed was usually
	 * ours (credentials, a server setting) and has been fixed. A bounced
	 * one stays bounced. */
	if (db_begin(db, &err) < 0)
		return ctl_fail("%s", err.msg);
	rc = db_jobs_retry(db, id, &err);
	if (rc == 1 && db_deliveries_retry_jobs(db, 1, &id, &again, &err) < 0)
		rc = -1;
	if (rc < 0 || db_commit(db, &err) < 0) {
		db_rollback(db);
		return ctl_fail("%s", err.msg);
	}
	if (rc == 0)
		return ctl_fail("job %lld is not dead or queued (or does not "
		    "exist): nothing to retry", (long long)id);
	printf("job %lld queued again, due now%s\n", (long long)id,
	    again > 0 ? "; its failed delivery will be sent again" : "");
	return CTL_OK;
}

static int
jobs_cancel(struct ctl *ctl, int argc, char **argv)
{
	struct db *db;
	struct err err;
	int64_t id;
	int rc, failed = 0;

	if ((rc = parse_id("jobs cancel", argc, argv, &id)) != CTL_OK)
		return rc < 0 ? CTL_OK : rc;
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	/* A cancelled mail job's delivery (made before its first send, or
	 * deferred) ends failed with it, in one transaction. */
	if (db_begin(db, &err) < 0)
		return ctl_fail("%s", err.msg);
	rc = db_jobs_cancel(db, id, &err);
	if (rc == 1 && db_deliveries_fail_jobs(db, 1, &id, "job cancelled by "
	        "operator", &failed, &err) < 0)
		rc = -1;
	if (rc < 0 || db_commit(db, &err) < 0) {
		db_rollback(db);
		return ctl_fail("%s", err.msg);
	}
	if (rc == 0)
		return ctl_fail("job %lld is not queued (running jobs cannot be "
		    "cancelled; finished ones need not be)", (long long)id);
	printf("job %lld cancelled (now dead)%s\n", (long long)id,
	    failed > 0 ? "; its delivery is failed" : "");
	return CTL_OK;
}

static int
num_opt(const char *name, const char *arg, long long lo, long long hi,
    long long *v)
{
	struct err err;

	if (parse_i64(arg, lo, hi, v, &err) < 0)
		return ctl_usage("jobs enqueue", "--%s: %s", name, err.msg);
	return CTL_OK;
}

static int
jobs_enqueue(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "max-attempts", required_argument, NULL, OPT_ATTEMPTS },
		{ "unique-key", required_argument, NULL, OPT_UNIQUE },
		{ "once-key", required_argument, NULL, OPT_ONCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "jobs enqueue";
	long long count = 1, prio = 0, delay = 0, attempts = 0;
	bool prio_set = false;
	struct job_new j = { 0 };
	const struct job_kind *k;
	struct db *db;
	struct err err;
	int64_t id = 0;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		rc = CTL_OK;
		switch (c) {
		case OPT_COUNT: rc = num_opt("count", optarg, 1, 10000000, &count); break;
		case OPT_PRIORITY:
			rc = num_opt("priority", optarg, -100, 100, &prio);
			prio_set = true;
			break;
		case OPT_DELAY: rc = num_opt("delay-ms", optarg, 0, 400LL * 86400000, &delay); break;
		case OPT_ATTEMPTS: rc = num_opt("max-attempts", optarg, 1, 100, &attempts); break;
		case OPT_UNIQUE: j.unique_key = optarg; break;
		case OPT_ONCE: j.once_key = optarg; break;
		case 'h': fputs(jobs_help, stdout); return CTL_OK;
		default: return ctl_bad_option(cmd, c, argv);
		}
		if (rc != CTL_OK)
			return rc;
	}
	if (optind >= argc)
		return ctl_usage(cmd, "name the kind of job");
	if (argc - optind > 2)
		return ctl_usage(cmd, "unexpected argument '%s'", argv[optind + 2]);
	j.kind = argv[optind];
	j.payload = optind + 1 < argc ? argv[optind + 1] : "{}";
	for (const char *p = j.kind; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_') || strlen(j.kind) >= JOB_KIND_MAX)
			return ctl_usage(cmd, "kind must be lower-case letters, "
			    "digits and _");
	if (count > 1 && (j.unique_key != NULL || j.once_key != NULL))
		return ctl_usage(cmd, "--count cannot be used with keys");
	k = job_kind_find(j.kind);
	if (k == NULL)
		fprintf(stderr, "posternctl: warning: no worker handles kind "
		    "'%s'; the job will go dead\n", j.kind);
	j.priority = prio_set ? (int)prio : (k != NULL ? k->priority : 0);
	j.max_attempts = attempts > 0 ? (int)attempts
	                              : (k != NULL ? k->max_attempts : 0);
	j.delay_ms = delay;
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (count > 1) {
		int64_t n = 0;
		if (db_jobs_enqueue_many(db, j.kind, j.payload, count, j.priority,
		        j.max_attempts, &n, &err) < 0)
			goto failed;
		printf("enqueued %lld %s jobs\n", (long long)n, j.kind);
		return CTL_OK;
	}
	rc = db_jobs_enqueue(db, &j, &id, &err);
	if (rc < 0)
		goto failed;
	if (rc == 0)
		printf("not enqueued: job %lld already holds the key\n",
		    (long long)id);
	else
		printf("enqueued job %lld (%s)\n", (long long)id, j.kind);
	return CTL_OK;
failed:
	if (db_err_is(&err, "22P02") || db_err_is(&err, "23514"))
		return ctl_fail("the payload must be a JSON object of at most "
		    "64 KiB (%s)", err.msg);
	return ctl_fail("%s", err.msg);
}

int
cmd_jobs(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "stats", jobs_stats },
		{ "list", jobs_list },
		{ "show", jobs_show },
		{ "retry", jobs_retry },
		{ "cancel", jobs_cancel },
		{ "enqueue", jobs_enqueue },
	};
	return ctl_dispatch(ctl, "jobs", jobs_help, subs,
	    sizeof subs / sizeof subs[0], argc, argv);
}
