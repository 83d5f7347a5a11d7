/* common/db_deliveries.h: every statement on the deliveries table (one row
 * per outgoing mail, migrations/003 and 010).
 *
 * A handler that mails creates its row BEFORE the first send (state
 * queued, with the Message-ID made once), finds it again on every retry by
 * job id (so the Message-ID is reused and a crash after a send is not a
 * second mail with a new id), and records each outcome. Message-IDs are
 * stored without angle brackets (domain msgid). */
#ifndef POSTERN_COMMON_DB_DELIVERIES_H
#define POSTERN_COMMON_DB_DELIVERIES_H

#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

#define DB_DELIVERY_MSGID_MAX 256     /* without <>, with NUL */
#define DB_DELIVERY_STATE_MAX 16
#define DB_DELIVERY_REPLY_MAX 2000    /* the schema's smtp_reply cap */

/* A new row; strings borrowed for the call. 0 ids: NULL. */
struct db_delivery_new {
	int64_t job_id;
	const char *kind;             /* "login", "notify", … */
	int64_t practice_id, patient_id, staff_user_id;
	const char *recipient;        /* normalised address */
	const char *message_id;       /* "<…>" or bare; stored bare */
	const char *state;            /* NULL: queued; or suppressed, failed */
	const char *reason;           /* bounce_reason, NULL: none */
};

/* A row as read back (copied, owned by the caller's struct). */
struct db_delivery {
	int64_t id;
	char message_id[DB_DELIVERY_MSGID_MAX];   /* bare */
	char state[DB_DELIVERY_STATE_MAX];
	int attempts;
	int64_t practice_id, patient_id, staff_user_id;   /* 0: NULL */
	int64_t age_s;                /* now() - created_at, database clock */
};

/* Inserts; *id_r is the new id. */
MUST_CHECK int db_deliveries_insert(struct db *db,
    const struct db_delivery_new *d, int64_t *id_r, struct err *err);

/* The (first) delivery made for job_id of kind. 1: *d_r filled; 0: none;
 * -1: err set. */
MUST_CHECK int db_deliveries_find_job(struct db *db, int64_t job_id,
    const char *kind, struct db_delivery *d_r, struct err *err);

/* One SMTP outcome. code 0: no reply (connection failure); reply may be
 * NULL. The enhanced status (x.y.z) is taken from the reply when present.
 * Each call counts one attempt. */
struct db_delivery_outcome {
	long code;
	const char *reply;
	const char *reason;           /* bounce_reason for bounced/failed */
};

/* state: "sent", "deferred", "bounced" or "failed" (sent_at / bounced_at
 * are set with it). 1: updated; 0: no such row; -1: err. */
MUST_CHECK int db_deliveries_record(struct db *db, int64_t id,
    const char *state, const struct db_delivery_outcome *o, struct err *err);

/* The x.y.z enhanced status after the code in an SMTP reply line
 * ("550 5.1.1 <x>: …") into out[size >= 12]; "" when there is none. */
void db_deliveries_enhanced_status(const char *reply, char *out, size_t size);

#endif
