/* common/db_login_tokens.c: all SQL on login_tokens (see
 * db_login_tokens.h). */
#include "common/db_login_tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"


static int
fill_subject(PGresult *res, struct db_login_subject *s, struct err *err)
{
	int64_t sid = 0, pid = 0;

	memset(s, 0, sizeof *s);
	if (!PQgetisnull(res, 0, 0) && db_get_i64(res, 0, 0, &sid, err) < 0)
		return -1;
	if (!PQgetisnull(res, 0, 1) && db_get_i64(res, 0, 1, &pid, err) < 0)
		return -1;
	s->staff_user_id = sid;
	s->patient_id = pid;
	if (db_get_i64(res, 0, 2, &s->practice_id, err) < 0)
		return -1;
	if (!str_copy(s->email, sizeof s->email, PQgetvalue(res, 0, 3)) ||
	    !str_copy(s->practice_name, sizeof s->practice_name,
	        PQgetvalue(res, 0, 4)) ||
	    !str_copy(s->from_name, sizeof s->from_name,
	        PQgetvalue(res, 0, 5)) ||
	    !str_copy(s->from_address, sizeof s->from_address,
	        PQgetvalue(res, 0, 6)))
		return err_set(err, false, "login subject: value too long");
	return 0;
}

int
db_login_tokens_find_subject(struct db *db, const char *email,
    int64_t practice_id, struct db_login_subject *s_r, struct err *err)
{
	/* $1 is inferred as citext from the columns (migrations/README). */
	static const char sql[] =
	    "SELECT * FROM ("
	    " SELECT s.id AS sid, NULL::bigint AS pid, s.practice_id, s.email::text,"
	    "  p.name::text, coalesce(p.from_name::text, ''), p.from_address::text,"
	    "  0 AS rank"
	    " FROM staff_users s JOIN practices p ON p.id = s.practice_id"
	    " WHERE s.email = $1 AND s.active AND p.active"
	    "  AND ($2::bigint = 0 OR s.practice_id = $2::bigint)"
	    " UNION ALL"
	    " SELECT NULL, t.id, t.practice_id, t.email::text,"
	    "  p.name::text, coalesce(p.from_name::text, ''), p.from_address::text,"
	    "  1"
	    " FROM patients t JOIN practices p ON p.id = t.practice_id"
	    " WHERE t.email = $1 AND t.portal_access AND p.active"
	    "  AND ($2::bigint = 0 OR t.practice_id = $2::bigint)"
	    ") x ORDER BY rank, coalesce(sid, pid) LIMIT 1";
	char pr[24];
	const char *params[] = { email, pr };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(pr, sizeof pr, "%lld", (long long)practice_id);
	if (db_query_prepared(db, "db_login_tokens_find_subject", sql,
	    2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = fill_subject(res, s_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_subject_by_id(struct db *db, int64_t staff_user_id,
    int64_t patient_id, struct db_login_subject *s_r, struct err *err)
{
	static const char sql[] =
	    "SELECT s.id, NULL::bigint, s.practice_id, s.email::text,"
	    "  p.name::text, coalesce(p.from_name::text, ''), p.from_address::text"
	    " FROM staff_users s JOIN practices p ON p.id = s.practice_id"
	    " WHERE s.id = $1::bigint AND s.active AND p.active"
	    " UNION ALL"
	    " SELECT NULL, t.id, t.practice_id, t.email::text,"
	    "  p.name::text, coalesce(p.from_name::text, ''), p.from_address::text"
	    " FROM patients t JOIN practices p ON p.id = t.practice_id"
	    " WHERE t.id = $2::bigint AND t.portal_access AND p.active"
	    " LIMIT 1";
	char sid[24], pid[24];
	const char *params[] = { sid, pid };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(sid, sizeof sid, "%lld", (long long)staff_user_id);
	snprintf(pid, sizeof pid, "%lld", (long long)patient_id);
	if (db_query_prepared(db, "db_login_tokens_subject_by_id", sql,
	    2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = fill_subject(res, s_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_insert(struct db *db, const struct db_login_subject *s,
    const uint8_t token_hash[CRYPTO_HASH_BYTES],
    const uint8_t code_hash[CRYPTO_HASH_BYTES], int64_t lifetime_s,
    const char *requested_ip, int64_t *id_r, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO login_tokens (token_hash, code_hash, staff_user_id,"
	    " patient_id, purpose, expires_at, requested_ip)"
	    " VALUES (decode($1, 'hex'), decode($2, 'hex'), $3::bigint,"
	    " $4::bigint, 'login', now() + $5::bigint * interval '1 second',"
	    " $6::inet) RETURNING id";
	char th[CRYPTO_HASH_BYTES * 2 + 1], ch[CRYPTO_HASH_BYTES * 2 + 1];
	char sid[24], pid[24], life[24];
	const char *params[] = { th, ch, NULL, NULL, life, requested_ip };
	PGresult *res = NULL;
	int ret = -1;

	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	crypto_hex(code_hash, CRYPTO_HASH_BYTES, ch);
	if (s->staff_user_id > 0) {
		snprintf(sid, sizeof sid, "%lld", (long long)s->staff_user_id);
		params[2] = sid;
	} else {
		snprintf(pid, sizeof pid, "%lld", (long long)s->patient_id);
		params[3] = pid;
	}
	snprintf(life, sizeof life, "%lld", (long long)lifetime_s);
	if (db_query_prepared(db, "db_login_tokens_insert", sql,
	    6, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

/* The subject columns of a RETURNING: staff_user_id, patient_id. */
static int
get_subject(PGresult *res, int64_t *staff_r, int64_t *patient_r,
    struct err *err)
{
	*staff_r = 0;
	*patient_r = 0;
	if (!PQgetisnull(res, 0, 0))
		return db_get_i64(res, 0, 0, staff_r, err);
	return db_get_i64(res, 0, 1, patient_r, err);
}

int
db_login_tokens_consume(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], int64_t *staff_r,
    int64_t *patient_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE login_tokens SET used_at = now()"
	    " WHERE token_hash = decode($1, 'hex') AND used_at IS NULL"
	    " AND expires_at > now() AND purpose = 'login'"  /* check and spend */
	    " RETURNING staff_user_id, patient_id";
	char th[CRYPTO_HASH_BYTES * 2 + 1];
	const char *params[] = { th };
	PGresult *res = NULL;
	int ret = -1;

	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = get_subject(res, staff_r, patient_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_consume_id(struct db *db, int64_t id, int64_t *staff_r,
    int64_t *patient_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE login_tokens SET used_at = now()"
	    " WHERE id = $1::bigint AND used_at IS NULL"
	    " AND expires_at > now() AND purpose = 'login'"
	    " RETURNING staff_user_id, patient_id";
	char ids[24];
	const char *params[] = { ids };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(ids, sizeof ids, "%lld", (long long)id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = get_subject(res, staff_r, patient_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_code_attempt(struct db *db, const char *email,
    int max_attempts, int64_t *id_r, uint8_t code_hash_r[CRYPTO_HASH_BYTES],
    bool *locked_r, struct err *err)
{
	/* The UPDATE re-checks code_attempts < $2 on the row it locks, so
	 * concurrent attempts cannot pass the cap together. $1 is inferred
	 * as citext from the columns. */
	static const char sql[] =
	    "WITH latest AS ("
	    " SELECT id FROM ("
	    "  SELECT lt.id FROM login_tokens lt"
	    "   JOIN staff_users s ON s.id = lt.staff_user_id"
	    "   WHERE s.email = $1 AND lt.purpose = 'login'"
	    "   AND lt.used_at IS NULL AND lt.expires_at > now()"
	    "   AND lt.code_hash IS NOT NULL"
	    "  UNION ALL"
	    "  SELECT lt.id FROM login_tokens lt"
	    "   JOIN patients p ON p.id = lt.patient_id"
	    "   WHERE p.email = $1 AND lt.purpose = 'login'"
	    "   AND lt.used_at IS NULL AND lt.expires_at > now()"
	    "   AND lt.code_hash IS NOT NULL"
	    " ) x ORDER BY id DESC LIMIT 1"
	    "), upd AS ("
	    " UPDATE login_tokens t SET code_attempts = t.code_attempts + 1"
	    "  FROM latest WHERE t.id = latest.id"
	    "  AND t.code_attempts < $2::int"
	    "  RETURNING t.id, encode(t.code_hash, 'hex') AS h"
	    ") SELECT latest.id, upd.h FROM latest LEFT JOIN upd USING (id)";
	char max[16];
	const char *params[] = { email, max };
	PGresult *res = NULL;
	const char *h;
	int ret = -1;

	*locked_r = false;
	snprintf(max, sizeof max, "%d", max_attempts);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) != 1)
		goto out;
	if (PQgetisnull(res, 0, 1)) {
		*locked_r = true;
		goto out;
	}
	h = PQgetvalue(res, 0, 1);
	if (strlen(h) != CRYPTO_HASH_BYTES * 2 ||
	    sodium_hex2bin(code_hash_r, CRYPTO_HASH_BYTES, h, strlen(h), NULL,
	        NULL, NULL) != 0) {
		ret = err_set(err, false, "login token: bad code hash");
		goto out;
	}
	ret = db_get_i64(res, 0, 0, id_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

/* --- confirm_sender -------------------------------------------------- */

int
db_login_tokens_insert_confirm(struct db *db, int64_t patient_id,
    int64_t inbound_mail_id, const uint8_t token_hash[CRYPTO_HASH_BYTES],
    int64_t lifetime_s, int64_t *id_r, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO login_tokens (token_hash, patient_id, purpose,"
	    " inbound_mail_id, expires_at)"
	    " VALUES (decode($1, 'hex'), $2::bigint, 'confirm_sender',"
	    " $3::bigint, now() + $4::bigint * interval '1 second')"
	    " RETURNING id";
	char th[CRYPTO_HASH_BYTES * 2 + 1], pid[24], mid[24], life[24];
	const char *params[] = { th, pid, mid, life };
	PGresult *res = NULL;
	int ret = -1;

	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	snprintf(pid, sizeof pid, "%lld", (long long)patient_id);
	snprintf(mid, sizeof mid, "%lld", (long long)inbound_mail_id);
	snprintf(life, sizeof life, "%lld", (long long)lifetime_s);
	if (db_query(db, sql, 4, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_confirm_peek(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], struct db_confirm_view *v_r,
    struct err *err)
{
	/* The reader's zone: the patient's, else the practice's (a zone
	 * that stopped resolving would fail the query: UTC is not needed as
	 * a fallback while the triggers check zones on write). */
	static const char sql[] =
	    "SELECT coalesce(m.from_addr::text, ''),"
	    " to_char(m.received_at AT TIME ZONE z.tz, 'FMDD Mon YYYY, HH24:MI')"
	    "  || ' (' || z.tz || ')',"
	    " p.name::text"
	    " FROM login_tokens t"
	    " JOIN inbound_mail m ON m.id = t.inbound_mail_id"
	    " JOIN patients pt ON pt.id = t.patient_id"
	    " JOIN practices p ON p.id = pt.practice_id"
	    " CROSS JOIN LATERAL (SELECT coalesce(pt.timezone::text,"
	    "  p.timezone::text) AS tz) z"
	    " WHERE t.token_hash = decode($1, 'hex')"
	    " AND t.purpose = 'confirm_sender' AND t.used_at IS NULL"
	    " AND t.expires_at > now()"
	    " AND m.outcome = 'held' AND m.hold_state = 'pending'";
	char th[CRYPTO_HASH_BYTES * 2 + 1];
	const char *params[] = { th };
	PGresult *res = NULL;
	int ret = -1;

	memset(v_r, 0, sizeof *v_r);
	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) != 1)
		goto out;
	if (!str_copy(v_r->sender, sizeof v_r->sender, PQgetvalue(res, 0, 0)) ||
	    !str_copy(v_r->received, sizeof v_r->received,
	        PQgetvalue(res, 0, 1)) ||
	    !str_copy(v_r->practice_name, sizeof v_r->practice_name,
	        PQgetvalue(res, 0, 2))) {
		ret = err_set(err, false, "confirm view: value too long");
		goto out;
	}
	ret = 1;
out:
	PQclear(res);
	return ret;
}

int
db_login_tokens_confirm_consume(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], int64_t *inbound_mail_id_r,
    int64_t *patient_id_r, struct err *err)
{
	/* Both UPDATEs see one snapshot; the second skips the row the first
	 * spends, so no row is updated twice. Two racing requests for one
	 * token: the loser re-checks used_at after the winner commits and
	 * spends nothing. */
	static const char sql[] =
	    "WITH spent AS ("
	    " UPDATE login_tokens t SET used_at = now()"
	    " FROM inbound_mail m"
	    " WHERE t.token_hash = decode($1, 'hex')"
	    " AND t.purpose = 'confirm_sender' AND t.used_at IS NULL"
	    " AND t.expires_at > now()"                 /* check and spend */
	    " AND m.id = t.inbound_mail_id"
	    " AND m.outcome = 'held' AND m.hold_state = 'pending'"
	    " RETURNING t.id, t.inbound_mail_id, t.patient_id),"
	    " others AS ("
	    " UPDATE login_tokens o SET used_at = now() FROM spent"
	    " WHERE o.inbound_mail_id = spent.inbound_mail_id"
	    " AND o.purpose = 'confirm_sender' AND o.used_at IS NULL"
	    " AND o.id <> spent.id)"
	    " SELECT inbound_mail_id, patient_id FROM spent";
	char th[CRYPTO_HASH_BYTES * 2 + 1];
	const char *params[] = { th };
	PGresult *res = NULL;
	int ret = -1;

	*inbound_mail_id_r = *patient_id_r = 0;
	crypto_hex(token_hash, CRYPTO_HASH_BYTES, th);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = db_get_i64(res, 0, 0, inbound_mail_id_r, err) < 0 ||
		    db_get_i64(res, 0, 1, patient_id_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}
