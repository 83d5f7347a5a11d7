/* common/db_inbound_mail.c: SQL of the IMAP ingester (see
 * db_inbound_mail.h). */
#include "common/db_inbound_mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/mem.h"

#define I64(buf, v) snprintf((buf), sizeof(buf), "%lld", (long long)(v))

/* A prepared query whose answer is at most one row with a bigint first:
 * 1 and *id_r, 0 no row, -1 error. */
static int
query_id(struct db *db, const char *name, const char *sql, int n,
    const char *const *params, int64_t *id_r, struct err *err)
{
	PGresult *res;
	int ret = 0;

	*id_r = 0;
	if (db_query_prepared(db, name, sql, n, params, PGRES_TUPLES_OK, &res,
	    err) < 0)
		return -1;
	if (PQntuples(res) == 1)
		ret = db_get_i64(res, 0, 0, id_r, err) < 0 ? -1 : 1;
	PQclear(res);
	return ret;
}

int
db_inbound_lock(struct db *db, const char *mailbox, struct err *err)
{
	static const char sql[] =
	    "SELECT pg_try_advisory_lock(hashtextextended('postern.imap:' || $1, 0))";
	const char *params[] = { mailbox };
	PGresult *res;
	int ret;

	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return ret;
}

void
db_inbound_unlock(struct db *db, const char *mailbox)
{
	static const char sql[] =
	    "SELECT pg_advisory_unlock(hashtextextended('postern.imap:' || $1, 0))";
	const char *params[] = { mailbox };
	struct err err = { 0 };

	/* a lost connection has dropped the lock already */
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, NULL, &err) < 0)
		return;
}

int
db_inbound_last_uid(struct db *db, const char *mailbox, uint32_t uidvalidity,
    uint32_t *last_r, bool *other_r, struct err *err)
{
	static const char sql[] =
	    "SELECT coalesce((SELECT last_uid FROM mailbox_state"
	    "  WHERE mailbox = $1 AND uidvalidity = $2::bigint), 0),"
	    " EXISTS (SELECT 1 FROM mailbox_state WHERE mailbox = $1"
	    "  AND uidvalidity <> $2::bigint)";
	char uv[16];
	const char *params[] = { mailbox, uv };
	PGresult *res;
	int64_t v;

	I64(uv, uidvalidity);
	if (db_query_prepared(db, "ib_last_uid", sql, 2, params,
	    PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	if (db_get_i64(res, 0, 0, &v, err) < 0) {
		PQclear(res);
		return -1;
	}
	*last_r = (uint32_t)v;
	*other_r = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return 0;
}

int
db_inbound_advance(struct db *db, const char *mailbox, uint32_t uidvalidity,
    uint32_t last_uid, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid)"
	    " VALUES ($1, $2::bigint, $3::bigint)"
	    " ON CONFLICT (mailbox, uidvalidity) DO UPDATE"
	    " SET last_uid = greatest(mailbox_state.last_uid, EXCLUDED.last_uid),"
	    "  updated_at = now()";
	char uv[16], lu[16];
	const char *params[] = { mailbox, uv, lu };

	I64(uv, uidvalidity);
	I64(lu, last_uid);
	return db_query_prepared(db, "ib_advance", sql, 3, params,
	    PGRES_COMMAND_OK, NULL, err);
}

int
db_inbound_thread(struct db *db, int64_t thread_id, struct db_thread *t,
    struct err *err)
{
	static const char sql[] =
	    "SELECT m.id, m.patient_id, m.practice_id,"
	    " coalesce(p.assigned_staff_id, 0),"
	    " coalesce((SELECT o.staff_user_id FROM patient_messages o"
	    "   WHERE o.patient_id = m.patient_id AND o.thread_id = m.id"
	    "   AND o.direction = 'outbound' AND o.staff_user_id IS NOT NULL"
	    "   ORDER BY o.created_at DESC, o.id DESC LIMIT 1),"
	    "  p.assigned_staff_id, 0),"
	    " pr.red_flag_autoack, p.email,"
	    " btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, ''))"
	    " FROM patient_messages m"
	    " JOIN patients p ON p.id = m.patient_id"
	    " JOIN practices pr ON pr.id = m.practice_id"
	    " WHERE m.id = $1::bigint AND m.thread_id = m.id";
	char id[24];
	const char *params[] = { id };
	PGresult *res;
	int ret = 0;

	memset(t, 0, sizeof *t);
	I64(id, thread_id);
	if (db_query_prepared(db, "ib_thread", sql, 1, params, PGRES_TUPLES_OK,
	    &res, err) < 0)
		return -1;
	if (PQntuples(res) == 1) {
		if (db_get_i64(res, 0, 0, &t->thread_id, err) < 0 ||
		    db_get_i64(res, 0, 1, &t->patient_id, err) < 0 ||
		    db_get_i64(res, 0, 2, &t->practice_id, err) < 0 ||
		    db_get_i64(res, 0, 3, &t->coach_id, err) < 0 ||
		    db_get_i64(res, 0, 4, &t->addressee_id, err) < 0) {
			ret = -1;
		} else {
			t->autoack = PQgetvalue(res, 0, 5)[0] == 't';
			snprintf(t->email, sizeof t->email, "%s",
			    PQgetvalue(res, 0, 6));
			snprintf(t->name, sizeof t->name, "%s",
			    PQgetvalue(res, 0, 7));
			ret = 1;
		}
	}
	PQclear(res);
	return ret;
}

int
db_inbound_patient_by_email(struct db *db, const char *email,
    int64_t *patient_id_r, struct err *err)
{
	static const char sql[] =
	    "SELECT id FROM patients WHERE email = $1::citext"
	    " ORDER BY id LIMIT 1";
	const char *params[] = { email };

	return query_id(db, "ib_patient_by_email", sql, 1, params, patient_id_r,
	    err);
}

int
db_inbound_insert(struct db *db, const struct db_inbound_row *r, int64_t *id_r,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO inbound_mail (mailbox, uidvalidity, uid, message_id,"
	    " sha256, from_addr, subject, size, outcome, reason, practice_id,"
	    " patient_id, hold_state, raw, received_at)"
	    " VALUES ($1, $2::bigint, $3::bigint, $4, $5::bytea, $6, $7,"
	    " $8::bigint, $9, $10, $11::bigint, $12::bigint, $13, $14::bytea,"
	    " CASE WHEN $15::bigint = 0 THEN now() ELSE to_timestamp($15::bigint) END)"
	    " ON CONFLICT DO NOTHING RETURNING id";
	char uv[16], uid[16], size[24], pr[24], pa[24], at[24];
	const char *params[15];
	int lengths[15] = { 0 }, formats[15] = { 0 };
	PGresult *res;
	int ret = 0;

	*id_r = 0;
	I64(uv, r->uidvalidity);
	I64(uid, r->uid);
	I64(size, r->size);
	I64(pr, r->practice_id);
	I64(pa, r->patient_id);
	I64(at, r->received_at);
	params[0] = r->mailbox;
	params[1] = uv;
	params[2] = uid;
	params[3] = r->message_id;
	params[4] = (const char *)r->sha256;
	lengths[4] = 32;
	formats[4] = 1;
	params[5] = r->from_addr;
	params[6] = r->subject;
	params[7] = size;
	params[8] = r->outcome;
	params[9] = r->reason;
	params[10] = r->practice_id ? pr : NULL;
	params[11] = r->patient_id ? pa : NULL;
	params[12] = r->held ? "pending" : NULL;
	params[13] = r->raw;
	lengths[13] = (int)r->raw_len;
	formats[13] = 1;
	params[14] = at;
	if (db_query_prepared_bin(db, "ib_insert", sql, 15, params, lengths,
	    formats, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	if (PQntuples(res) == 1)
		ret = db_get_i64(res, 0, 0, id_r, err) < 0 ? -1 : 1;
	PQclear(res);
	return ret;
}

int
db_inbound_set_outcome(struct db *db, int64_t id, const char *outcome,
    const char *reason, struct err *err)
{
	static const char sql[] =
	    "UPDATE inbound_mail SET outcome = $2, reason = $3"
	    " WHERE id = $1::bigint";
	char sid[24];
	const char *params[] = { sid, outcome, reason };

	I64(sid, id);
	return db_query_prepared(db, "ib_set_outcome", sql, 3, params,
	    PGRES_COMMAND_OK, NULL, err);
}

int
db_inbound_message(struct db *db, const struct db_inbound_message *m,
    int64_t *message_id_r, struct err *err)
{
	/* The message, its staff notification(s) and the task in one
	 * statement; a Message-ID already in the thread's patient inserts
	 * nothing. */
	static const char sql[] =
	    "WITH pm AS ("
	    " INSERT INTO patient_messages (practice_id, patient_id,"
	    "  staff_user_id, thread_id, direction, channel, subject, body,"
	    "  elided, confidence, message_id, in_reply_to, thread_refs,"
	    "  inbound_mail_id)"
	    " VALUES ($1::bigint, $2::bigint, nullif($3::bigint, 0), $4::bigint,"
	    "  'inbound', 'email', $5, $6, $7, $8, $9, $10,"
	    "  ARRAY(SELECT (x)[1]::msgid FROM regexp_matches(coalesce($11, ''),"
	    "   '<([^<>[:space:][:cntrl:]]+)>', 'g') x"
	    "   WHERE length((x)[1]) BETWEEN 3 AND 995 LIMIT 100),"
	    "  $12::bigint)"
	    " ON CONFLICT (patient_id, message_id) DO NOTHING RETURNING id),"
	    "sn AS ("
	    " INSERT INTO staff_notifications (staff_user_id, patient_id, type,"
	    "  title, body, action_url)"
	    " SELECT s.id, $2::bigint,"
	    "  CASE WHEN $13::boolean THEN 'urgent_message' ELSE 'patient_reply' END,"
	    "  left($14, 255), '', '/staff/patients/' || $2::bigint || '/messages'"
	    " FROM pm, staff_users s"
	    " WHERE s.practice_id = $1::bigint AND s.active AND (s.id = $3::bigint"
	    "  OR ($3::bigint = 0 AND s.role IN ('owner', 'admin'))"
	    "  OR ($13::boolean AND s.role <> 'viewer'))"
	    " RETURNING 1),"
	    "t AS ("
	    " INSERT INTO tasks (practice_id, assigned_staff_id, patient_id, kind,"
	    "  title, source_message_id)"
	    " SELECT $1::bigint, nullif($15::bigint, 0), $2::bigint,"
	    "  'reply_needed', left($16, 200), pm.id FROM pm"
	    " ON CONFLICT DO NOTHING RETURNING 1)"
	    "SELECT pm.id, (SELECT count(*) FROM sn), (SELECT count(*) FROM t)"
	    " FROM pm";
	const struct db_thread *t = m->t;
	char pr[24], pa[24], ad[24], th[24], im[24], co[24];
	char title[450], task[450];
	const char *params[16];
	int ret = 0;

	*message_id_r = 0;
	I64(pr, t->practice_id);
	I64(pa, t->patient_id);
	I64(ad, t->addressee_id);
	I64(th, t->thread_id);
	I64(im, m->inbound_mail_id);
	I64(co, t->coach_id ? t->coach_id : t->addressee_id);
	snprintf(title, sizeof title, "%s from %s",
	    m->urgent ? "URGENT message" : "New reply",
	    t->name[0] ? t->name : "a patient");
	snprintf(task, sizeof task, "Reply to %s",
	    t->name[0] ? t->name : "a patient");
	params[0] = pr;
	params[1] = pa;
	params[2] = ad;
	params[3] = th;
	params[4] = m->subject != NULL ? m->subject : "";
	params[5] = m->body;
	params[6] = m->elided;
	params[7] = m->confidence;
	params[8] = m->message_id;
	params[9] = m->in_reply_to;
	params[10] = m->references;
	params[11] = im;
	params[12] = m->urgent ? "true" : "false";
	params[13] = title;
	params[14] = co;
	params[15] = task;
	ret = query_id(db, "ib_message", sql, 16, params, message_id_r, err);
	if (ret == 0 && db_inbound_set_outcome(db, m->inbound_mail_id,
	    "duplicate", "message_id already in the thread", err) < 0)
		return -1;
	return ret;
}

int
db_inbound_attachment(struct db *db, int64_t inbound_mail_id,
    int64_t patient_message_id, const char *filename, const char *content_type,
    const char *data, size_t size, const char *refused, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO message_attachments (inbound_mail_id,"
	    " patient_message_id, filename, content_type, size, sha256, data,"
	    " refused) VALUES ($1::bigint, nullif($2::bigint, 0), $3, $4,"
	    " $5::bigint, $6::bytea, $7::bytea, $8)";
	char im[24], pm[24], sz[24];
	uint8_t sum[32];
	const char *params[8];
	int lengths[8] = { 0 }, formats[8] = { 0 };

	I64(im, inbound_mail_id);
	I64(pm, patient_message_id);
	I64(sz, size);
	params[0] = im;
	params[1] = pm;
	params[2] = filename;
	params[3] = content_type;
	params[4] = sz;
	params[5] = NULL;
	params[6] = NULL;
	params[7] = refused;
	if (data != NULL) {
		crypto_sha256(data, size, sum);
		params[5] = (const char *)sum;
		lengths[5] = 32;
		formats[5] = 1;
		params[6] = data;
		lengths[6] = (int)size;
		formats[6] = 1;
	}
	return db_query_prepared_bin(db, "ib_attachment", sql, 8, params, lengths,
	    formats, PGRES_COMMAND_OK, NULL, err);
}

int
db_inbound_delivery_by_rcpt(struct db *db, const char *rcpt, int64_t *id_r,
    struct err *err)
{
	static const char sql[] =
	    "SELECT id FROM deliveries WHERE recipient = $1::citext"
	    " AND state IN ('sent', 'deferred')"
	    " AND created_at > now() - interval '14 days'"
	    " ORDER BY created_at DESC, id DESC LIMIT 1";
	const char *params[] = { rcpt };

	return query_id(db, "ib_delivery_by_rcpt", sql, 1, params, id_r, err);
}

int
db_inbound_bounce(struct db *db, int64_t delivery_id, const char *reason,
    bool hard, int64_t *patient_id_r, int64_t *practice_id_r, struct err *err)
{
	/* The soft-bounce count reads the snapshot before this statement's
	 * own update, hence "+ 1". */
	static const char sql[] =
	    "WITH d AS ("
	    " UPDATE deliveries SET state = 'bounced', bounced_at = now(),"
	    "  bounce_reason = left($2, 2000), updated_at = now()"
	    " WHERE id = $1::bigint"
	    " RETURNING id, recipient, patient_id, practice_id),"
	    "soft AS ("
	    " SELECT count(*) AS n FROM deliveries x, d"
	    " WHERE x.recipient = d.recipient AND x.id <> d.id"
	    "  AND x.state = 'bounced' AND x.bounced_at > now() - interval '7 days'"
	    "  AND x.bounce_reason LIKE '4.%'),"
	    "sup AS ("
	    " INSERT INTO suppressions (email, practice_id, reason, source,"
	    "  delivery_id)"
	    " SELECT d.recipient, NULL, 'hard_bounce',"
	    "  CASE WHEN $3::boolean THEN 'dsn' ELSE 'dsn: 3 soft bounces in 7 days' END,"
	    "  d.id FROM d, soft WHERE $3::boolean OR soft.n + 1 >= 3"
	    " ON CONFLICT DO NOTHING RETURNING 1),"
	    "p AS ("
	    " UPDATE patients SET bounce_state = CASE WHEN $3::boolean"
	    "   OR bounce_state = 'hard' OR (SELECT n FROM soft) + 1 >= 3"
	    "   THEN 'hard' ELSE 'soft' END,"
	    "  last_bounce_at = now(), last_bounce_reason = left($2, 1000)"
	    " FROM d WHERE patients.id = d.patient_id"
	    " RETURNING patients.id, patients.practice_id,"
	    "  patients.assigned_staff_id, patients.bounce_state),"
	    "n AS ("
	    " INSERT INTO staff_notifications (staff_user_id, patient_id, type,"
	    "  title, body, action_url)"
	    " SELECT s.id, p.id, 'mail_bounced',"
	    "  'Mail to a patient bounced: address suppressed', left($2, 1000),"
	    "  '/staff/patients/' || p.id"
	    " FROM p JOIN staff_users s ON s.practice_id = p.practice_id"
	    "  AND s.active AND (s.id = p.assigned_staff_id"
	    "  OR (p.assigned_staff_id IS NULL AND s.role IN ('owner', 'admin')))"
	    " WHERE p.bounce_state = 'hard'"
	    " RETURNING 1)"
	    "SELECT coalesce(d.patient_id, 0), coalesce(d.practice_id, 0),"
	    " (SELECT count(*) FROM n) FROM d";
	char id[24];
	const char *params[] = { id, reason, hard ? "true" : "false" };
	PGresult *res;
	int ret = 0;

	*patient_id_r = 0;
	*practice_id_r = 0;
	I64(id, delivery_id);
	if (db_query_prepared(db, "ib_bounce", sql, 3, params, PGRES_TUPLES_OK,
	    &res, err) < 0)
		return -1;
	if (PQntuples(res) == 1)
		ret = db_get_i64(res, 0, 0, patient_id_r, err) < 0 ||
		    db_get_i64(res, 0, 1, practice_id_r, err) < 0 ? -1 : 1;
	PQclear(res);
	return ret;
}

int
db_inbound_attachments_link(struct db *db, int64_t inbound_mail_id,
    int64_t patient_message_id, struct err *err)
{
	static const char sql[] =
	    "UPDATE message_attachments SET patient_message_id = $2::bigint"
	    " WHERE inbound_mail_id = $1::bigint";
	char im[24], pm[24];
	const char *params[] = { im, pm };

	I64(im, inbound_mail_id);
	I64(pm, patient_message_id);
	return db_query(db, sql, 2, params, PGRES_COMMAND_OK, NULL, err);
}

int
db_inbound_decide_held(struct db *db, int64_t id, bool confirm,
    struct db_held *h, struct err *err)
{
	static const char sql[] =
	    "UPDATE inbound_mail SET"
	    " outcome = CASE WHEN $2::boolean THEN 'message' ELSE 'quarantined' END,"
	    " reason = CASE WHEN $2::boolean THEN 'sender_confirmed'"
	    "  ELSE 'sender_declined' END,"
	    " hold_state = CASE WHEN $2::boolean THEN 'confirmed' ELSE 'declined' END,"
	    " hold_decided_at = now()"
	    " WHERE id = $1::bigint AND outcome = 'held' AND hold_state = 'pending'"
	    " RETURNING coalesce(practice_id, 0), coalesce(patient_id, 0), raw";
	char sid[24];
	const char *params[] = { sid, confirm ? "true" : "false" };
	PGresult *res;
	int ret = 0;

	memset(h, 0, sizeof *h);
	I64(sid, id);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	if (PQntuples(res) == 1) {
		if (db_get_i64(res, 0, 0, &h->practice_id, err) < 0 ||
		    db_get_i64(res, 0, 1, &h->patient_id, err) < 0) {
			ret = -1;
		} else {
			size_t len = 0;
			unsigned char *raw = PQgetisnull(res, 0, 2) ? NULL :
			    PQunescapeBytea((const unsigned char *)
			    PQgetvalue(res, 0, 2), &len);

			h->raw = xmalloc(len + 1);
			if (raw != NULL)
				memcpy(h->raw, raw, len);
			h->raw[len] = '\0';
			h->raw_len = len;
			ret = 1;
			PQfreemem(raw);
		}
	}
	PQclear(res);
	return ret;
}

int
db_inbound_purge_raw(struct db *db, int keep_days, int review_days, int limit,
    int64_t *purged_r, struct err *err)
{
	/* inbound_mail_raw_idx (created_at) WHERE raw IS NOT NULL */
	static const char sql[] =
	    "WITH old AS ("
	    " SELECT id FROM inbound_mail WHERE raw IS NOT NULL"
	    "  AND created_at < now() - make_interval(days => $1::int)"
	    "  AND (outcome NOT IN ('quarantined', 'held', 'rejected')"
	    "   OR created_at < now() - make_interval(days => $2::int))"
	    " ORDER BY created_at LIMIT $3::int)"
	    "UPDATE inbound_mail SET raw = NULL, raw_purged_at = now()"
	    " FROM old WHERE inbound_mail.id = old.id";
	char k[16], r[16], l[16];
	const char *params[] = { k, r, l };
	PGresult *res;

	*purged_r = 0;
	I64(k, keep_days < review_days ? keep_days : review_days);
	I64(r, review_days);
	I64(l, limit);
	if (db_query(db, sql, 3, params, PGRES_COMMAND_OK, &res, err) < 0)
		return -1;
	*purged_r = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}
