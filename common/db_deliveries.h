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
#include "common/db_login_tokens.h"
#include "common/db_patient_messages.h"
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
	/* > 0: the same statement records message_id on this
	 * patient_messages row unless it has one (the mail that carries a
	 * message names it, so replies thread). */
	int64_t message_row_id;
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

/* Everything a notify job needs, read in one statement (one round trip):
 * the job's delivery if one was made (d.id = 0: none yet), the payload's
 * message_id, the message with its patient, author and practice, the
 * thread's earlier Message-IDs and whether the patient's address is
 * suppressed. Owned by the struct: db_deliveries_notify_load_fini(). */
struct db_notify_load {
	struct db_delivery d;         /* d.id = 0: no delivery yet */
	int64_t message_id;           /* the payload's; 0: missing or bad */
	bool found;                   /* the message exists (n filled) */
	struct db_message_notice n;
	bool suppressed;
	char suppression_reason[64];
	bool fresh;                   /* d was just made (the caller's flag) */
};
/* 0, or -1 with err set (a payload that is not a JSON object is a
 * permanent error). */
MUST_CHECK int db_deliveries_notify_load(struct db *db, int64_t job_id,
    const char *payload, struct db_notify_load *l_r, struct err *err);
/* The same for n jobs in one statement (a claimed batch): l_r[i] for
 * job_ids[i] / payloads[i]. One bad payload fails the whole call (then
 * load them one by one). */
MUST_CHECK int db_deliveries_notify_load_many(struct db *db, int n,
    const int64_t *job_ids, const char *const *payloads,
    struct db_notify_load *l_r, struct err *err);
void db_deliveries_notify_load_fini(struct db_notify_load *l);

/* Everything a magic_link job needs, in one statement: the job's login
 * delivery if any (d.id = 0: none) and then the subject it names (still
 * allowed to log in), else the payload's fields and the subject for the
 * payload's address (compared case-insensitively after trimming; the
 * caller still checks the address: a subject is only used for an address
 * email_normalize_check() accepts). Copied into the struct; the payload
 * strings are heap copies (db_deliveries_login_load_fini()). */
struct db_login_load {
	struct db_delivery d;
	char *email, *practice_id, *requested_ip;   /* NULL: not in payload */
	bool found;                   /* s filled */
	struct db_login_subject s;
};
MUST_CHECK int db_deliveries_login_load(struct db *db, int64_t job_id,
    const char *payload, struct db_login_load *l_r, struct err *err);
void db_deliveries_login_load_fini(struct db_login_load *l);

/* n new rows in state queued in one statement (one commit), each naming
 * its message (message_row_id) like db_deliveries_insert(); state and
 * reason must be NULL. ids_r[i]: the id of dn[i]'s row. */
MUST_CHECK int db_deliveries_insert_many(struct db *db, int n,
    const struct db_delivery_new *dn, int64_t *ids_r, struct err *err);

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

/* "sent" for n deliveries in one statement (the runner writes it in the
 * transaction that completes their jobs). ids[i], codes[i] (0: none),
 * replies[i] (NULL: none). Each counts one attempt. *updated_r: rows
 * changed. */
MUST_CHECK int db_deliveries_record_sent(struct db *db, int n,
    const int64_t *ids, const long *codes, const char *const *replies,
    int *updated_r, struct err *err);

/* The runner's common case in one statement: deletes the done jobs
 * job_ids[0..n) that hold lease token tok and no once_key (as
 * db_jobs_complete() without keep_done) and, in the same statement, marks
 * sent the deliveries of the jobs it deleted: sent_job[i] (a job id),
 * ids[i], codes[i], replies[i] for i < nsent. done_r[i]: job_ids[i] was
 * deleted; a job not deleted (a once_key, a lost lease) and its delivery
 * changed nothing. */
MUST_CHECK int db_deliveries_record_sent_done(struct db *db, int n,
    const int64_t *job_ids, int64_t tok, int nsent, const int64_t *sent_job,
    const int64_t *ids, const long *codes, const char *const *replies,
    bool *done_r, struct err *err);

/* Deliveries of jobs the lease reaper just made dead (ids[0..n)) that
 * are still queued or deferred: failed, with reason. Runs in the reaper's
 * transaction. *failed_r: rows changed. */
MUST_CHECK int db_deliveries_fail_jobs(struct db *db, int n,
    const int64_t *job_ids, const char *reason, int *failed_r,
    struct err *err);

/* For an operator's retry of dead jobs job_ids[0..n): their failed
 * deliveries go back to deferred (same row, same Message-ID), so the
 * handler sends them again; bounced and sent ones stay. *again_r: rows
 * changed. */
MUST_CHECK int db_deliveries_retry_jobs(struct db *db, int n,
    const int64_t *job_ids, int *again_r, struct err *err);

/* The x.y.z enhanced status after the code in an SMTP reply line
 * ("550 5.1.1 <x>: …") into out[size >= 12]; "" when there is none. */
void db_deliveries_enhanced_status(const char *reply, char *out, size_t size);

#endif
