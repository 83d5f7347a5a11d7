/* common/db_followups.c: the reads of the follow-up mail jobs (see
 * db_followups.h). Every statement returns the same columns, so one
 * function fills the struct:
 *   0 patient id, 1 practice id, 2 patient email, 3 practice name,
 *   4 from_name, 5 from_address, 6 age in seconds, 7 live, 8 text,
 *   9 suppression reason (NULL: none), 10 Message-ID answered ('' none) */
#include "common/db_followups.h"

#include <stdio.h>
#include <string.h>

#include "common/mem.h"

/* The suppression of the patient t's address, for t's practice or all. */
#define SUPPRESSION_SQL                                                      \
	" (SELECT s.reason FROM suppressions s WHERE s.email = t.email"      \
	"  AND (s.practice_id = t.practice_id OR s.practice_id IS NULL)"     \
	"  ORDER BY s.practice_id NULLS LAST LIMIT 1)"

static int
fill(PGresult *res, struct db_followup *f, struct err *err)
{
	const char *mid;

	memset(f, 0, sizeof *f);
	if (db_get_i64(res, 0, 0, &f->patient_id, err) < 0 ||
	    db_get_i64(res, 0, 1, &f->practice_id, err) < 0 ||
	    db_get_i64(res, 0, 6, &f->age_s, err) < 0)
		return -1;
	if (!str_copy(f->email, sizeof f->email, PQgetvalue(res, 0, 2)) ||
	    !str_copy(f->practice_name, sizeof f->practice_name,
	        PQgetvalue(res, 0, 3)) ||
	    !str_copy(f->from_name, sizeof f->from_name,
	        PQgetvalue(res, 0, 4)) ||
	    !str_copy(f->from_address, sizeof f->from_address,
	        PQgetvalue(res, 0, 5)))
		return err_set(err, false, "follow-up: value too long");
	f->live = PQgetvalue(res, 0, 7)[0] == 't';
	f->text_too_long = !str_copy(f->text, sizeof f->text,
	    PQgetvalue(res, 0, 8));
	if (f->text_too_long)
		f->text[0] = '\0';
	if (!PQgetisnull(res, 0, 9)) {
		f->suppressed = true;
		str_copy(f->suppression_reason, sizeof f->suppression_reason,
		    PQgetvalue(res, 0, 9));
	}
	mid = PQgetvalue(res, 0, 10);
	if (mid[0] != '\0' && strlen(mid) + 2 < sizeof f->in_reply_to)
		snprintf(f->in_reply_to, sizeof f->in_reply_to, "<%s>", mid);
	return 0;
}

static int
run(struct db *db, const char *name, const char *sql, int n,
    const char *const *params, struct db_followup *f_r, struct err *err)
{
	PGresult *res = NULL;
	int ret = -1;

	if (db_query_prepared(db, name, sql, n, params, PGRES_TUPLES_OK, &res,
	        err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) == 1)
		ret = fill(res, f_r, err) < 0 ? -1 : 1;
out:
	PQclear(res);
	return ret;
}

int
db_followups_confirm(struct db *db, int64_t inbound_mail_id,
    struct db_followup *f_r, struct err *err)
{
	/* The held mail's own Message-ID is not answered: it was not the
	 * patient who wrote it, and this mail goes to the patient. */
	static const char sql[] =
	    "SELECT t.id, t.practice_id, t.email::text, p.name::text,"
	    " coalesce(p.from_name::text, ''), p.from_address::text,"
	    " floor(extract(epoch FROM now() - m.created_at))::bigint,"
	    " p.active AND m.outcome = 'held'"
	    "  AND coalesce(m.hold_state = 'pending', false),"
	    " coalesce(m.from_addr::text, ''),"
	    SUPPRESSION_SQL ","
	    " ''"
	    " FROM inbound_mail m"
	    " JOIN patients t ON t.id = m.patient_id"
	    " JOIN practices p ON p.id = t.practice_id"
	    " WHERE m.id = $1::bigint";
	char id[24];
	const char *params[] = { id };

	snprintf(id, sizeof id, "%lld", (long long)inbound_mail_id);
	return run(db, "db_followups_confirm", sql, 1, params, f_r, err);
}

int
db_followups_rejection(struct db *db, int64_t inbound_mail_id,
    const char *email, struct db_followup *f_r, struct err *err)
{
	static const char sql[] =
	    "SELECT t.id, t.practice_id, t.email::text, p.name::text,"
	    " coalesce(p.from_name::text, ''), p.from_address::text,"
	    " coalesce(floor(extract(epoch FROM now() - m.created_at)), 0)"
	    "  ::bigint,"
	    " true, '',"
	    SUPPRESSION_SQL ","
	    " coalesce(m.message_id::text, '')"
	    " FROM patients t"
	    " JOIN practices p ON p.id = t.practice_id AND p.active"
	    " LEFT JOIN inbound_mail m ON m.id = $2::bigint"
	    " WHERE t.email = $1::citext"
	    " ORDER BY t.practice_id IS NOT DISTINCT FROM m.practice_id DESC,"
	    "  t.id"
	    " LIMIT 1";
	char id[24];
	const char *params[] = { email, id };

	snprintf(id, sizeof id, "%lld", (long long)inbound_mail_id);
	return run(db, "db_followups_rejection", sql, 2, params, f_r, err);
}

int
db_followups_urgent(struct db *db, int64_t patient_id,
    int64_t patient_message_id, struct db_followup *f_r, struct err *err)
{
	static const char sql[] =
	    "SELECT t.id, t.practice_id, t.email::text, p.name::text,"
	    " coalesce(p.from_name::text, ''), p.from_address::text,"
	    " floor(extract(epoch FROM now() - m.created_at))::bigint,"
	    " p.active AND p.red_flag_autoack AND p.emergency_text IS NOT NULL,"
	    " coalesce(p.emergency_text, ''),"
	    SUPPRESSION_SQL ","
	    " coalesce(m.message_id::text, '')"
	    " FROM patient_messages m"
	    " JOIN patients t ON t.id = m.patient_id"
	    " JOIN practices p ON p.id = t.practice_id"
	    " WHERE m.id = $2::bigint AND m.patient_id = $1::bigint"
	    "  AND m.direction = 'inbound'";
	char pid[24], mid[24];
	const char *params[] = { pid, mid };

	snprintf(pid, sizeof pid, "%lld", (long long)patient_id);
	snprintf(mid, sizeof mid, "%lld", (long long)patient_message_id);
	return run(db, "db_followups_urgent", sql, 2, params, f_r, err);
}
