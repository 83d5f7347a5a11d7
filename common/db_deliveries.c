/* common/db_deliveries.c: all SQL on deliveries (see db_deliveries.h). */
#include "common/db_deliveries.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	static const char sql[] =
	    "INSERT INTO deliveries (job_id, kind, practice_id, patient_id,"
	    " staff_user_id, recipient, message_id, state, bounce_reason)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'queued'), $9)"
	    " RETURNING id";
	char job[24], pr[24], pa[24], st[24], mid[DB_DELIVERY_MSGID_MAX];
	const char *params[9] = { NULL, d->kind, NULL, NULL, NULL,
		                  d->recipient, mid, d->state, d->reason };
	PGresult *res = NULL;
	int ret = -1;

	if (bare_msgid(d->message_id, mid, sizeof mid, err) < 0)
		return -1;
	i64_str(d->job_id, job, sizeof job, &params[0]);
	i64_str(d->practice_id, pr, sizeof pr, &params[2]);
	i64_str(d->patient_id, pa, sizeof pa, &params[3]);
	i64_str(d->staff_user_id, st, sizeof st, &params[4]);
	if (db_query_prepared(db, "db_deliveries_insert", sql,
	    9, params, PGRES_TUPLES_OK, &res, err) < 0) {
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
