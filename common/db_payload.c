/* common/db_payload.c: job payload fields (see db_payload.h). */
#include "common/db_payload.h"

#include <string.h>

#include "common/mem.h"

int
db_payload_get(struct db *db, const char *payload, const char *const *keys,
    int n, char **vals, struct err *err)
{
	static const char sql[] =
	    "SELECT jsonb_typeof(j), j->>$2, j->>$3, j->>$4, j->>$5"
	    " FROM (SELECT $1::jsonb AS j) p";
	const char *params[1 + DB_PAYLOAD_KEYS_MAX] = { payload, "", "", "", "" };
	PGresult *res = NULL;
	int ret = -1;

	if (n < 0 || n > DB_PAYLOAD_KEYS_MAX)
		BUG("db_payload_get: %d keys", n);
	for (int i = 0; i < n; i++) {
		params[1 + i] = keys[i];
		vals[i] = NULL;
	}
	if (db_query_prepared(db, "db_payload_get", sql,
	    1 + DB_PAYLOAD_KEYS_MAX, params, PGRES_TUPLES_OK,
	        &res, err) < 0) {
		if (db_err_is(err, "22P02"))
			err_set(err, false, "payload is not valid JSON");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "object") != 0) {
		err_set(err, false, "payload is not a JSON object");
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!PQgetisnull(res, 0, 1 + i))
			vals[i] = xstrdup(PQgetvalue(res, 0, 1 + i));
	ret = 0;
out:
	PQclear(res);
	return ret;
}
