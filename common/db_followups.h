/* common/db_followups.h: what the ingester's follow-up mails need, each
 * read in one statement: confirm_sender (a held reply: mail its patient),
 * rejection_notice (a refused mail: tell the patient who sent it) and
 * urgent_ack (a reply with red-flag words: the practice's emergency text).
 *
 * Read-only joins over inbound_mail, patient_messages, patients,
 * practices and suppressions; the handlers (worker/job_confirm_sender.c,
 * job_rejection_notice.c, job_urgent_ack.c) write only through
 * db_deliveries and db_login_tokens. */
#ifndef POSTERN_COMMON_DB_FOLLOWUPS_H
#define POSTERN_COMMON_DB_FOLLOWUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"
#include "common/limits.h"

/* practices.emergency_text: at most 2000 characters (migrations/001). */
#define DB_FOLLOWUP_TEXT_MAX (2000 * 4 + 1)
#define DB_FOLLOWUP_MSGID_MAX (LIMIT_MAIL_MSGID + 1)

/* One follow-up mail's recipient, identity and state. Copied into the
 * struct (no heap). */
struct db_followup {
	int64_t patient_id, practice_id;
	char email[LIMIT_EMAIL + 1];            /* the patient's stored address */
	char practice_name[LIMIT_NAME * 4 + 1];
	char from_name[LIMIT_NAME * 4 + 1];     /* "" when NULL */
	char from_address[LIMIT_EMAIL + 1];
	int64_t age_s;          /* now() - when the cause arrived (db clock) */
	/* Still worth mailing: confirm_sender: the mail is still held and
	 * pending; urgent_ack: the practice still auto-acknowledges; always
	 * true for rejection_notice. Also false when the practice is
	 * inactive. */
	bool live;
	/* confirm_sender: the address the held reply came from; urgent_ack:
	 * the practice's emergency text; "" otherwise. text_too_long: it did
	 * not fit (the caller refuses rather than cut). */
	char text[DB_FOLLOWUP_TEXT_MAX];
	bool text_too_long;
	/* The patient's address is on the suppression list (for this practice
	 * or every practice), with the reason. */
	bool suppressed;
	char suppression_reason[32];
	/* "<…>" of the mail this answers (In-Reply-To); "" none or too long. */
	char in_reply_to[DB_FOLLOWUP_MSGID_MAX + 2];
};

/* confirm_sender: the inbound_mail row, its patient (patient_id) and that
 * patient's practice. 1: *f_r filled; 0: no such row, or it names no
 * patient; -1: err. */
MUST_CHECK int db_followups_confirm(struct db *db, int64_t inbound_mail_id,
    struct db_followup *f_r, struct err *err);

/* rejection_notice: the patient with this address (any case) in an active
 * practice: the one in the inbound_mail row's practice when there is such
 * a patient, else the lowest patient id. inbound_mail_id gives the age
 * and In-Reply-To (a missing row: age 0, none). 1 / 0 (no such patient) /
 * -1. */
MUST_CHECK int db_followups_rejection(struct db *db, int64_t inbound_mail_id,
    const char *email, struct db_followup *f_r, struct err *err);

/* urgent_ack: the inbound message patient_message_id of patient_id, the
 * patient and their practice (live: red_flag_autoack still on). 1 / 0 (no
 * such inbound message of that patient) / -1. */
MUST_CHECK int db_followups_urgent(struct db *db, int64_t patient_id,
    int64_t patient_message_id, struct db_followup *f_r, struct err *err);

#endif
