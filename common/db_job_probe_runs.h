/* common/db_job_probe_runs.h: every statement on job_probe_runs. */
#ifndef POSTERN_COMMON_DB_JOB_PROBE_RUNS_H
#define POSTERN_COMMON_DB_JOB_PROBE_RUNS_H

#include <stdint.h>

#include "common/db.h"
#include "common/db_jobs.h"

/* What a probe's payload asks for: {"tag": "…", "sleep_ms": N,
 * "fail": "temp"|"perm", "fail_times": K}. */
struct probe_plan {
	long long sleep_ms;        /* 0..600000 */
	char fail[8];              /* "", "temp" or "perm" */
	long long fail_times;      /* fail while attempts <= this */
};

/* Records this run of job and reads the plan from its payload (the
 * database parses the JSON). A payload of the wrong shape is a permanent
 * error. */
MUST_CHECK int db_job_probe_runs_record(struct db *db, const struct job *job,
    const char *worker, struct probe_plan *plan_r, struct err *err);

/* Deletes runs older than age_s. */
MUST_CHECK int db_job_probe_runs_prune(struct db *db, long long age_s,
    int64_t *deleted_r, struct err *err);

#endif
