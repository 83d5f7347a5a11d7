/* common/db_deliveries.c: all SQL on deliveries (see db_deliveries.h). */
#include "common/db_deliveries.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/db_jobs.h"
#include "common/limits.h"
#include "common/mem.h"

static void
i64_str(int64_t v, char *buf, size_t size, const char **p)
{
	if (v <= 0) {
		*p = NULL;
		return;
	}
	snprintf(buf, size, "%lld", (long long)v);
	*p = buf;
}

/* "<a@b>" → "a@b" into out; -1 when it does not fit or is malformed. */
static int
bare_msgid(const char *in, char *out, size_t size, struct err *err)
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
		in++;
		n -= 2;
	}
	if (n == 0 || n >= size)
		return err_set(err, false, "deliveries: bad Message-ID length %zu",
		    n);
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

int
db_deliveries_insert(struct db *db, const struct db_delivery_new *d,
    int64_t *id_r, struct err *err)
{
	/* One statement, so one commit: the row and (for a message's mail)
	 * the message's Message-ID. */
	static const char sql[] =
	    "WITH d AS (INSERT INTO deliveries (job_id, kind, practice_id,"
	    " patient_id, staff_user_id, recipient, message_id, state,"
	    " bounce_reason)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'queued'), $9)"
	    " RETURNING id),"
	    " m AS (UPDATE patient_messages SET message_id = $7"
	    "  WHERE id = $10::bigint AND message_id IS NULL)"
	    " SELECT id FROM d";
	char job[24], pr[24], pa[24], st[24], mr[24], mid[DB_DELIVERY_MSGID_MAX];
	const char *params[10] = { NULL, d->kind, NULL, NULL, NULL,
		                  d->recipient, mid, d->state, d->reason, NULL };
	PGresult *res = NULL;
	int ret = -1;

	if (bare_msgid(d->message_id, mid, sizeof mid, err) < 0)
		return -1;
	i64_str(d->job_id, job, sizeof job, &params[0]);
	i64_str(d->practice_id, pr, sizeof pr, &params[2]);
	i64_str(d->patient_id, pa, sizeof pa, &params[3]);
	i64_str(d->staff_user_id, st, sizeof st, &params[4]);
	if (d->state == NULL)
		i64_str(d->message_row_id, mr, sizeof mr, &params[9]);
	if (db_query_prepared(db, "db_deliveries_insert", sql,
	    10, params, PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "23514"))
			err_prefix(err, "delivery to %s", d->recipient);
		goto out;
	}
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

int
db_deliveries_find_job(struct db *db, int64_t job_id, const char *kind,
    struct db_delivery *d_r, struct err *err)
{
	static const char sql[] =
	    "SELECT id, message_id, state, attempts,"
	    " floor(extract(epoch FROM now() - created_at))::bigint,"
	    " coalesce(practice_id, 0), coalesce(patient_id, 0),"
	    " coalesce(staff_user_id, 0)"
	    " FROM deliveries WHERE job_id = $1 AND kind = $2"
	    " ORDER BY id LIMIT 1";
	char job[24];
	const char *params[] = { job, kind };
	PGresult *res = NULL;
	int64_t v;
	int ret = -1;

	snprintf(job, sizeof job, "%lld", (long long)job_id);
	if (db_query_prepared(db, "db_deliveries_find_job", sql,
	    2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) != 1)
		goto out;
	ret = -1;
	memset(d_r, 0, sizeof *d_r);
	if (db_get_i64(res, 0, 0, &d_r->id, err) < 0 ||
	    db_get_i64(res, 0, 3, &v, err) < 0 ||
	    db_get_i64(res, 0, 4, &d_r->age_s, err) < 0 ||
	    db_get_i64(res, 0, 5, &d_r->practice_id, err) < 0 ||
	    db_get_i64(res, 0, 6, &d_r->patient_id, err) < 0 ||
	    db_get_i64(res, 0, 7, &d_r->staff_user_id, err) < 0)
		goto out;
	d_r->attempts = (int)v;
	if (!str_copy(d_r->message_id, sizeof d_r->message_id,
	        PQgetvalue(res, 0, 1)) ||
	    !str_copy(d_r->state, sizeof d_r->state, PQgetvalue(res, 0, 2))) {
		err_set(err, false, "deliveries: value too long");
		goto out;
	}
	ret = 1;
out:
	PQclear(res);
	return ret;
}

void
db_deliveries_enhanced_status(const char *reply, char *out, size_t size)
{
	const char *p = reply;
	size_t n = 0;
	int dots = 0, digits = 0;

	if (size > 0)
		out[0] = '\0';
	if (reply == NULL || size < 12)
		return;
	/* skip "250" and the separator */
	while (isdigit((unsigned char)*p))
		p++;
	if (*p != ' ' && *p != '-')
		return;
	p++;
	if ((*p != '2' && *p != '4' && *p != '5') || p[1] != '.')
		return;
	for (const char *q = p; *q != '\0' && n < 11; q++, n++) {
		if (isdigit((unsigned char)*q)) {
			if (++digits > 3)
				return;
		} else if (*q == '.' && digits > 0 && dots < 2) {
			dots++;
			digits = 0;
		} else {
			break;
		}
	}
	if (dots != 2 || digits == 0 || (p[n] != '\0' && p[n] != ' '))
		return;
	memcpy(out, p, n);
	out[n] = '\0';
}

int
db_deliveries_record(struct db *db, int64_t id, const char *state,
    const struct db_delivery_outcome *o, struct err *err)
{
	static const char sql[] =
	    "UPDATE deliveries SET state = $2, attempts = attempts + 1,"
	    " smtp_code = $3::smallint, enhanced_status = $4,"
	    " smtp_reply = left($5, 2000),"
	    " bounce_reason = coalesce(left($6, 2000), bounce_reason),"
	    " sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END,"
	    " bounced_at = CASE WHEN $2 = 'bounced' THEN now() ELSE bounced_at END,"
	    " updated_at = now()"
	    " WHERE id = $1";
	char sid[24], code[16], enh[16];
	const char *params[] = { sid, state, NULL, NULL, o->reply, o->reason };
	PGresult *res = NULL;
	int ret = -1;

	snprintf(sid, sizeof sid, "%lld", (long long)id);
	if (o->code >= 200 && o->code <= 599) {
		snprintf(code, sizeof code, "%ld", o->code);
		params[2] = code;
	}
	db_deliveries_enhanced_status(o->reply, enh, sizeof enh);
	if (enh[0] != '\0')
		params[3] = enh;
	if (db_query_prepared(db, "db_deliveries_record", sql,
	    6, params, PGRES_COMMAND_OK, &res, err) < 0)
		goto out;
	ret = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
out:
	PQclear(res);
	return ret;
}

/* Fills d from columns col.. (id, message_id, state, attempts, age_s,
 * practice_id, patient_id, staff_user_id); a NULL id leaves d zeroed. */
static int
get_delivery(PGresult *res, int row, int col, struct db_delivery *d,
    struct err *err)
{
	int64_t v;

	memset(d, 0, sizeof *d);
	if (PQgetisnull(res, row, col))
		return 0;
	if (db_get_i64(res, row, col, &d->id, err) < 0 ||
	    db_get_i64(res, row, col + 3, &v, err) < 0 ||
	    db_get_i64(res, row, col + 4, &d->age_s, err) < 0 ||
	    db_get_i64(res, row, col + 5, &d->practice_id, err) < 0 ||
	    db_get_i64(res, row, col + 6, &d->patient_id, err) < 0 ||
	    db_get_i64(res, row, col + 7, &d->staff_user_id, err) < 0)
		return -1;
	d->attempts = (int)v;
	if (!str_copy(d->message_id, sizeof d->message_id,
	        PQgetvalue(res, row, col + 1)) ||
	    !str_copy(d->state, sizeof d->state, PQgetvalue(res, row, col + 2)))
		return err_set(err, false, "deliveries: value too long");
	return 0;
}

/* The job's first delivery of a kind, as a LATERAL subquery (job: the
 * job id's SQL); the columns get_delivery() reads. */
#define DELIVERY_OF_JOB(job, kind)                                          \
	" LEFT JOIN LATERAL (SELECT id, message_id::text, state, attempts,"  \
	"  floor(extract(epoch FROM now() - created_at))::bigint AS age,"    \
	"  coalesce(practice_id, 0) AS pr, coalesce(patient_id, 0) AS pa,"   \
	"  coalesce(staff_user_id, 0) AS st"                                 \
	"  FROM deliveries WHERE job_id = " job " AND kind = '" kind "'"     \
	"  ORDER BY id LIMIT 1) d ON true"

static char *
dup_or_null(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : xstrdup(PQgetvalue(res, 0, col));
}

/* Appends s to a PostgreSQL array literal as a quoted element (NULL:
 * NULL). */
static int
array_text(struct buf *b, bool first, const char *s)
{
	if (!first && buf_addc(b, ',') < 0)
		return -1;
	if (s == NULL)
		return buf_add(b, "NULL", 4);
	if (buf_addc(b, '"') < 0)
		return -1;
	for (; *s != '\0'; s++) {
		if ((*s == '"' || *s == '\\') && buf_addc(b, '\\') < 0)
			return -1;
		if (buf_addc(b, *s) < 0)
			return -1;
	}
	return buf_addc(b, '"');
}

/* Appends v (<= 0: NULL) to an array literal. */
static int
array_i64(struct buf *b, bool first, int64_t v)
{
	return v > 0 ? buf_printf(b, "%s%lld", first ? "" : ",", (long long)v)
	             : buf_printf(b, "%sNULL", first ? "" : ",");
}

/* Appends c ('{' or '}') to each of the k array literals in b. */
static int
arrays_mark(struct buf *b, int k, char c)
{
	for (int i = 0; i < k; i++)
		if (buf_addc(&b[i], c) < 0)
			return -1;
	return 0;
}

/* Appends one SMTP outcome to the code, enhanced status and reply arrays
 * b[0..2] (a code outside 200-599 and a reply without an enhanced status
 * go in as NULL). */
static int
array_outcome(struct buf *b, bool first, long code, const char *reply)
{
	char enh[16], scode[16];

	db_deliveries_enhanced_status(reply, enh, sizeof enh);
	snprintf(scode, sizeof scode, "%ld", code);
	if (array_text(&b[0], first, code >= 200 && code <= 599 ? scode :
	        NULL) < 0 ||
	    array_text(&b[1], first, enh[0] != '\0' ? enh : NULL) < 0 ||
	    array_text(&b[2], first, reply) < 0)
		return -1;
	return 0;
}

/* Fills one notify load from row r (columns after the ordinality). */
static int
get_notify(PGresult *res, int r, struct db_notify_load *l, struct err *err)
{
	struct db_message_notice *n = &l->n;
	const char *v;

	if (strcmp(PQgetvalue(res, r, 1), "object") != 0)
		return err_set(err, false, "payload is not a JSON object");
	v = PQgetvalue(res, r, 2);
	if (!PQgetisnull(res, r, 2)) {
		char *end;
		long long id = strtoll(v, &end, 10);
		if (*end == '\0' && end != v && id > 0)
			l->message_id = id;
	}
	if (get_delivery(res, r, 3, &l->d, err) < 0)
		return -1;
	if (PQgetisnull(res, r, 11))
		return 0;
	if (db_get_i64(res, r, 11, &n->id, err) < 0 ||
	    db_get_i64(res, r, 12, &n->thread_id, err) < 0 ||
	    db_get_i64(res, r, 13, &n->practice_id, err) < 0 ||
	    db_get_i64(res, r, 14, &n->patient_id, err) < 0 ||
	    db_get_i64(res, r, 15, &n->staff_user_id, err) < 0 ||
	    db_get_i64(res, r, 16, &n->age_s, err) < 0)
		return -1;
	l->found = true;
	n->outbound = PQgetvalue(res, r, 17)[0] == 't';
	n->body = xstrdup(PQgetvalue(res, r, 18));
	n->patient_email = xstrdup(PQgetvalue(res, r, 19));
	n->patient_name = xstrdup(PQgetvalue(res, r, 20));
	n->staff_name = xstrdup(PQgetvalue(res, r, 21));
	n->email_text_consent = PQgetvalue(res, r, 22)[0] == 't';
	n->practice_name = xstrdup(PQgetvalue(res, r, 23));
	n->from_name = xstrdup(PQgetvalue(res, r, 24));
	n->from_address = xstrdup(PQgetvalue(res, r, 25));
	n->reply_domain = xstrdup(PQgetvalue(res, r, 26));
	n->phi_in_email = PQgetvalue(res, r, 27)[0] == 't';
	if (!PQgetisnull(res, r, 28)) {
		l->suppressed = true;
		str_copy(l->suppression_reason, sizeof l->suppression_reason,
		    PQgetvalue(res, r, 28));
	}
	for (const char *p = PQgetvalue(res, r, 29); *p != '\0' &&
	     n->n_refs < DB_MESSAGE_REFS_MAX;) {
		size_t len = strcspn(p, " ");
		if (len > 0)
			n->refs[n->n_refs++] = xstrndup(p, len);
		p += len;
		p += strspn(p, " ");
	}
	return 0;
}

int
db_deliveries_notify_load_many(struct db *db, int n, const int64_t *job_ids,
    const char *const *payloads, struct db_notify_load *l_r, struct err *err)
{
	/* The message id is taken from the payload only when it is a plain
	 * number (no cast can fail); references are joined with spaces,
	 * which a Message-ID (domain msgid) cannot hold. A thread has one
	 * patient (its foreign key), so the references are found by thread
	 * alone: with the patient in the condition the planner took the
	 * (patient_id, message_id) index and filtered every earlier mail of
	 * the patient, a cost growing with each mail sent. */
	static const char sql[] =
	    "SELECT b.ord, jsonb_typeof(a.j), a.j->>'message_id',"
	    " d.id, d.message_id, d.state, d.attempts, d.age, d.pr, d.pa, d.st,"
	    " m.id, m.thread_id, m.practice_id, m.patient_id,"
	    " coalesce(m.staff_user_id, 0),"
	    " floor(extract(epoch FROM now() - m.created_at))::bigint,"
	    " m.direction = 'outbound', m.body, t.email::text,"
	    " concat_ws(' ', t.first_name::text, t.last_name::text),"
	    " coalesce(s.name::text, ''), t.email_text_consent,"
	    " p.name::text, coalesce(p.from_name::text, ''),"
	    " p.from_address::text, p.reply_domain, p.phi_in_email,"
	    " (SELECT reason FROM suppressions x WHERE x.email = t.email"
	    "   AND (x.practice_id = m.practice_id OR x.practice_id IS NULL)"
	    "   ORDER BY x.practice_id NULLS FIRST LIMIT 1),"
	    " (SELECT string_agg('<' || r.message_id || '>', ' '"
	    "   ORDER BY r.created_at, r.id) FROM (SELECT message_id,"
	    "   created_at, id FROM patient_messages"
	    "   WHERE thread_id = m.thread_id"
	    "   AND id <> m.id AND message_id IS NOT NULL"
	    "   ORDER BY created_at DESC, id DESC LIMIT $3::int) r)"
	    " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY"
	    "  AS b(job_id, payload, ord)"
	    " CROSS JOIN LATERAL (SELECT b.payload::jsonb AS j) a"
	    DELIVERY_OF_JOB("b.job_id", "notify")
	    " LEFT JOIN patient_messages m ON m.id = CASE"
	    "  WHEN a.j->>'message_id' ~ '^[0-9]{1,18}$'"
	    "  THEN (a.j->>'message_id')::bigint END"
	    " LEFT JOIN patients t ON t.id = m.patient_id"
	    " LEFT JOIN practices p ON p.id = m.practice_id"
	    " LEFT JOIN staff_users s ON s.id = m.staff_user_id"
	    " ORDER BY b.ord";
	struct buf bi, bp;
	char lim[16];
	PGresult *res = NULL;
	int ret = -1;

	for (int i = 0; i < n; i++)
		memset(&l_r[i], 0, sizeof l_r[i]);
	buf_init(&bi, (size_t)n * 24 + 8);
	buf_init(&bp, (size_t)n * (JOB_PAYLOAD_MAX * 2 + 8) + 8);
	if (buf_addc(&bi, '{') < 0 || buf_addc(&bp, '{') < 0)
		goto too_big;
	for (int i = 0; i < n; i++)
		if (array_i64(&bi, i == 0, job_ids[i]) < 0 ||
		    array_text(&bp, i == 0, payloads[i]) < 0)
			goto too_big;
	if (buf_addc(&bi, '}') < 0 || buf_addc(&bp, '}') < 0)
		goto too_big;
	snprintf(lim, sizeof lim, "%d", DB_MESSAGE_REFS_MAX);
	{
		const char *params[] = { buf_str(&bi), buf_str(&bp), lim };
		if (db_query_prepared(db, "db_deliveries_notify_load", sql, 3,
		        params, PGRES_TUPLES_OK, &res, err) < 0) {
			if (db_err_is(err, "22P02"))
				err_set(err, false, "payload is not valid JSON");
			goto out;
		}
	}
	if (PQntuples(res) != n) {
		err_set(err, false, "notify load: %d rows for %d jobs",
		    PQntuples(res), n);
		goto out;
	}
	for (int r = 0; r < n; r++)
		if (get_notify(res, r, &l_r[r], err) < 0)
			goto out;
	ret = 0;
	goto out;
too_big:
	err_set(err, false, "notify load: batch too large");
out:
	PQclear(res);
	buf_fini(&bi);
	buf_fini(&bp);
	if (ret < 0)
		for (int i = 0; i < n; i++)
			db_deliveries_notify_load_fini(&l_r[i]);
	return ret;
}

int
db_deliveries_notify_load(struct db *db, int64_t job_id, const char *payload,
    struct db_notify_load *l_r, struct err *err)
{
	return db_deliveries_notify_load_many(db, 1, &job_id, &payload, l_r,
	    err);
}

int
db_deliveries_insert_many(struct db *db, int n,
    const struct db_delivery_new *dn, int64_t *ids_r, struct err *err)
{
	/* Rows come back in any order: matched by Message-ID (unique). */
	static const char sql[] =
	    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[],"
	    "  $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],"
	    "  $8::bigint[]) AS u(job_id, kind, pr, pa, st, rcpt, mid, mr)),"
	    " d AS (INSERT INTO deliveries (job_id, kind, practice_id,"
	    "  patient_id, staff_user_id, recipient, message_id)"
	    "  SELECT job_id, kind, pr, pa, st, rcpt::email_addr, mid::msgid"
	    "  FROM u RETURNING id, message_id::text),"
	    " m AS (UPDATE patient_messages pm SET message_id = u.mid::msgid"
	    "  FROM u WHERE pm.id = u.mr AND pm.message_id IS NULL)"
	    " SELECT id, message_id FROM d";
	struct buf b[8];
	char (*mids)[DB_DELIVERY_MSGID_MAX] = xcalloc((size_t)n + 1,
	    sizeof *mids);
	PGresult *res = NULL;
	int ret = -1;

	for (int k = 0; k < 8; k++)
		buf_init(&b[k], (size_t)n * (LIMIT_EMAIL * 2 +
		    DB_DELIVERY_MSGID_MAX * 2 + 64) + 8);
	if (arrays_mark(b, 8, '{') < 0)
		goto too_big;
	for (int i = 0; i < n; i++) {
		bool f = i == 0;
		if (bare_msgid(dn[i].message_id, mids[i], sizeof mids[i],
		        err) < 0)
			goto out;
		if (array_i64(&b[0], f, dn[i].job_id) < 0 ||
		    array_text(&b[1], f, dn[i].kind) < 0 ||
		    array_i64(&b[2], f, dn[i].practice_id) < 0 ||
		    array_i64(&b[3], f, dn[i].patient_id) < 0 ||
		    array_i64(&b[4], f, dn[i].staff_user_id) < 0 ||
		    array_text(&b[5], f, dn[i].recipient) < 0 ||
		    array_text(&b[6], f, mids[i]) < 0 ||
		    array_i64(&b[7], f, dn[i].message_row_id) < 0)
			goto too_big;
	}
	if (arrays_mark(b, 8, '}') < 0)
		goto too_big;
	{
		const char *params[8];
		for (int k = 0; k < 8; k++)
			params[k] = buf_str(&b[k]);
		if (db_query_prepared(db, "db_deliveries_insert_many", sql, 8,
		        params, PGRES_TUPLES_OK, &res, err) < 0)
			goto out;
	}
	if (PQntuples(res) != n) {
		err_set(err, false, "deliveries: %d rows inserted for %d",
		    PQntuples(res), n);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		ids_r[i] = 0;
		for (int r = 0; r < n; r++)
			if (strcmp(PQgetvalue(res, r, 1), mids[i]) == 0 &&
			    db_get_i64(res, r, 0, &ids_r[i], err) < 0)
				goto out;
		if (ids_r[i] == 0) {
			err_set(err, false, "deliveries: a row did not come back");
			goto out;
		}
	}
	ret = 0;
	goto out;
too_big:
	err_set(err, false, "deliveries: batch too large");
out:
	PQclear(res);
	for (int k = 0; k < 8; k++)
		buf_fini(&b[k]);
	free(mids);
	return ret;
}

void
db_deliveries_notify_load_fini(struct db_notify_load *l)
{
	db_patient_messages_notice_fini(&l->n);
	memset(l, 0, sizeof *l);
}

int
db_deliveries_login_load(struct db *db, int64_t job_id, const char *payload,
    struct db_login_load *l_r, struct err *err)
{
	/* Who may log in, as in db_login_tokens_find_subject() and
	 * db_login_tokens_subject_by_id(): by the delivery's ids when the job
	 * made one, else by the payload's address (and practice, when it is a
	 * plain number). */
	static const char sql[] =
	    "SELECT jsonb_typeof(a.j), a.j->>'email', a.j->>'practice_id',"
	    " a.j->>'requested_ip',"
	    " d.id, d.message_id, d.state, d.attempts, d.age, d.pr, d.pa, d.st,"
	    " x.sid, x.pid, x.practice_id, x.email, x.name, x.from_name,"
	    " x.from_address"
	    " FROM (SELECT $2::jsonb AS j) a"
	    " CROSS JOIN LATERAL (SELECT btrim(a.j->>'email',"
	    "  E' \\t\\r\\n\\x0b\\f')::citext AS addr, CASE WHEN"
	    "  a.j->>'practice_id' ~ '^[0-9]{1,18}$'"
	    "  THEN (a.j->>'practice_id')::bigint END AS pr) e"
	    DELIVERY_OF_JOB("$1::bigint", "login")
	    " LEFT JOIN LATERAL (SELECT * FROM ("
	    "  SELECT s.id AS sid, NULL::bigint AS pid, s.practice_id,"
	    "   s.email::text AS email, p.name::text AS name,"
	    "   coalesce(p.from_name::text, '') AS from_name,"
	    "   p.from_address::text AS from_address, 0 AS rank"
	    "  FROM staff_users s JOIN practices p ON p.id = s.practice_id"
	    "  WHERE d.id IS NOT NULL AND s.id = d.st AND s.active AND p.active"
	    "  UNION ALL"
	    "  SELECT NULL, t.id, t.practice_id, t.email::text, p.name::text,"
	    "   coalesce(p.from_name::text, ''), p.from_address::text, 1"
	    "  FROM patients t JOIN practices p ON p.id = t.practice_id"
	    "  WHERE d.id IS NOT NULL AND t.id = d.pa AND t.portal_access"
	    "  AND p.active"
	    "  UNION ALL"
	    "  SELECT s.id, NULL, s.practice_id, s.email::text, p.name::text,"
	    "   coalesce(p.from_name::text, ''), p.from_address::text, 0"
	    "  FROM staff_users s JOIN practices p ON p.id = s.practice_id"
	    "  WHERE d.id IS NULL AND s.email = e.addr AND s.active AND p.active"
	    "  AND (e.pr IS NULL OR s.practice_id = e.pr)"
	    "  UNION ALL"
	    "  SELECT NULL, t.id, t.practice_id, t.email::text, p.name::text,"
	    "   coalesce(p.from_name::text, ''), p.from_address::text, 1"
	    "  FROM patients t JOIN practices p ON p.id = t.practice_id"
	    "  WHERE d.id IS NULL AND t.email = e.addr AND t.portal_access"
	    "  AND p.active AND (e.pr IS NULL OR t.practice_id = e.pr)"
	    " ) y ORDER BY rank, coalesce(sid, pid) LIMIT 1) x ON true";
	struct db_login_subject *s = &l_r->s;
	char job[24];
	const char *params[] = { job, payload };
	PGresult *res = NULL;
	int64_t sid = 0, pid = 0;
	int ret = -1;

	memset(l_r, 0, sizeof *l_r);
	snprintf(job, sizeof job, "%lld", (long long)job_id);
	if (db_query_prepared(db, "db_deliveries_login_load", sql, 2, params,
	        PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "22P02"))
			err_set(err, false, "payload is not valid JSON");
		goto out;
	}
	if (PQntuples(res) != 1) {
		err_set(err, false, "login load: %d rows", PQntuples(res));
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "object") != 0) {
		err_set(err, false, "payload is not a JSON object");
		goto out;
	}
	l_r->email = dup_or_null(res, 1);
	l_r->practice_id = dup_or_null(res, 2);
	l_r->requested_ip = dup_or_null(res, 3);
	if (get_delivery(res, 0, 4, &l_r->d, err) < 0)
		goto out;
	if (!PQgetisnull(res, 0, 14)) {
		if ((!PQgetisnull(res, 0, 12) &&
		        db_get_i64(res, 0, 12, &sid, err) < 0) ||
		    (!PQgetisnull(res, 0, 13) &&
		        db_get_i64(res, 0, 13, &pid, err) < 0) ||
		    db_get_i64(res, 0, 14, &s->practice_id, err) < 0)
			goto out;
		s->staff_user_id = sid;
		s->patient_id = pid;
		if (!str_copy(s->email, sizeof s->email, PQgetvalue(res, 0, 15)) ||
		    !str_copy(s->practice_name, sizeof s->practice_name,
		        PQgetvalue(res, 0, 16)) ||
		    !str_copy(s->from_name, sizeof s->from_name,
		        PQgetvalue(res, 0, 17)) ||
		    !str_copy(s->from_address, sizeof s->from_address,
		        PQgetvalue(res, 0, 18))) {
			err_set(err, false, "login subject: value too long");
			goto out;
		}
		l_r->found = true;
	}
	ret = 0;
out:
	PQclear(res);
	if (ret < 0)
		db_deliveries_login_load_fini(l_r);
	return ret;
}

void
db_deliveries_login_load_fini(struct db_login_load *l)
{
	free(l->email);
	free(l->practice_id);
	free(l->requested_ip);
	memset(l, 0, sizeof *l);
}


int
db_deliveries_record_sent(struct db *db, int n, const int64_t *ids,
    const long *codes, const char *const *replies, int *updated_r,
    struct err *err)
{
	static const char sql[] =
	    "UPDATE deliveries d SET state = 'sent', attempts = d.attempts + 1,"
	    " smtp_code = s.code, enhanced_status = s.enh,"
	    " smtp_reply = left(s.reply, 2000), sent_at = now(),"
	    " updated_at = now()"
	    " FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[])"
	    "  AS s(id, code, enh, reply)"
	    " WHERE d.id = s.id";
	struct buf b[4];
	PGresult *res = NULL;
	int ret = -1;

	*updated_r = 0;
	if (n == 0)
		return 0;
	for (int k = 0; k < 4; k++)
		buf_init(&b[k], LIMIT_MAIL_SIZE);
	if (arrays_mark(b, 4, '{') < 0)
		goto too_big;
	for (int i = 0; i < n; i++)
		if (array_i64(&b[0], i == 0, ids[i]) < 0 ||
		    array_outcome(&b[1], i == 0, codes[i], replies[i]) < 0)
			goto too_big;
	if (arrays_mark(b, 4, '}') < 0)
		goto too_big;
	{
		const char *params[] = { buf_str(&b[0]), buf_str(&b[1]),
			                 buf_str(&b[2]), buf_str(&b[3]) };
		if (db_query_prepared(db, "db_deliveries_record_sent", sql, 4,
		        params, PGRES_COMMAND_OK, &res, err) < 0)
			goto out;
	}
	*updated_r = (int)strtol(PQcmdTuples(res), NULL, 10);
	ret = 0;
	goto out;
too_big:
	err_set(err, false, "deliveries: sent batch too large");
out:
	PQclear(res);
	for (int k = 0; k < 4; k++)
		buf_fini(&b[k]);
	return ret;
}

int
db_deliveries_record_sent_done(struct db *db, int n, const int64_t *job_ids,
    int64_t tok, int nsent, const int64_t *sent_job, const int64_t *ids,
    const long *codes, const char *const *replies, bool *done_r,
    struct err *err)
{
	/* The DELETE is db_jobs.c's completion (finish_batch) word for word;
	 * the UPDATE joins what it returned, so a delivery is marked sent
	 * exactly when its job's completion held. */
	static const char sql[] =
	    "WITH done AS (DELETE FROM jobs WHERE id = ANY ($1::bigint[])"
	    "  AND lease_token = $2::bigint AND state = 'running'"
	    "  AND once_key IS NULL RETURNING id),"
	    " s AS (UPDATE deliveries d SET state = 'sent',"
	    "  attempts = d.attempts + 1, smtp_code = u.code,"
	    "  enhanced_status = u.enh, smtp_reply = left(u.reply, 2000),"
	    "  sent_at = now(), updated_at = now()"
	    "  FROM unnest($3::bigint[], $4::bigint[], $5::smallint[],"
	    "   $6::text[], $7::text[]) AS u(job_id, id, code, enh, reply)"
	    "  JOIN done ON done.id = u.job_id"
	    "  WHERE d.id = u.id)"
	    " SELECT id FROM done";
	struct buf b[6];
	char stok[24];
	PGresult *res = NULL;
	int ret = -1;

	for (int i = 0; i < n; i++)
		done_r[i] = false;
	if (n == 0)
		return 0;
	for (int k = 0; k < 6; k++)
		buf_init(&b[k], LIMIT_MAIL_SIZE);
	if (arrays_mark(b, 6, '{') < 0)
		goto too_big;
	for (int i = 0; i < n; i++)
		if (array_i64(&b[0], i == 0, job_ids[i]) < 0)
			goto too_big;
	for (int i = 0; i < nsent; i++)
		if (array_i64(&b[1], i == 0, sent_job[i]) < 0 ||
		    array_i64(&b[2], i == 0, ids[i]) < 0 ||
		    array_outcome(&b[3], i == 0, codes[i], replies[i]) < 0)
			goto too_big;
	if (arrays_mark(b, 6, '}') < 0)
		goto too_big;
	snprintf(stok, sizeof stok, "%lld", (long long)tok);
	{
		const char *params[] = { buf_str(&b[0]), stok, buf_str(&b[1]),
			                 buf_str(&b[2]), buf_str(&b[3]),
			                 buf_str(&b[4]), buf_str(&b[5]) };
		if (db_query_prepared(db, "db_deliveries_record_sent_done", sql, 7,
		        params, PGRES_TUPLES_OK, &res, err) < 0)
			goto out;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		long long id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		for (int i = 0; i < n; i++)
			if (job_ids[i] == id)
				done_r[i] = true;
	}
	ret = 0;
	goto out;
too_big:
	err_set(err, false, "deliveries: sent batch too large");
out:
	PQclear(res);
	for (int k = 0; k < 6; k++)
		buf_fini(&b[k]);
	return ret;
}

/* Runs sql ($1: the job ids as an array, $2: arg) and counts the rows. */
static int
by_jobs(struct db *db, const char *name, const char *sql, int n,
    const int64_t *job_ids, const char *arg, int *count_r, struct err *err)
{
	struct buf ids;
	PGresult *res = NULL;
	int ret = -1;

	*count_r = 0;
	if (n == 0)
		return 0;
	buf_init(&ids, (size_t)n * 24 + 8);
	if (buf_addc(&ids, '{') < 0)
		goto too_big;
	for (int i = 0; i < n; i++)
		if (array_i64(&ids, i == 0, job_ids[i]) < 0)
			goto too_big;
	if (buf_addc(&ids, '}') < 0)
		goto too_big;
	{
		const char *params[] = { buf_str(&ids), arg };
		if (db_query_prepared(db, name, sql, arg != NULL ? 2 : 1, params,
		        PGRES_COMMAND_OK, &res, err) < 0)
			goto out;
	}
	*count_r = (int)strtol(PQcmdTuples(res), NULL, 10);
	ret = 0;
	goto out;
too_big:
	err_set(err, false, "deliveries: job list too large");
out:
	PQclear(res);
	buf_fini(&ids);
	return ret;
}

int
db_deliveries_fail_jobs(struct db *db, int n, const int64_t *job_ids,
    const char *reason, int *failed_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE deliveries SET state = 'failed',"
	    " bounce_reason = left($2, 2000), updated_at = now()"
	    " WHERE job_id = ANY ($1::bigint[])"
	    " AND state IN ('queued', 'deferred')";

	return by_jobs(db, "db_deliveries_fail_jobs", sql, n, job_ids, reason,
	    failed_r, err);
}

int
db_deliveries_retry_jobs(struct db *db, int n, const int64_t *job_ids,
    int *again_r, struct err *err)
{
	static const char sql[] =
	    "UPDATE deliveries SET state = 'deferred', bounce_reason = NULL,"
	    " updated_at = now()"
	    " WHERE job_id = ANY ($1::bigint[]) AND state = 'failed'";

	return by_jobs(db, "db_deliveries_retry_jobs", sql, n, job_ids, NULL,
	    again_r, err);
}
