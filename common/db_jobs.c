/* common/db_jobs.c: every statement on jobs (see db_jobs.h for the life of
 * a job). Batches pass ids and lease tokens as two bigint arrays, so a
 * batch of any size is one statement and one round trip. */
#include "common/db_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

/* Errors kept per job (the newest); with JOB_ERROR_MAX bytes each this
 * stays well inside the schema's 64 KiB cap on jobs.errors. */
#define JOB_ERRORS_KEPT 20

/* "{1,2,3}" for ids (tokens = false) or lease tokens of jobs[0..n). */
static int
id_array(struct buf *b, const struct job *jobs, int n, bool tokens)
{
	if (buf_addc(b, '{') < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (buf_printf(b, "%s%lld", i > 0 ? "," : "",
		        (long long)(tokens ? jobs[i].lease_token : jobs[i].id)) < 0)
			return -1;
	return buf_addc(b, '}');
}

static int
notify(struct db *db, struct err *err)
{
	return db_cmd(db, "NOTIFY postern_jobs", 0, NULL, err);
}

int
db_jobs_enqueue(struct db *db, const struct job_new *j, int64_t *id_r,
    struct err *err)
{
	static const char insert_sql[] =
	    "INSERT INTO jobs (kind, payload, priority, run_at, max_attempts,"
	    " unique_key, once_key)"
	    " VALUES ($1, coalesce($2::jsonb, '{}'), $3,"
	    " now() + $4::bigint * interval '1 millisecond',"
	    " coalesce($5::int, 10), $6, $7)"
	    " ON CONFLICT DO NOTHING RETURNING id";
	static const char existing_sql[] =
	    "SELECT id FROM jobs WHERE (unique_key = $1"
	    " AND state IN ('queued', 'running')) OR once_key = $2 LIMIT 1";
	char prio[16], delay[24], attempts[16];
	const char *params[7];
	PGresult *res = NULL;
	int64_t id = 0;
	int ret = -1;

	if (j->delay_ms < 0)
		return err_set(err, false, "job delay must not be negative");
	snprintf(prio, sizeof prio, "%d", j->priority);
	snprintf(delay, sizeof delay, "%lld", j->delay_ms);
	snprintf(attempts, sizeof attempts, "%d", j->max_attempts);
	params[0] = j->kind;
	params[1] = j->payload;
	params[2] = prio;
	params[3] = delay;
	params[4] = j->max_attempts > 0 ? attempts : NULL;
	params[5] = j->unique_key;
	params[6] = j->once_key;
	if (db_query_prepared(db, "jobs_enqueue", insert_sql, 7, params,
	        PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	if (PQntuples(res) == 1) {
		if (db_get_i64(res, 0, 0, &id, err) < 0 || notify(db, err) < 0)
			goto out;
		*id_r = id;
		ret = 1;
		goto out;
	}
	PQclear(res);
	res = NULL;
	/* The key is taken: report the holder (it may have finished since). */
	const char *keys[] = { j->unique_key, j->once_key };
	if (db_query(db, existing_sql, 2, keys, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	if (PQntuples(res) == 1 && db_get_i64(res, 0, 0, &id, err) < 0)
		goto out;
	*id_r = id;
	ret = 0;
out:
	PQclear(res);
	return ret;
}

int
db_jobs_enqueue_many(struct db *db, const char *kind, const char *payload,
    long long n, int priority, int max_attempts, int64_t *count_r,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO jobs (kind, payload, priority, max_attempts)"
	    " SELECT $1, coalesce($2::jsonb, '{}'), $3, coalesce($5::int, 10)"
	    " FROM generate_series(1, $4::bigint)";
	char prio[16], count[24], attempts[16];
	const char *params[] = { kind, payload, prio, count,
		                 max_attempts > 0 ? attempts : NULL };
	PGresult *res = NULL;

	snprintf(prio, sizeof prio, "%d", priority);
	snprintf(count, sizeof count, "%lld", n);
	snprintf(attempts, sizeof attempts, "%d", max_attempts);
	if (db_query(db, sql, 5, params, PGRES_COMMAND_OK, &res, err) < 0)
		return -1;
	*count_r = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return notify(db, err);
}

int
db_jobs_claim(struct db *db, int max, int lease_s, const char *who,
    const char *const *skip_kinds, int nskip, struct job **jobs_r, int *n_r,
    struct err *err)
{
	/* The inner SELECT walks jobs_fetch_idx in claim order and stops after
	 * max rows it could lock; rows other claimers hold are skipped, not
	 * waited for. One lease token serves the whole batch. The LIMIT is a
	 * literal (max is a checked int, one prepared statement per value): as
	 * a parameter, the generic plan the server switches to after five
	 * runs assumes 10% of the table and sorts it all (measured: 54 ms a
	 * claim at 50,000 jobs instead of 0.3 ms). ARRAY(…) runs the locking
	 * subquery once, as an init plan: as `id IN (SELECT …)`, statistics
	 * taken while the table was empty (autoanalyze of an idle queue) made
	 * the planner re-run it for every row of jobs, and claims ran for
	 * minutes (tests/bench/README.md). The kind filter (only
	 * while some kind is at its cap) is planned afresh each time for the
	 * same reason: a generic plan cannot know how selective it is. */
	static const char fmt[] =
	    "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
	    " lease_until = now() + $1::int * interval '1 second',"
	    " lease_token = (SELECT nextval('jobs_lease_token_seq')),"
	    " locked_by = $2, started_at = now()"
	    " WHERE id = ANY (ARRAY(SELECT id FROM jobs"
	    "  WHERE state = 'queued' AND run_at <= now()%s"
	    "  ORDER BY priority, run_at, id LIMIT %d FOR UPDATE SKIP LOCKED))"
	    " RETURNING id, lease_token, kind, payload::text, attempts,"
	    " max_attempts";
	char sql[sizeof fmt + 64], name[32], slease[16];
	struct buf skip;
	const char *params[3];
	PGresult *res = NULL;
	struct job *jobs = NULL;
	int n = 0, ret = -1;

	*jobs_r = NULL;
	*n_r = 0;
	if (max < 1 || max > JOB_CLAIM_MAX)
		return err_set(err, false, "claim of %d jobs outside 1..%d", max,
		    JOB_CLAIM_MAX);
	snprintf(sql, sizeof sql, fmt,
	    nskip > 0 ? " AND kind <> ALL ($3::text[])" : "", max);
	snprintf(name, sizeof name, "jobs_claim_%d", max);
	buf_init(&skip, 64 * 1024);
	if (buf_addc(&skip, '{') < 0)
		goto out;
	for (int i = 0; i < nskip; i++)     /* kinds are [a-z0-9_]: no quoting */
		if (buf_printf(&skip, "%s%s", i > 0 ? "," : "", skip_kinds[i]) < 0)
			goto too_many;
	if (buf_addc(&skip, '}') < 0)
		goto too_many;
	snprintf(slease, sizeof slease, "%d", lease_s);
	params[0] = slease;
	params[1] = who;
	params[2] = buf_str(&skip);
	if ((nskip > 0 ? db_query(db, sql, 3, params, PGRES_TUPLES_OK, &res, err)
	               : db_query_prepared(db, name, sql, 2, params,
	                     PGRES_TUPLES_OK, &res, err)) < 0)
		goto out;
	n = PQntuples(res);
	if (n == 0) {
		ret = 0;                     /* nothing due: *jobs_r stays NULL */
		goto out;
	}
	jobs = xcalloc((size_t)n, sizeof *jobs);
	for (int i = 0; i < n; i++) {
		int64_t v;

		if (db_get_i64(res, i, 0, &jobs[i].id, err) < 0 ||
		    db_get_i64(res, i, 1, &jobs[i].lease_token, err) < 0)
			goto out;
		str_copy(jobs[i].kind, sizeof jobs[i].kind, PQgetvalue(res, i, 2));
		jobs[i].payload = xstrdup(PQgetvalue(res, i, 3));
		if (db_get_i64(res, i, 4, &v, err) < 0)
			goto out;
		jobs[i].attempts = (int)v;
		if (db_get_i64(res, i, 5, &v, err) < 0)
			goto out;
		jobs[i].max_attempts = (int)v;
	}
	*jobs_r = jobs;
	*n_r = n;
	jobs = NULL;
	ret = 0;
	goto out;
too_many:
	err_set(err, false, "too many kinds to skip");
out:
	if (jobs != NULL)
		db_jobs_free(&jobs, n);
	PQclear(res);
	buf_fini(&skip);
	return ret;
}

void
db_jobs_free(struct job **jobs, int n)
{
	if (*jobs == NULL)
		return;
	for (int i = 0; i < n; i++)
		free((*jobs)[i].payload);
	free(*jobs);
	*jobs = NULL;
}

/* Runs a batch statement (prepared as name) over jobs[0..n) with the id
 * and token arrays as $1 and $2 (an extra parameter may follow) and
 * returns the ids it touched. */
static int
batch(struct db *db, const char *name, const char *sql,
    const struct job *jobs, int n, const char *p3, PGresult **res_r,
    struct err *err)
{
	struct buf ids, toks;
	int ret = -1;

	buf_init(&ids, (size_t)n * 24 + 8);
	buf_init(&toks, (size_t)n * 24 + 8);
	if (id_array(&ids, jobs, n, false) < 0 ||
	    id_array(&toks, jobs, n, true) < 0) {
		err_set(err, false, "batch too large");
		goto out;
	}
	const char *params[] = { buf_str(&ids), buf_str(&toks), p3 };
	ret = db_query_prepared(db, name, sql, p3 != NULL ? 3 : 2, params,
	    PGRES_TUPLES_OK, res_r, err);
out:
	buf_fini(&ids);
	buf_fini(&toks);
	return ret;
}

int
db_jobs_heartbeat(struct db *db, const struct job *jobs, int n, int lease_s,
    int *kept_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE jobs j SET lease_until = now() + $3::int * interval '1 second'"
	    " FROM unnest($1::bigint[], $2::bigint[]) AS t(id, tok)"
	    " WHERE j.id = t.id AND j.lease_token = t.tok AND j.state = 'running'"
	    " RETURNING j.id";
	char slease[16];
	PGresult *res = NULL;

	*kept_r = 0;
	if (n == 0)
		return 0;
	snprintf(slease, sizeof slease, "%d", lease_s);
	if (batch(db, "jobs_heartbeat", sql, jobs, n, slease, &res, err) < 0)
		return -1;
	*kept_r = PQntuples(res);
	PQclear(res);
	return 0;
}

/* The statement that finishes a batch sharing one lease token: delete (the
 * common case, one index lookup a job) or mark done (rows a once_key or
 * keep_done needs). */
static int
finish_batch(struct db *db, bool keep, const char *ids, const char *tok,
    PGresult **res_r, struct err *err)
{
	static const char del_sql[] =
	    "DELETE FROM jobs WHERE id = ANY ($1::bigint[]) AND lease_token = $2"
	    " AND state = 'running' AND once_key IS NULL RETURNING id";
	static const char upd_sql[] =
	    "UPDATE jobs SET state = 'done', finished_at = now(),"
	    " lease_until = NULL WHERE id = ANY ($1::bigint[])"
	    " AND lease_token = $2 AND state = 'running' RETURNING id";
	const char *params[] = { ids, tok };

	return keep ? db_query_prepared(db, "jobs_done", upd_sql, 2, params,
	                  PGRES_TUPLES_OK, res_r, err)
	            : db_query_prepared(db, "jobs_delete", del_sql, 2, params,
	                  PGRES_TUPLES_OK, res_r, err);
}

/* "{id,…}" of jobs[0..n) with this token and not yet ok; 0 if none. */
static int
pending_ids(struct buf *b, const struct job *jobs, int n, int64_t tok,
    const bool *ok, bool *any_r)
{
	int k = 0;

	buf_reset(b);
	if (buf_addc(b, '{') < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (!ok[i] && jobs[i].lease_token == tok &&
		    buf_printf(b, "%s%lld", k++ > 0 ? "," : "",
		        (long long)jobs[i].id) < 0)
			return -1;
	*any_r = k > 0;
	return buf_addc(b, '}');
}

int
db_jobs_complete(struct db *db, const struct job *jobs, int n, bool keep_done,
    bool *ok, struct err *err)
{
	bool *seen = xcalloc((size_t)n + 1, sizeof *seen);
	struct buf ids;
	int ret = -1;

	for (int i = 0; i < n; i++)
		ok[i] = false;
	buf_init(&ids, (size_t)n * 24 + 8);
	/* Per distinct lease token (a claimed batch shares one): delete what
	 * nothing needs any more, then mark done what is left (jobs with a
	 * once_key, or all of them with keep_done). A job still not ok after
	 * that lost its lease. */
	for (int first = 0; first < n; first++) {
		int64_t t = jobs[first].lease_token;
		char tok[24];

		if (seen[first])
			continue;
		for (int i = first; i < n; i++)
			if (jobs[i].lease_token == t)
				seen[i] = true;
		snprintf(tok, sizeof tok, "%lld", (long long)t);
		for (int pass = keep_done ? 1 : 0; pass < 2; pass++) {
			PGresult *res = NULL;
			bool any;

			if (pending_ids(&ids, jobs, n, t, ok, &any) < 0) {
				err_set(err, false, "completion batch too large");
				goto out;
			}
			if (!any)
				break;
			if (finish_batch(db, pass == 1, buf_str(&ids), tok, &res,
			        err) < 0)
				goto out;
			for (int r = 0; r < PQntuples(res); r++) {
				long long id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
				for (int i = 0; i < n; i++)
					if (jobs[i].id == id && jobs[i].lease_token == t)
						ok[i] = true;
			}
			PQclear(res);
		}
	}
	ret = 0;
out:
	buf_fini(&ids);
	free(seen);
	return ret;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void
cut_utf8(const char *s, char *out, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

int
db_jobs_fail(struct db *db, const struct job *job, const char *error,
    bool permanent, long long backoff_ms, bool *dead_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE jobs SET"
	    " state = CASE WHEN $4::bool OR attempts >= max_attempts"
	    "  THEN 'dead' ELSE 'queued' END,"
	    " finished_at = CASE WHEN $4::bool OR attempts >= max_attempts"
	    "  THEN now() END,"
	    " run_at = CASE WHEN $4::bool OR attempts >= max_attempts THEN run_at"
	    "  ELSE now() + $5::bigint * interval '1 millisecond' END,"
	    " lease_until = NULL, last_error = $3,"
	    " errors = CASE WHEN jsonb_array_length(errors) >= $6::int"
	    "  THEN errors - 0 ELSE errors END"
	    "  || jsonb_build_object('at', now(), 'attempt', attempts,"
	    "  'error', $3::text)"
	    " WHERE id = $1 AND lease_token = $2 AND state = 'running'"
	    " RETURNING state";
	char id[24], tok[24], backoff[24], kept[16];
	char msg[JOB_ERROR_MAX + 1];
	const char *params[6];
	PGresult *res = NULL;
	int ret;

	snprintf(id, sizeof id, "%lld", (long long)job->id);
	snprintf(tok, sizeof tok, "%lld", (long long)job->lease_token);
	snprintf(backoff, sizeof backoff, "%lld", backoff_ms);
	snprintf(kept, sizeof kept, "%d", JOB_ERRORS_KEPT);
	cut_utf8(error != NULL && error[0] != '\0' ? error : "(no message)",
	    msg, JOB_ERROR_MAX);
	params[0] = id;
	params[1] = tok;
	params[2] = msg;
	params[3] = permanent ? "true" : "false";
	params[4] = backoff;
	params[5] = kept;
	if (db_query_prepared(db, "jobs_fail", sql, 6, params, PGRES_TUPLES_OK,
	        &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1;
	if (ret == 1)
		*dead_r = strcmp(PQgetvalue(res, 0, 0), "dead") == 0;
	PQclear(res);
	return ret;
}

int
db_jobs_release(struct db *db, const struct job *job, struct err *err)
{
	static const char sql[] =
	    "UPDATE jobs SET state = 'queued', attempts = attempts - 1,"
	    " lease_until = NULL"
	    " WHERE id = $1 AND lease_token = $2 AND state = 'running'"
	    " RETURNING id";
	char id[24], tok[24];
	const char *params[] = { id, tok };
	PGresult *res = NULL;
	int ret;

	snprintf(id, sizeof id, "%lld", (long long)job->id);
	snprintf(tok, sizeof tok, "%lld", (long long)job->lease_token);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1;
	PQclear(res);
	return ret == 1 && notify(db, err) < 0 ? -1 : ret;
}

int
db_jobs_reap(struct db *db, int limit, int *requeued_r, int *killed_r,
    int64_t *dead_ids, struct err *err)
{
	static const char sql[] =
	    "WITH expired AS (SELECT id FROM jobs"
	    "  WHERE state = 'running' AND lease_until < now()"
	    "  ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)"
	    " UPDATE jobs j SET"
	    " state = CASE WHEN j.attempts >= j.max_attempts"
	    "  THEN 'dead' ELSE 'queued' END,"
	    " finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,"
	    " run_at = CASE WHEN j.attempts >= j.max_attempts THEN j.run_at"
	    "  ELSE now() END,"
	    " lease_until = NULL,"
	    " last_error = 'lease expired: worker ' || coalesce(j.locked_by, '?')"
	    "  || ' died or stalled',"
	    " errors = CASE WHEN jsonb_array_length(j.errors) >= $2::int"
	    "  THEN j.errors - 0 ELSE j.errors END"
	    "  || jsonb_build_object('at', now(), 'attempt', j.attempts, 'error',"
	    "  'lease expired: worker ' || coalesce(j.locked_by, '?')"
	    "  || ' died or stalled')"
	    " FROM expired WHERE j.id = expired.id"
	    " RETURNING j.state, j.id";
	char slimit[16], kept[16];
	const char *params[] = { slimit, kept };
	PGresult *res = NULL;

	*requeued_r = *killed_r = 0;
	snprintf(slimit, sizeof slimit, "%d", limit);
	snprintf(kept, sizeof kept, "%d", JOB_ERRORS_KEPT);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	for (int r = 0; r < PQntuples(res) && r < limit; r++) {
		if (strcmp(PQgetvalue(res, r, 0), "dead") == 0) {
			if (dead_ids != NULL &&
			    db_get_i64(res, r, 1, &dead_ids[*killed_r], err) < 0) {
				PQclear(res);
				return -1;
			}
			(*killed_r)++;
		} else {
			(*requeued_r)++;
		}
	}
	PQclear(res);
	if (*requeued_r > 0 && notify(db, err) < 0)
		return -1;
	return 0;
}

int
db_jobs_prune(struct db *db, long long done_s, long long dead_s, int limit,
    int64_t *deleted_r, struct err *err)
{
	static const char sql[] =
	    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
	    " WHERE state IN ('done', 'dead') AND"
	    " finished_at < now() - CASE WHEN state = 'dead' THEN $2::bigint"
	    "  WHEN once_key IS NOT NULL THEN greatest($1::bigint, $4::bigint)"
	    "  ELSE $1::bigint END * interval '1 second'"
	    " ORDER BY finished_at LIMIT $3)";
	char sdone[24], sdead[24], slimit[16], sonce[24];
	const char *params[] = { sdone, sdead, slimit, sonce };
	PGresult *res = NULL;

	snprintf(sdone, sizeof sdone, "%lld", done_s);
	snprintf(sdead, sizeof sdead, "%lld", dead_s);
	snprintf(slimit, sizeof slimit, "%d", limit);
	snprintf(sonce, sizeof sonce, "%lld", (long long)JOB_ONCE_KEEP_S);
	if (db_query(db, sql, 4, params, PGRES_COMMAND_OK, &res, err) < 0)
		return -1;
	*deleted_r = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

int
db_jobs_stats(struct db *db, int (*fn)(const struct job_stat *, void *),
    void *arg, struct err *err)
{
	static const char sql[] =
	    "SELECT kind, state, count(*),"
	    " coalesce(extract(epoch FROM now() - min(run_at)"
	    "  FILTER (WHERE state = 'queued' AND run_at <= now())), 0)"
	    " FROM jobs GROUP BY kind, state ORDER BY kind, state";
	PGresult *res = NULL;
	int ret = 0;

	if (db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	for (int r = 0; r < PQntuples(res) && ret == 0; r++) {
		struct job_stat s = {
			.kind = PQgetvalue(res, r, 0),
			.state = PQgetvalue(res, r, 1),
			.count = strtoll(PQgetvalue(res, r, 2), NULL, 10),
			.oldest_due_s = strtod(PQgetvalue(res, r, 3), NULL),
		};
		ret = fn(&s, arg);
	}
	PQclear(res);
	return ret;
}

#define INFO_COLS \
	"id, kind, state, payload::text, coalesce(unique_key, ''),"          \
	" coalesce(once_key, ''), coalesce(last_error, ''), errors::text,"   \
	" coalesce(locked_by, ''), priority, attempts, max_attempts,"        \
	" run_at::text, created_at::text, coalesce(started_at::text, ''),"   \
	" coalesce(finished_at::text, ''), coalesce(lease_until::text, '')"

static int
each_info(PGresult *res, int (*fn)(const struct job_info *, void *),
    void *arg)
{
	int ret = 0;

	for (int r = 0; r < PQntuples(res) && ret == 0; r++) {
		struct job_info j = {
			.id = strtoll(PQgetvalue(res, r, 0), NULL, 10),
			.kind = PQgetvalue(res, r, 1),
			.state = PQgetvalue(res, r, 2),
			.payload = PQgetvalue(res, r, 3),
			.unique_key = PQgetvalue(res, r, 4),
			.once_key = PQgetvalue(res, r, 5),
			.last_error = PQgetvalue(res, r, 6),
			.errors = PQgetvalue(res, r, 7),
			.locked_by = PQgetvalue(res, r, 8),
			.priority = atoi(PQgetvalue(res, r, 9)),
			.attempts = atoi(PQgetvalue(res, r, 10)),
			.max_attempts = atoi(PQgetvalue(res, r, 11)),
			.run_at = PQgetvalue(res, r, 12),
			.created_at = PQgetvalue(res, r, 13),
			.started_at = PQgetvalue(res, r, 14),
			.finished_at = PQgetvalue(res, r, 15),
			.lease_until = PQgetvalue(res, r, 16),
		};
		ret = fn(&j, arg);
	}
	return ret;
}

int
db_jobs_show(struct db *db, int64_t id,
    int (*fn)(const struct job_info *, void *), void *arg, struct err *err)
{
	static const char sql[] = "SELECT " INFO_COLS " FROM jobs WHERE id = $1";
	char sid[24];
	const char *params[] = { sid };
	PGresult *res = NULL;
	int ret;

	snprintf(sid, sizeof sid, "%lld", (long long)id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1 ? (each_info(res, fn, arg) < 0 ? -1 : 1) : 0;
	PQclear(res);
	return ret;
}

int
db_jobs_list(struct db *db, const char *state, const char *kind, int limit,
    int (*fn)(const struct job_info *, void *), void *arg, struct err *err)
{
	static const char sql[] =
	    "SELECT " INFO_COLS " FROM jobs"
	    " WHERE ($1::text IS NULL OR state = $1)"
	    " AND ($2::text IS NULL OR kind = $2)"
	    " ORDER BY id DESC LIMIT $3";
	char slimit[16];
	const char *params[] = { state, kind, slimit };
	PGresult *res = NULL;
	int ret;

	snprintf(slimit, sizeof slimit, "%d", limit);
	if (db_query(db, sql, 3, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = each_info(res, fn, arg);
	PQclear(res);
	return ret;
}

/* Runs sql (one statement on job $1 with RETURNING) : 1 a row changed,
 * 0 none, -1 err. */
static int
update_one(struct db *db, const char *sql, int64_t id, struct err *err)
{
	char sid[24];
	const char *params[] = { sid };
	PGresult *res = NULL;
	int ret;

	snprintf(sid, sizeof sid, "%lld", (long long)id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1;
	PQclear(res);
	return ret;
}

int
db_jobs_retry(struct db *db, int64_t id, struct err *err)
{
	static const char sql[] =
	    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(),"
	    " finished_at = NULL, lease_until = NULL"
	    " WHERE id = $1 AND state IN ('dead', 'queued') RETURNING id";
	int ret = update_one(db, sql, id, err);

	if (ret < 0 && db_err_is(err, "23505"))
		err_set(err, false, "job %lld: another live job holds its "
		    "unique key; it was not requeued", (long long)id);
	return ret == 1 && notify(db, err) < 0 ? -1 : ret;
}

int
db_jobs_cancel(struct db *db, int64_t id, struct err *err)
{
	static const char sql[] =
	    "UPDATE jobs SET state = 'dead', finished_at = now(),"
	    " last_error = 'cancelled by operator'"
	    " WHERE id = $1 AND state = 'queued' RETURNING id";

	return update_one(db, sql, id, err);
}
