/* common/db_patient_messages.h: every statement on patient_messages that
 * the worker needs (so far: what a notify mail needs). */
#ifndef POSTERN_COMMON_DB_PATIENT_MESSAGES_H
#define POSTERN_COMMON_DB_PATIENT_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

#define DB_MESSAGE_REFS_MAX 20             /* = LIMIT_MAIL_REFERENCES */

/* One outbound message with its patient, author and practice: what the
 * notify mail is made of. Strings are heap copies owned by the struct
 * (db_patient_messages_notice_fini). */
struct db_message_notice {
	int64_t id, thread_id, practice_id, patient_id, staff_user_id;
	int64_t age_s;                /* now() - created_at, database clock */
	bool outbound;
	char *body;
	char *patient_email, *patient_name;     /* name: first and last */
	char *staff_name;                       /* "" when none */
	bool email_text_consent;                /* the patient's */
	char *practice_name, *from_name, *from_address, *reply_domain;
	bool phi_in_email;                      /* the practice's policy */
	/* Message-IDs of the thread's earlier messages that have one, oldest
	 * first, the newest DB_MESSAGE_REFS_MAX only, as "<…>" (References;
	 * the last is In-Reply-To). */
	char *refs[DB_MESSAGE_REFS_MAX];
	size_t n_refs;
};

/* 1: *n_r filled; 0: no such message; -1: err. */
MUST_CHECK int db_patient_messages_notice(struct db *db, int64_t id,
    struct db_message_notice *n_r, struct err *err);
void db_patient_messages_notice_fini(struct db_message_notice *n);

/* Records the Message-ID ("<…>" or bare) of the mail that carries message
 * id, unless it has one: a reply's In-Reply-To then names the message.
 * 0 or -1. */
MUST_CHECK int db_patient_messages_set_message_id(struct db *db, int64_t id,
    const char *message_id, struct err *err);

#endif
