/* common/db_practices.c: all SQL on practices (see db_practices.h). */
#include "common/db_practices.h"

#include <stdio.h>
#include <string.h>

#include "common/mem.h"

int
db_practices_insert(struct db *db, const struct db_practice_new *p,
    int64_t *id_r, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO practices (name, slug, timezone, from_address,"
	    " reply_domain) VALUES ($1, $2, coalesce($3, 'UTC'), $4, $5)"
	    " RETURNING id";
	const char *params[] = { p->name, p->slug, p->timezone,
		                 p->from_address, p->reply_domain };
	PGresult *res = NULL;
	int ret = -1;

	if (db_query(db, sql, 5, params, PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "23505"))
			err_set(err, false, "a practice with slug %s already "
			    "exists", p->slug);
		else if (db_err_is(err, "22023") || db_err_is(err, "23514"))
			err_prefix(err, "practice %s (check --timezone, "
			    "--from-address and --reply-domain)", p->slug);
		goto out;
	}
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

int
db_practices_find_slug(struct db *db, const char *slug, int64_t *id_r,
    struct err *err)
{
	static const char sql[] = "SELECT id FROM practices WHERE slug = $1";
	const char *params[] = { slug };
	PGresult *res = NULL;
	int64_t id;
	int ret = -1;

	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1) {
		if (db_get_i64(res, 0, 0, &id, err) < 0) {
			ret = -1;
			goto out;
		}
		if (id_r != NULL)
			*id_r = id;
		ret = 1;
	}
out:
	PQclear(res);
	return ret;
}

int
db_practices_list(struct db *db, db_practice_fn *fn, void *arg,
    struct err *err)
{
	static const char sql[] =
	    "SELECT p.id, p.name, p.slug, p.timezone, p.from_address,"
	    " p.reply_domain,"
	    " (SELECT count(*) FROM staff_users s WHERE s.practice_id = p.id),"
	    " (SELECT count(*) FROM patients t WHERE t.practice_id = p.id)"
	    " FROM practices p ORDER BY p.slug";
	PGresult *res = NULL;
	int ret = -1;

	if (db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		struct db_practice p = {
			.name = PQgetvalue(res, i, 1),
			.slug = PQgetvalue(res, i, 2),
			.timezone = PQgetvalue(res, i, 3),
			.from_address = PQgetvalue(res, i, 4),
			.reply_domain = PQgetvalue(res, i, 5),
		};
		if (db_get_i64(res, i, 0, &p.id, err) < 0 ||
		    db_get_i64(res, i, 6, &p.staff_count, err) < 0 ||
		    db_get_i64(res, i, 7, &p.patient_count, err) < 0 ||
		    fn(&p, arg, err) < 0)
			goto out;
	}
	ret = 0;
out:
	PQclear(res);
	return ret;
}

/* Patients and staff are RESTRICTed on their practice (a practice must not
 * vanish by accident), so they go first, explicitly; what hangs off them
 * and off the practice cascades. */
static int
delete_tx(struct db *db, void *arg, struct err *err)
{
	const char *params[] = { arg };
	PGresult *res = NULL;
	int n;

	if (db_cmd(db, "DELETE FROM patients WHERE practice_id = $1", 1, params,
	        err) < 0 ||
	    db_cmd(db, "DELETE FROM staff_users WHERE practice_id = $1", 1,
	        params, err) < 0 ||
	    db_query(db, "DELETE FROM practices WHERE id = $1 RETURNING id", 1,
	        params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n == 1 ? 1 : 0;
}

int
db_practices_delete(struct db *db, int64_t id, struct err *err)
{
	char idbuf[24];

	snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	/* inside the caller's transaction (demo seed --force deletes and
	 * recreates in one), else in its own */
	if (PQtransactionStatus(db_conn(db)) == PQTRANS_INTRANS)
		return delete_tx(db, idbuf, err);
	return db_tx(db, delete_tx, idbuf, err);
}
