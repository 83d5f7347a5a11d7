/* mailer/classify.h: is an inbound mail a reply, an automatic reply or a
 * bounce; and what a delivery-status report says.
 *
 * Works on header values already unfolded and decoded to UTF-8 (the MIME
 * layer does that); reads them, keeps no pointers, allocates nothing.
 * Header values longer than LIMIT_CLASSIFY_VALUE are looked at only up to
 * that many bytes (enough for every decision made here).
 *
 * Order of the checks (the first that holds wins):
 *   1. multipart/report; report-type=delivery-status          BOUNCE
 *   2. our own mail looping back: From is one of our own sender
 *      addresses (h->self) or a reply+/bounce+ address              AUTO_REPLY
 *      Auto-Submitted other than "no" (RFC 3834), X-Autoreply,
 *      X-Autorespond, Precedence bulk/junk/list/auto_reply,
 *      another multipart/report (read receipts, feedback),
 *      an out-of-office subject                                 AUTO_REPLY
 *   3. sent to a bounce+ address (VERP, mailer/token.h)          BOUNCE
 *      (after 2: auto-replies go to the envelope sender, which is our
 *      bounce address, and are not bounces)
 *   4. a mailer-daemon or postmaster sender with a bounce subject
 *      ("Undelivered Mail Returned to Sender", …)              BOUNCE
 *   5. null envelope sender, mailer-daemon/postmaster/no-reply
 *      senders                                                 AUTO_REPLY
 *   6. a From with an address                                   REPLY
 *   7. otherwise (no usable From)                               UNKNOWN */
#ifndef POSTERN_MAILER_CLASSIFY_H
#define POSTERN_MAILER_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"

#define DSN_DIAG_MAX 200                 /* Diagnostic-Code kept */

enum classify_kind {
	CLASSIFY_UNKNOWN,
	CLASSIFY_REPLY,
	CLASSIFY_AUTO_REPLY,
	CLASSIFY_BOUNCE,
};

/* The headers classification reads. Every field may be NULL (header
 * absent); "" means present and empty. All borrowed for the call. */
struct classify_headers {
	const char *from;            /* From: */
	/* The envelope sender (Return-Path:): NULL when not known (a file
	 * given to mail inspect may lack it), "" or "<>" for the null
	 * sender. */
	const char *return_path;
	const char *auto_submitted;
	const char *precedence;
	const char *x_autoreply;
	const char *x_autorespond;
	const char *subject;
	const char *content_type;    /* of the whole message, with parameters */
	/* Values of To:, Cc:, Delivered-To:, X-Original-To: (each may list
	 * several addresses, comma separated). At most LIMIT_CLASSIFY_RCPT are
	 * read. */
	const char *const *rcpt;
	size_t nrcpt;
	/* When not NULL, a bounce+ address counts only in this domain. */
	const char *bounce_domain;
	/* Our own sender addresses (bare addr-specs, any case): mail from
	 * one of them is our own looping back. May be NULL. */
	const char *const *self;
	size_t nself;
};

struct classify_result {
	enum classify_kind kind;
	char reason[96];             /* short, for logs and mail inspect */
};

/* Classifies h into *r. Cannot fail. */
void classify_mail(const struct classify_headers *h, struct classify_result *r);

/* The addr-spec of a From-style value ("Name" <a@b> or a@b): the last
 * <...> outside quotes, else the whole value, trimmed, into out[size].
 * 0, or -1 (out "") when there is none or it does not fit. Not checked
 * as an address: email_normalize_check() does that. */
int classify_mailbox(const char *value, char *out, size_t size);

/* "unknown", "reply", "auto_reply", "bounce" (the mail inspect names). */
const char *classify_kind_name(enum classify_kind kind);

/* What one message/delivery-status part says, for its first recipient
 * with an Action of failed (else delayed, else the first with a Status). */
struct classify_dsn {
	char status[16];             /* "5.1.1"; "" when none was given */
	bool hard;                   /* 5.x.x (or Action: failed without one) */
	bool soft;                   /* 4.x.x (or Action: delayed) */
	char action[16];             /* "failed", "delayed", … lower case */
	/* Final-Recipient's address (else Original-Recipient's), without its
	 * address type, lower case; "" when absent or longer than
	 * LIMIT_EMAIL. */
	char recipient[LIMIT_EMAIL + 1];
	char original_recipient[LIMIT_EMAIL + 1];
	char diagnostic[DSN_DIAG_MAX + 1];   /* Diagnostic-Code, one line */
};

/* Parses the text of a message/delivery-status part (LF or CRLF, folded
 * lines, any case of field names; unknown fields and junk lines are
 * skipped). 1: a recipient with a Status or Action was found, *dsn_r set.
 * 0: none (*dsn_r zeroed). -1: len > LIMIT_DSN_TEXT, err set. */
MUST_CHECK int classify_dsn_parse(const char *text, size_t len,
    struct classify_dsn *dsn_r, struct err *err);

#endif
