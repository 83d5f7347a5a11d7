/* common/db_patient_messages.c: SQL on patient_messages (see
 * db_patient_messages.h). */
#include "common/db_patient_messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* The newest DB_MESSAGE_REFS_MAX Message-IDs of the thread, oldest first. */
static int
thread_refs(struct db *db, struct db_message_notice *n, struct err *err)
{
	static const char sql[] =
	    "SELECT '<' || message_id || '>' FROM ("
	    " SELECT message_id, created_at, id FROM patient_messages"
	    " WHERE patient_id = $1::bigint AND thread_id = $2::bigint"
	    "  AND id <> $3::bigint AND message_id IS NOT NULL"
	    " ORDER BY created_at DESC, id DESC LIMIT $4::int) r"
	    " ORDER BY created_at, id";
	char pid[24], tid[24], mid[24], lim[16];
	const char *params[] = { pid, tid, mid, lim };
	PGresult *res = NULL;

	snprintf(pid, sizeof pid, "%lld", (long long)n->patient_id);
	snprintf(tid, sizeof tid, "%lld", (long long)n->thread_id);
	snprintf(mid, sizeof mid, "%lld", (long long)n->id);
	snprintf(lim, sizeof lim, "%d", DB_MESSAGE_REFS_MAX);
	if (db_query(db, sql, 4, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res) && i < DB_MESSAGE_REFS_MAX; i++)
		n->refs[n->n_refs++] = xstrdup(PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

int
db_patient_messages_set_message_id(struct db *db, int64_t id,
    const char *message_id, struct err *err)
{
	static const char sql[] =
	    "UPDATE patient_messages SET message_id = btrim($2, '<>')"
	    " WHERE id = $1::bigint AND message_id IS NULL";
	char sid[24];
	const char *params[] = { sid, message_id };

	snprintf(sid, sizeof sid, "%lld", (long long)id);
	return db_query_prepared(db, "db_patient_messages_set_message_id", sql,
	    2, params,
	    PGRES_COMMAND_OK, NULL, err);
}

int
db_patient_messages_notice(struct db *db, int64_t id,
    struct db_message_notice *n_r, struct err *err)
{
	static const char sql[] =
	    "SELECT m.id, m.thread_id, m.practice_id, m.patient_id,"
	    " coalesce(m.staff_user_id, 0),"
	    " floor(extract(epoch FROM now() - m.created_at))::bigint,"
	    " m.direction = 'outbound', m.body,"
	    " t.email::text,"
	    " concat_ws(' ', t.first_name::text, t.last_name::text),"
	    " coalesce(s.name::text, ''), t.email_text_consent,"
	    " p.name::text, coalesce(p.from_name::text, ''),"
	    " p.from_address::text, p.reply_domain, p.phi_in_email"
	    " FROM patient_messages m"
	    " JOIN patients t ON t.id = m.patient_id"
	    " JOIN practices p ON p.id = m.practice_id"
	    " LEFT JOIN staff_users s ON s.id = m.staff_user_id"
	    " WHERE m.id = $1::bigint";
	char sid[24];
	const char *params[] = { sid };
	PGresult *res = NULL;
	int ret = -1;

	memset(n_r, 0, sizeof *n_r);
	snprintf(sid, sizeof sid, "%lld", (long long)id);
	if (db_query_prepared(db, "db_patient_messages_notice", sql,
	    1, params, PGRES_TUPLES_OK, &res, err) < 0)
		goto out;
	ret = 0;
	if (PQntuples(res) != 1)
		goto out;
	ret = -1;
	if (db_get_i64(res, 0, 0, &n_r->id, err) < 0 ||
	    db_get_i64(res, 0, 1, &n_r->thread_id, err) < 0 ||
	    db_get_i64(res, 0, 2, &n_r->practice_id, err) < 0 ||
	    db_get_i64(res, 0, 3, &n_r->patient_id, err) < 0 ||
	    db_get_i64(res, 0, 4, &n_r->staff_user_id, err) < 0 ||
	    db_get_i64(res, 0, 5, &n_r->age_s, err) < 0)
		goto out;
	n_r->outbound = PQgetvalue(res, 0, 6)[0] == 't';
	n_r->body = xstrdup(PQgetvalue(res, 0, 7));
	n_r->patient_email = xstrdup(PQgetvalue(res, 0, 8));
	n_r->patient_name = xstrdup(PQgetvalue(res, 0, 9));
	n_r->staff_name = xstrdup(PQgetvalue(res, 0, 10));
	n_r->email_text_consent = PQgetvalue(res, 0, 11)[0] == 't';
	n_r->practice_name = xstrdup(PQgetvalue(res, 0, 12));
	n_r->from_name = xstrdup(PQgetvalue(res, 0, 13));
	n_r->from_address = xstrdup(PQgetvalue(res, 0, 14));
	n_r->reply_domain = xstrdup(PQgetvalue(res, 0, 15));
	n_r->phi_in_email = PQgetvalue(res, 0, 16)[0] == 't';
	PQclear(res);
	res = NULL;
	if (thread_refs(db, n_r, err) < 0)
		goto out;
	ret = 1;
out:
	PQclear(res);
	if (ret < 0)
		db_patient_messages_notice_fini(n_r);
	return ret;
}

void
db_patient_messages_notice_fini(struct db_message_notice *n)
{
	free(n->body);
	free(n->patient_email);
	free(n->patient_name);
	free(n->staff_name);
	free(n->practice_name);
	free(n->from_name);
	free(n->from_address);
	free(n->reply_domain);
	for (size_t i = 0; i < n->n_refs; i++)
		free(n->refs[i]);
	memset(n, 0, sizeof *n);
}
