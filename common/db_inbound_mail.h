/* common/db_inbound_mail.h: SQL of the IMAP ingester (worker/job_imap_sync.c)
 * on inbound_mail, mailbox_state, patient_messages, staff notifications,
 * tasks, deliveries (bounces), suppressions and message_attachments.
 *
 * Every function runs inside the caller's transaction: the ingester puts a
 * whole batch of messages and the advance of mailbox_state into one (see
 * migrations/003_mail.sql for why that makes ingest exactly-once). */
#ifndef POSTERN_COMMON_DB_INBOUND_MAIL_H
#define POSTERN_COMMON_DB_INBOUND_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"
#include "common/limits.h"

/* The session-level advisory lock that makes one ingester per mailbox:
 * 1 taken, 0 another session holds it, -1 error. */
MUST_CHECK int db_inbound_lock(struct db *db, const char *mailbox,
    struct err *err);
void db_inbound_unlock(struct db *db, const char *mailbox);

/* mailbox_state.last_uid of (mailbox, uidvalidity), 0 when there is no
 * row yet; *other_r: whether rows of other UIDVALIDITYs exist (a resync). */
MUST_CHECK int db_inbound_last_uid(struct db *db, const char *mailbox,
    uint32_t uidvalidity, uint32_t *last_r, bool *other_r, struct err *err);
MUST_CHECK int db_inbound_advance(struct db *db, const char *mailbox,
    uint32_t uidvalidity, uint32_t last_uid, struct err *err);

/* What a reply token's thread leads to. */
struct db_thread {
	int64_t thread_id, patient_id, practice_id;
	int64_t coach_id;           /* the patient's assigned staff, 0 none */
	int64_t addressee_id;       /* last staff author in the thread, else
	                             * the coach, 0 none */
	bool autoack;               /* practices.red_flag_autoack */
	char email[LIMIT_EMAIL + 1];
	char name[2 * LIMIT_NAME + 2];
};

/* 1 found, 0 no such thread, -1 error. */
MUST_CHECK int db_inbound_thread(struct db *db, int64_t thread_id,
    struct db_thread *t, struct err *err);

/* A patient (any practice) with this address: 1 and *patient_id_r, 0 none. */
MUST_CHECK int db_inbound_patient_by_email(struct db *db, const char *email,
    int64_t *patient_id_r, struct err *err);

/* One inbound_mail row. NULL strings and 0 ids are SQL NULL. */
struct db_inbound_row {
	const char *mailbox;
	uint32_t uidvalidity, uid;
	const char *message_id;     /* without <>, a valid msgid, or NULL */
	const uint8_t *sha256;      /* 32 bytes */
	const char *from_addr;
	const char *subject;
	int64_t size;
	const char *outcome;        /* message, auto_reply, bounce, … */
	const char *reason;
	int64_t practice_id, patient_id;
	bool held;                  /* hold_state 'pending' */
	const char *raw;            /* NULL: not kept */
	size_t raw_len;
	int64_t received_at;        /* unix seconds; 0: now */
};

/* 1 inserted (*id_r), 0 already there (same UID or same bytes), -1. */
MUST_CHECK int db_inbound_insert(struct db *db, const struct db_inbound_row *r,
    int64_t *id_r, struct err *err);

/* Sets outcome and reason of an inserted row (a duplicate found later). */
MUST_CHECK int db_inbound_set_outcome(struct db *db, int64_t id,
    const char *outcome, const char *reason, struct err *err);

/* A patient's reply, becoming a patient_messages row plus a staff
 * notification (the addressee, else the practice's owners and admins;
 * every active non-viewer staff user when urgent) and a reply_needed task
 * for the coach. */
struct db_inbound_message {
	int64_t inbound_mail_id;
	const struct db_thread *t;
	const char *subject, *body, *elided;
	const char *confidence;     /* "high", "low" */
	const char *message_id;     /* without <>, or NULL */
	const char *in_reply_to;    /* likewise */
	const char *references;     /* the raw References value, or NULL */
	bool urgent;
};

/* 1 created (*message_id_r), 0 the thread already has this Message-ID
 * (the inbound_mail row is marked duplicate), -1. */
MUST_CHECK int db_inbound_message(struct db *db,
    const struct db_inbound_message *m, int64_t *message_id_r,
    struct err *err);

/* One attachment row (stored when data != NULL, else refused). */
MUST_CHECK int db_inbound_attachment(struct db *db, int64_t inbound_mail_id,
    int64_t patient_message_id, const char *filename,
    const char *content_type, const char *data, size_t size,
    const char *refused, struct err *err);

/* Points the attachments stored with a held mail at its new message. */
MUST_CHECK int db_inbound_attachments_link(struct db *db,
    int64_t inbound_mail_id, int64_t patient_message_id, struct err *err);

/* A held mail, decided: confirm (outcome message, hold_state confirmed)
 * or decline (outcome quarantined, reason sender_declined). Only a row
 * still held and pending changes. 1 and *h filled (raw malloc'ed, the
 * caller frees it), 0 not held any more, -1. */
struct db_held {
	int64_t practice_id, patient_id;
	char *raw;
	size_t raw_len;
};
MUST_CHECK int db_inbound_decide_held(struct db *db, int64_t id, bool confirm,
    struct db_held *h, struct err *err);

/* Drops the raw bytes (raw NULL, raw_purged_at now) of at most limit
 * inbound_mail rows older than keep_days (message, auto_reply, bounce,
 * duplicate) or review_days (quarantined, held, rejected); the rest of
 * each row stays. *purged_r: rows changed. */
MUST_CHECK int db_inbound_purge_raw(struct db *db, int keep_days,
    int review_days, int limit, int64_t *purged_r, struct err *err);

/* The delivery a bounce is about, by its recipient: the newest sent or
 * deferred one of the last 14 days. 1 and *id_r, 0 none. */
MUST_CHECK int db_inbound_delivery_by_rcpt(struct db *db, const char *rcpt,
    int64_t *id_r, struct err *err);

/* Marks delivery id bounced with reason; hard (or the third soft bounce
 * of the address in 7 days) puts the recipient on the suppression list
 * (every practice), marks the patient's bounce state and notifies staff.
 * 1 and *patient_id_r, *practice_id_r (0 when none), 0 no such delivery. */
MUST_CHECK int db_inbound_bounce(struct db *db, int64_t delivery_id,
    const char *reason, bool hard, int64_t *patient_id_r,
    int64_t *practice_id_r, struct err *err);

#endif
