/* common/db_login_requests.c: all SQL on login_requests (see
 * db_login_requests.h). */
#include "common/db_login_requests.h"

#include <stdio.h>

/* The two-key advisory lock space: this class id is ours alone. */
#define LOCK_CLASS "74001"

int
db_login_requests_count(struct db *db, const char *email, const char *ip,
    int64_t *by_email_r, int64_t *by_ip_r, struct err *err)
{
	static const char lock_sql[] =
	    "SELECT pg_advisory_xact_lock(" LOCK_CLASS ", hashtext(lower($1::text)))";
	static const char sql[] =
	    "SELECT"
	    " (SELECT count(*) FROM login_requests WHERE email = $1::citext"
	    "   AND created_at > now() - interval '1 hour'),"
	    " (SELECT count(*) FROM login_requests WHERE ip = $2::inet"
	    "   AND created_at > now() - interval '1 hour')";
	const char *params[] = { email, ip };
	PGresult *res = NULL;
	int ret = -1;

	if (db_query(db, lock_sql, 1, params, PGRES_TUPLES_OK, NULL, err) < 0 ||
	    db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	if (db_get_i64(res, 0, 0, by_email_r, err) < 0 ||
	    db_get_i64(res, 0, 1, by_ip_r, err) < 0)
		goto out;
	ret = 0;
out:
	PQclear(res);
	return ret;
}

int
db_login_requests_insert(struct db *db, const char *email, const char *ip,
    int64_t job_id, struct err *err)
{
	static const char sql[] =
	    "WITH old AS ("
	    " DELETE FROM login_requests"
	    "  WHERE created_at < now() - interval '1 day'"
	    ") INSERT INTO login_requests (email, ip, job_id)"
	    " VALUES ($1::citext, $2::inet, $3::bigint)";
	char job[24];
	const char *params[] = { email, ip, job };

	snprintf(job, sizeof job, "%lld", (long long)job_id);
	return db_cmd(db, sql, 3, params, err);
}
