/* common/db_sessions.c: all SQL on sessions (see db_sessions.h). */
#include "common/db_sessions.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"

int
db_sessions_insert(struct db *db, const struct db_session_new *s,
    int64_t *id_r, struct err *err)
{
	/* The person's last sign-in is written by the same statement, so a
	 * session never exists without it. */
	static const char sql[] =
	    "WITH ins AS ("
	    " INSERT INTO sessions (token_hash, staff_user_id, patient_id,"
	    "  csrf_secret, ip, user_agent, expires_at)"
	    " VALUES (decode($1, 'hex'), $2::bigint, $3::bigint,"
	    "  decode($4, 'hex'), $5::inet, $6::text,"
	    "  now() + $7::int * interval '1 hour')"
	    " RETURNING id"
	    "), st AS ("
	    " UPDATE staff_users SET last_login_at = now()"
	    "  WHERE id = $2::bigint"
	    "), pt AS ("
	    " UPDATE patients SET last_portal_login = now()"
	    "  WHERE id = $3::bigint"
	    ") SELECT id FROM ins";
	char th[CRYPTO_HASH_BYTES * 2 + 1], cs[DB_SESSION_CSRF_BYTES * 2 + 1];
	char sid[24], pid[24], hours[16];
	const char *params[] = { th, NULL, NULL, cs, s->ip, s->user_agent,
		                 hours };
	PGresult *res = NULL;
	int ret = -1;

	if ((s->staff_user_id > 0) == (s->patient_id > 0))
		BUG("session for staff %lld and patient %lld",
		    (long long)s->staff_user_id, (long long)s->patient_id);
	crypto_hex(s->token_hash, CRYPTO_HASH_BYTES, th);
	crypto_hex(s->csrf_secret, DB_SESSION_CSRF_BYTES, cs);
	if (s->staff_user_id > 0) {
		snprintf(sid, sizeof sid, "%lld", (long long)s->staff_user_id);
		params[1] = sid;
	} else {
		snprintf(pid, sizeof pid, "%lld", (long long)s->patient_id);
		params[2] = pid;
	}
	snprintf(hours, sizeof hours, "%d", s->hours);
	if (db_query(db, sql, 7, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	sodium_memzero(cs, sizeof cs);
	PQclear(res);
	return ret;
}

int
db_sessions_find(struct db *db, const uint8_t token_hash[CRYPTO_HASH_BYTES],
    struct db_session *s_r, struct err *err)
{
	static const char sql[] =
	    "WITH s AS ("
	    " SELECT x.id, x.staff_user_id, x.patient_id, x.last_seen_at,"
	    "  encode(x.csrf_secret, 'hex') AS csrf"
	    " FROM sessions x WHERE x.token_hash = decode($1, 'hex')"
	    "  AND x.revoked_at IS NULL AND x.expires_at > now()"
	    "), who AS ("
	    " SELECT s.id, u.practice_id, u.name::text AS name, u.role AS role"
	    "  FROM s JOIN staff_users u ON u.id = s.staff_user_id"
	    "  JOIN practices p ON p.id = u.practice_id"
	    "  WHERE u.active AND p.active"
	    " UNION ALL"
	    " SELECT s.id, t.practice_id,"
	    "  concat_ws(' ', t.first_name::text, t.last_name::text),"
	    "  'patient'"
	    "  FROM s JOIN patients t ON t.id = s.patient_id"
	    "  JOIN practices p ON p.id = t.practice_id"
	    "  WHERE t.portal_access AND p.active"
	    "), touch AS ("
	    " UPDATE sessions SET last_seen_at = now() FROM s, who"
	    "  WHERE sessions.id = s.id AND who.id = s.id"
	    "  AND s.last_seen_at < now() - interval '1 minute'"
	    ") SELECT s.id, s.staff_user_id, s.patient_id, who.practice_id,"
	    "  who.name, p.name::text, who.role, s.csrf"
	    " FROM s JOIN who USING (id) JOIN practices p"
	    "  ON p.id = who.practice_id";
	char th[CRYPTO_HASH_BYTES * 2 + 1];
	const char *params[] = { th };
	PGresult *res = NULL;
	const char *cs;
	int ret = -1;

	memset(s_r, 0, sizeof *s_r);
	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) != 1)
		goto out;
	ret = -1;
	if (db_get_i64(res, 0, 0, &s_r->id, err) < 0 ||
	    (!PQgetisnull(res, 0, 1) &&
	        db_get_i64(res, 0, 1, &s_r->staff_user_id, err) < 0) ||
	    (!PQgetisnull(res, 0, 2) &&
	        db_get_i64(res, 0, 2, &s_r->patient_id, err) < 0) ||
	    db_get_i64(res, 0, 3, &s_r->practice_id, err) < 0)
		goto out;
	if (!str_copy(s_r->name, sizeof s_r->name, PQgetvalue(res, 0, 4)) ||
	    !str_copy(s_r->practice_name, sizeof s_r->practice_name,
	        PQgetvalue(res, 0, 5)) ||
	    !str_copy(s_r->role, sizeof s_r->role, PQgetvalue(res, 0, 6))) {
		err_set(err, false, "session: value too long");
		goto out;
	}
	cs = PQgetvalue(res, 0, 7);
	if (strlen(cs) != DB_SESSION_CSRF_BYTES * 2 ||
	    sodium_hex2bin(s_r->csrf_secret, sizeof s_r->csrf_secret, cs,
	        strlen(cs), NULL, NULL, NULL) != 0) {
		err_set(err, false, "session: bad csrf_secret");
		goto out;
	}
	ret = 1;
out:
	if (ret != 1)
		sodium_memzero(s_r, sizeof *s_r);
	PQclear(res);
	return ret;
}

int
db_sessions_revoke(struct db *db, int64_t id, struct err *err)
{
	static const char sql[] =
	    "UPDATE sessions SET revoked_at = now()"
	    " WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id";
	char ids[24];
	const char *params[] = { ids };
	PGresult *res = NULL;
	int ret;

	snprintf(ids, sizeof ids, "%lld", (long long)id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1;
	PQclear(res);
	return ret;
}
