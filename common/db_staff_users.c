/* common/db_staff_users.c: all SQL on staff_users (see db_staff_users.h). */
#include "common/db_staff_users.h"

#include <stdio.h>
#include <string.h>

static const char *const roles[] = { "owner", "admin", "staff", "viewer" };

bool
db_staff_users_role_ok(const char *role)
{
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		if (strcmp(role, roles[i]) == 0)
			return true;
	}
	return false;
}

int
db_staff_users_insert(struct db *db, int64_t practice_id,
    const char *practice_slug, const struct db_staff_new *s, int64_t *id_r,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO staff_users (practice_id, email, name, role)"
	    " VALUES ($1, $2, $3, coalesce($4, 'staff')) RETURNING id";
	char pid[24];
	const char *params[] = { pid, s->email, s->name, s->role };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(pid, sizeof pid, "%lld", (long long)practice_id);
	if (db_query(db, sql, 4, params, PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "23505"))
			err_set(err, false, "a staff user with email %s already "
			    "exists in practice %s", s->email, practice_slug);
		goto out;
	}
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

int
db_staff_users_find_email(struct db *db, int64_t practice_id,
    const char *email, int64_t *id_r, struct err *err)
{
	static const char sql[] =
	    "SELECT id FROM staff_users WHERE practice_id = $1"
	    " AND email = $2 AND active";
	char pid[24];
	const char *params[] = { pid, email };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(pid, sizeof pid, "%lld", (long long)practice_id);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = db_get_i64(res, 0, 0, id_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_staff_users_list(struct db *db, int64_t practice_id, db_staff_user_fn *fn,
    void *arg, struct err *err)
{
	static const char sql[] =
	    "SELECT s.id, s.email, s.name, s.role, s.active,"
	    " coalesce(to_char(s.last_login_at AT TIME ZONE 'UTC',"
	    "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
	    " (SELECT count(*) FROM patients p"
	    "   WHERE p.practice_id = s.practice_id"
	    "   AND p.assigned_staff_id = s.id)"
	    " FROM staff_users s WHERE s.practice_id = $1"
	    " ORDER BY array_position(ARRAY['owner','admin','staff','viewer'],"
	    " s.role), s.email";
	char pid[24];
	const char *params[] = { pid };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(pid, sizeof pid, "%lld", (long long)practice_id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		struct db_staff_user s = {
			.email = PQgetvalue(res, i, 1),
			.name = PQgetvalue(res, i, 2),
			.role = PQgetvalue(res, i, 3),
			.active = strcmp(PQgetvalue(res, i, 4), "t") == 0,
			.last_login_at = PQgetvalue(res, i, 5),
		};
		if (db_get_i64(res, i, 0, &s.id, err) < 0 ||
		    db_get_i64(res, i, 6, &s.patient_count, err) < 0 ||
		    fn(&s, arg, err) < 0)
			goto out;
	}
	ret = 0;
out:
	PQclear(res);
	return ret;
}
