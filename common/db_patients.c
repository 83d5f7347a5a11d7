/* common/db_patients.c: all SQL on patients (see db_patients.h).
 *
 * The import streams rows with COPY … FROM STDIN in text format inside one
 * transaction: ~10x faster than row-by-row INSERTs, and the database still
 * checks every constraint and trigger per row. Text values are escaped for
 * COPY here (backslash, tab, CR, LF), so no value can break a row. */
#include "common/db_patients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/mem.h"

#define COPY_FLUSH (256 * 1024)       /* bytes per PQputCopyData() */
#define COPY_ROW_MAX (16 * 1024)      /* one escaped row, well over LIMIT_CSV_LINE * 2 */
#define PROGRESS_EVERY 10000

static const char *const stages[] = { "new", "onboarding", "active",
	                              "maintenance", "paused", "discharged" };

const char *
db_patients_stage(const char *s)
{
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
		if (strcasecmp(s, stages[i]) == 0)
			return stages[i];
	}
	return NULL;
}

static void
fmt_id(char *out, size_t size, int64_t id)
{
	snprintf(out, size, "%lld", (long long)id);
}

int
db_patients_insert(struct db *db, int64_t practice_id,
    const char *practice_slug, const struct db_patient_new *p, int64_t *id_r,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO patients (practice_id, email, first_name, last_name,"
	    " stage, assigned_staff_id, timezone, portal_access,"
	    " email_text_consent, email_text_consent_at)"
	    " VALUES ($1, $2, $3, $4, coalesce($5, 'new'), $6, $7, $8, $9,"
	    " CASE WHEN $9::boolean THEN now() END) RETURNING id";
	char pid[24], coach[24];
	const char *params[] = {
		pid, p->email, p->first_name, p->last_name, p->stage,
		p->coach_id > 0 ? coach : NULL, p->timezone,
		p->portal_access ? "true" : "false",
		p->email_text_consent ? "true" : "false",
	};
	PGresult *res = NULL;
	int ret = -1;

	fmt_id(pid, sizeof pid, practice_id);
	fmt_id(coach, sizeof coach, p->coach_id);
	if (db_query(db, sql, 9, params, PGRES_TUPLES_OK, &res, err) < 0) {
		if (db_err_is(err, "23505"))
			err_set(err, false, "a patient with email %s already "
			    "exists in practice %s", p->email, practice_slug);
		else if (db_err_is(err, "23503"))
			err_set(err, false, "the coach is not a staff user of "
			    "practice %s", practice_slug);
		goto out;
	}
	ret = db_get_i64(res, 0, 0, id_r, err);
out:
	PQclear(res);
	return ret;
}

int
db_patients_list(struct db *db, int64_t practice_id, db_patient_fn *fn,
    void *arg, struct err *err)
{
	static const char sql[] =
	    "SELECT p.id, p.email, coalesce(p.first_name, ''),"
	    " coalesce(p.last_name, ''), p.stage, coalesce(s.email, ''),"
	    " coalesce(p.timezone, ''), p.bounce_state, p.portal_access,"
	    " p.email_text_consent"
	    " FROM patients p LEFT JOIN staff_users s"
	    " ON s.id = p.assigned_staff_id"
	    " WHERE p.practice_id = $1 ORDER BY p.id";
	char pid[24];
	const char *params[] = { pid };
	PGresult *res = NULL;
	int ret = -1;

	fmt_id(pid, sizeof pid, practice_id);
	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		struct db_patient p = {
			.email = PQgetvalue(res, i, 1),
			.first_name = PQgetvalue(res, i, 2),
			.last_name = PQgetvalue(res, i, 3),
			.stage = PQgetvalue(res, i, 4),
			.coach_email = PQgetvalue(res, i, 5),
			.timezone = PQgetvalue(res, i, 6),
			.bounce_state = PQgetvalue(res, i, 7),
			.portal_access = strcmp(PQgetvalue(res, i, 8), "t") == 0,
			.email_text_consent =
			    strcmp(PQgetvalue(res, i, 9), "t") == 0,
		};
		if (db_get_i64(res, i, 0, &p.id, err) < 0 ||
		    fn(&p, arg, err) < 0)
			goto out;
	}
	ret = 0;
out:
	PQclear(res);
	return ret;
}

/* Appends s as an element of a PostgreSQL array literal: always quoted,
 * with " and \ escaped. */
static int
add_array_elem(struct buf *b, const char *s)
{
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

int
db_patients_existing(struct db *db, int64_t practice_id,
    const char *const *emails, size_t n, db_patient_email_fn *fn, void *arg,
    struct err *err)
{
	/* u.e comes back as given, not as stored, so the caller can find
	 * its own row by it. */
	static const char sql[] =
	    "SELECT u.e FROM unnest($2::citext[]) AS u(e)"
	    " JOIN patients p ON p.practice_id = $1 AND p.email = u.e";
	char pid[24];
	const char *params[2] = { pid, NULL };
	PGresult *res = NULL;
	struct buf arr;
	int ret = -1;

	if (n == 0)
		return 0;
	if (n > LIMIT_CSV_ROWS)
		return err_set(err, false, "more than %d addresses to check",
		    LIMIT_CSV_ROWS);
	/* each element: quotes, escapes, comma: 2 * LIMIT_EMAIL + 3 bytes */
	buf_init(&arr, n * (2 * LIMIT_EMAIL + 3) + 3);      /* @UNSAFE: n capped */
	if (buf_addc(&arr, '{') < 0)
		goto overflow;
	for (size_t i = 0; i < n; i++) {
		if ((i > 0 && buf_addc(&arr, ',') < 0) ||
		    add_array_elem(&arr, emails[i]) < 0)
			goto overflow;
	}
	if (buf_addc(&arr, '}') < 0)
		goto overflow;
	fmt_id(pid, sizeof pid, practice_id);
	params[1] = buf_str(&arr);
	if (db_query(db, sql, 2, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		if (fn(PQgetvalue(res, i, 0), arg, err) < 0)
			goto out;
	}
	ret = 0;
	goto out;
overflow:
	err_set(err, false, "an address is longer than %d bytes", LIMIT_EMAIL);
out:
	PQclear(res);
	buf_fini(&arr);
	return ret;
}

int
db_patients_timezone_ok(struct db *db, const char *tz, struct err *err)
{
	/* The domain checks the shape, AT TIME ZONE asks the tz database:
	 * the same two tests the table's trigger makes on insert. */
	static const char sql[] = "SELECT now() AT TIME ZONE $1::tz_name";
	const char *params[] = { tz };

	if (db_query(db, sql, 1, params, PGRES_TUPLES_OK, NULL, err) == 0)
		return 1;
	if (db_err_is(err, "23514")) {
		err_set(err, false, "not a zone name such as America/Chicago, "
		    "Europe/Berlin or UTC");
		return 0;
	}
	if (db_err_is(err, "22023")) {
		err_set(err, false, "unknown timezone (not in the server's tz "
		    "database)");
		return 0;
	}
	return -1;
}

/* COPY text format: \N is NULL; backslash, tab, CR and LF are escaped. */
static int
copy_text(struct buf *b, const char *s)
{
	if (s == NULL)
		return buf_add(b, "\\N", 2);
	for (; *s != '\0'; s++) {
		const char *esc = NULL;
		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		}
		if (esc != NULL ? buf_add(b, esc, 2) < 0 : buf_addc(b, *s) < 0)
			return -1;
	}
	return 0;
}

static int
copy_row(struct buf *b, const char *pid, const char *now,
    const struct db_patient_new *p)
{
	char coach[24];

	fmt_id(coach, sizeof coach, p->coach_id);
	return copy_text(b, pid) < 0 || buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->email) < 0 || buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->first_name) < 0 || buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->last_name) < 0 || buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->stage != NULL ? p->stage : "new") < 0 ||
	    buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->coach_id > 0 ? coach : NULL) < 0 ||
	    buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->timezone) < 0 || buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->portal_access ? "t" : "f") < 0 ||
	    buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->email_text_consent ? "t" : "f") < 0 ||
	    buf_addc(b, '\t') < 0 ||
	    copy_text(b, p->email_text_consent ? now : NULL) < 0 ||
	    buf_addc(b, '\n') < 0 ? -1 : 0;
}

/* Turns a failed COPY's result into err, with the row when the server
 * names it (CONTEXT "COPY patients, line N"). */
static void
copy_error(PGresult *res, PGconn *conn, const char *slug, size_t *bad_row_r,
    struct err *err)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *p;
	char line[200];

	if (ctx != NULL && (p = strstr(ctx, ", line ")) != NULL) {
		long long v = strtoll(p + 7, NULL, 10);
		if (v > 0)
			*bad_row_r = (size_t)v;
	}
	/* detail: Key (practice_id, email)=(1, ann@x.test) already exists. */
	if (state != NULL && strcmp(state, "23505") == 0 && detail != NULL &&
	    (p = strstr(detail, ")=(")) != NULL &&
	    (p = strstr(p, ", ")) != NULL) {
		size_t n = strcspn(p + 2, ")");
		err_set(err, false, "a patient with email %.*s already exists "
		    "in practice %s", (int)(n < 254 ? n : 254), p + 2, slug);
		return;
	}
	snprintf(line, sizeof line, "%s", msg != NULL ? msg
	                                              : PQerrorMessage(conn));
	line[strcspn(line, "\n")] = '\0';
	err_set(err, state == NULL || strncmp(state, "08", 2) == 0 ||
	    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0,
	    "database: %s%s%s", line, state != NULL ? " sqlstate=" : "",
	    state != NULL ? state : "");
}

struct copy_arg {
	int64_t practice_id;
	const char *slug;
	const struct db_patient_new *rows;
	size_t n;
	db_patients_progress_fn *progress;
	void *arg;
	size_t *bad_row_r;
};

static int
put(PGconn *conn, struct buf *b, struct err *err)
{
	if (b->len > 0 && PQputCopyData(conn, b->data, (int)b->len) != 1) {
		char line[200];
		snprintf(line, sizeof line, "%s", PQerrorMessage(conn));
		line[strcspn(line, "\n")] = '\0';
		return err_set(err, true, "database: sending COPY data: %s",
		    line);
	}
	buf_reset(b);
	return 0;
}

static int
copy_tx(struct db *db, void *varg, struct err *err)
{
	static const char sql[] =
	    "COPY patients (practice_id, email, first_name, last_name, stage,"
	    " assigned_staff_id, timezone, portal_access, email_text_consent,"
	    " email_text_consent_at) FROM STDIN";
	struct copy_arg *a = varg;
	PGconn *conn = db_conn(db);
	PGresult *res = NULL;
	struct buf b;
	char pid[24], now[64];
	int ret = -1;

	buf_init(&b, COPY_FLUSH + COPY_ROW_MAX);
	*a->bad_row_r = 0;
	fmt_id(pid, sizeof pid, a->practice_id);
	/* consent is stamped with the transaction's time, like now() */
	if (db_query(db, "SELECT now()", 0, NULL, PGRES_TUPLES_OK, &res,
	        err) < 0)
		goto out;
	snprintf(now, sizeof now, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (db_query(db, sql, 0, NULL, PGRES_COPY_IN, &res, err) < 0)
		goto out;
	PQclear(res);
	res = NULL;
	for (size_t i = 0; i < a->n; i++) {
		if (copy_row(&b, pid, now, &a->rows[i]) < 0) {
			err_set(err, false, "row %zu is longer than %d bytes",
			    i + 1, COPY_ROW_MAX);
			*a->bad_row_r = i + 1;
			PQputCopyEnd(conn, "row too long");
			goto drain;
		}
		if (b.len >= COPY_FLUSH && put(conn, &b, err) < 0)
			goto out;
		if (a->progress != NULL && (i + 1) % PROGRESS_EVERY == 0 &&
		    i + 1 < a->n)
			a->progress(i + 1, a->n, a->arg);
	}
	if (put(conn, &b, err) < 0)
		goto out;
	if (PQputCopyEnd(conn, NULL) != 1) {
		err_set(err, true, "database: ending COPY failed");
		goto out;
	}
	res = PQgetResult(conn);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		copy_error(res, conn, a->slug, a->bad_row_r, err);
	else
		ret = 0;
	if (ret == 0 && a->progress != NULL)
		a->progress(a->n, a->n, a->arg);
drain:
	/* libpq wants every result read before the next command */
	for (;;) {
		PQclear(res);
		res = PQgetResult(conn);
		if (res == NULL)
			break;
	}
out:
	PQclear(res);
	buf_fini(&b);
	return ret;
}

int
db_patients_copy(struct db *db, int64_t practice_id, const char *practice_slug,
    const struct db_patient_new *rows, size_t n,
    db_patients_progress_fn *progress, void *arg, size_t *bad_row_r,
    struct err *err)
{
	struct copy_arg a = { practice_id, practice_slug, rows, n, progress,
		              arg, bad_row_r };

	*bad_row_r = 0;
	return db_tx(db, copy_tx, &a, err);
}
