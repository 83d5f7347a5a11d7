/* common/db_job_probe_runs.c: every statement on job_probe_runs. */
#include "common/db_job_probe_runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

int
db_job_probe_runs_record(struct db *db, const struct job *job,
    const char *worker, struct probe_plan *plan_r, struct err *err)
{
	/* The plan comes back from the same statement that records the run,
	 * so a bad payload records nothing. */
	static const char sql[] =
	    "WITH p AS (SELECT $5::jsonb AS j),"
	    " plan AS (SELECT"
	    "  least(greatest(coalesce((j->>'sleep_ms')::bigint, 0), 0), 600000) AS sleep_ms,"
	    "  coalesce(j->>'fail', '') AS fail,"
	    "  coalesce((j->>'fail_times')::bigint, 1000000) AS fail_times,"
	    "  left(j->>'tag', 200) AS tag FROM p),"
	    " ins AS (INSERT INTO job_probe_runs (job_id, attempt, lease_token,"
	    "  worker, tag) SELECT $1, $2, $3, $4, tag FROM plan RETURNING id)"
	    " SELECT sleep_ms, fail, fail_times FROM plan, ins";
	char id[24], attempt[16], tok[24];
	const char *params[] = { id, attempt, tok, worker, job->payload };
	PGresult *res = NULL;

	snprintf(id, sizeof id, "%lld", (long long)job->id);
	snprintf(attempt, sizeof attempt, "%d", job->attempts);
	snprintf(tok, sizeof tok, "%lld", (long long)job->lease_token);
	if (db_query(db, sql, 5, params, PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "22P02") || db_err_is(err, "22003"))
			err->temp = false;        /* bad number in the payload */
		return -1;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(err, false, "probe: no run recorded");
	}
	plan_r->sleep_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	str_copy(plan_r->fail, sizeof plan_r->fail, PQgetvalue(res, 0, 1));
	plan_r->fail_times = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return 0;
}

int
db_job_probe_runs_prune(struct db *db, long long age_s, int64_t *deleted_r,
    struct err *err)
{
	static const char sql[] =
	    "DELETE FROM job_probe_runs"
	    " WHERE ran_at < now() - $1::bigint * interval '1 second'";
	char age[24];
	const char *params[] = { age };
	PGresult *res = NULL;

	snprintf(age, sizeof age, "%lld", age_s);
	if (db_query(db, sql, 1, params, PGRES_COMMAND_OK, &res, err) < 0)
		return -1;
	*deleted_r = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}
