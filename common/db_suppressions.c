/* common/db_suppressions.c: all SQL on suppressions (see
 * db_suppressions.h). */
#include "common/db_suppressions.h"

#include <stdio.h>

#include "common/mem.h"

int
db_suppressions_find(struct db *db, const char *email, int64_t practice_id,
    char *reason, size_t size, struct err *err)
{
	/* $1 inferred as the column's type (citext): case-insensitive. */
	static const char sql[] =
	    "SELECT reason FROM suppressions WHERE email = $1"
	    " AND (practice_id = $2::bigint OR practice_id IS NULL)"
	    " ORDER BY practice_id NULLS FIRST LIMIT 1";
	char pr[24];
	const char *params[] = { email, pr };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(pr, sizeof pr, "%lld", (long long)practice_id);
	if (db_query_prepared(db, "db_suppressions_find", sql,
	    2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1) {
		str_copy(reason, size, PQgetvalue(res, 0, 0));
		ret = 1;
	}
out:
	PQclear(res);
	return ret;
}

int
db_suppressions_add_bounce(struct db *db, int64_t delivery_id,
    const char *reply, struct err *err)
{
	/* Touches patients too: the bounce and its banner are one fact. */
	static const char sql[] =
	    "WITH d AS (SELECT id, recipient, patient_id FROM deliveries"
	    "  WHERE id = $1::bigint),"
	    " s AS (INSERT INTO suppressions (email, practice_id, reason, source,"
	    "  delivery_id) SELECT recipient, NULL, 'hard_bounce', 'smtp', id"
	    "  FROM d ON CONFLICT DO NOTHING RETURNING id)"
	    " UPDATE patients SET bounce_state = 'hard', last_bounce_at = now(),"
	    "  last_bounce_reason = left($2, 1000)"
	    " WHERE id = (SELECT patient_id FROM d)";
	char sid[24];
	const char *params[] = { sid, reply };

	snprintf(sid, sizeof sid, "%lld", (long long)delivery_id);
	return db_query_prepared(db, "db_suppressions_add_bounce", sql,
	    2, params,
	    PGRES_COMMAND_OK, NULL, err);
}
