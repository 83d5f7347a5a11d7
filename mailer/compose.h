/* mailer/compose.h: one outgoing RFC 5322 message, built from plain data.
 *
 * compose_build() turns a struct compose_mail into the exact bytes handed
 * to smtp_send(): CRLF line ends only, no line over 998 octets and header
 * lines folded at 78 columns wherever a space or an encoding allows it (a
 * very long URL or message id may still make a longer line). Shapes:
 *
 *   text only                 text/plain
 *   text + html               multipart/alternative (text, then html)
 *   ... + attachments         multipart/mixed (the above, then each file)
 *
 * Text parts are UTF-8 in quoted-printable, attachments base64. Non-ASCII
 * display names and subjects become RFC 2047 encoded words (B, utf-8, whole
 * characters per word); non-ASCII or long filenames RFC 2231
 * (filename*=utf-8''…, continued when long) with an ASCII name= fallback.
 * Boundaries are "=_" plus 128 random bits: "=_" cannot occur in
 * quoted-printable or base64 output, so no body can end a part early.
 *
 * Nothing is repaired silently: a CR or LF in any header value (a name,
 * subject, filename, address, id, URL or extra header), a control
 * character, invalid UTF-8, an address email_normalize_check() refuses, or
 * anything over a limit is an error (err->temp false) and nothing is built.
 * A NUL cannot be inside a C string: a value ends at its first NUL, so
 * nothing after one can reach the message. Callers turning bytes into
 * these strings refuse NULs there (PostgreSQL text and jsonb already do).
 * Pure: no I/O, no state (Date and boundaries aside: the clock and
 * libsodium's random bytes). The message is serialized here, not by
 * libetpan: its writer passes raw 8-bit names and filenames through, turns
 * CR/LF inside header values into spaces, quotes RFC 2231 values and takes
 * boundaries from an unseeded random(). */
#ifndef POSTERN_MAILER_COMPOSE_H
#define POSTERN_MAILER_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"

/* "<" + 32 hex digits + "@" + domain (EMAIL_DOMAIN_MAX) + ">" + NUL. */
#define COMPOSE_MSGID_NEW_SIZE (1 + 32 + 1 + 253 + 1 + 1)

/* A mailbox. name: UTF-8 display name, NULL or "" for none, at most
 * LIMIT_NAME bytes. addr: a plain address (common/email.h rules). */
struct compose_addr {
	const char *name;
	const char *addr;
};

/* One file. content_type: "type/subtype" plus optional "; key=value"
 * parameters ("text/calendar; method=REQUEST"), ASCII; a text type gets
 * charset=utf-8 unless it names one. filename: UTF-8 without path
 * separators, NULL for none. data/len: the bytes, sent base64. */
struct compose_attachment {
	const char *filename;
	const char *content_type;
	const uint8_t *data;
	size_t len;
};

/* An extra header ("X-Postern-Kind: digest"). name: printable ASCII
 * without ':' and not one compose_build() writes itself; value: UTF-8
 * unstructured text (RFC 2047-encoded when non-ASCII). */
struct compose_header {
	const char *name;
	const char *value;
};

/* Everything one message needs. Borrowed: compose_build() reads it during
 * the call and keeps no pointer. Zero-initialise, then fill in. */
struct compose_mail {
	struct compose_addr from;        /* practice identity */
	struct compose_addr to;          /* one recipient */
	struct compose_addr reply_to;    /* addr NULL: no Reply-To */
	const char *subject;             /* UTF-8, may be "" */
	time_t date;                     /* 0: now; written in UTC (+0000) */
	/* "<…@…>", made once per delivery (compose_message_id_new()) and
	 * reused on every retry, so duplicates can be recognised. */
	const char *message_id;
	const char *in_reply_to;         /* "<…>" or NULL */
	const char *const *references;   /* "<…>" each, oldest first */
	size_t n_references;
	/* Auto-Submitted: auto-generated and X-Auto-Response-Suppress: All:
	 * set on everything postern generates, so autoresponders stay quiet. */
	bool auto_submitted;
	/* Auto-Submitted: auto-replied instead (RFC 3834: an automatic
	 * response to a message someone sent: rejection notices,
	 * acknowledgements), with X-Auto-Response-Suppress: All too. */
	bool auto_replied;
	/* Bulk mail (digests): an http(s) URL that unsubscribes with one POST
	 * (RFC 8058): List-Unsubscribe: <url> and List-Unsubscribe-Post:
	 * List-Unsubscribe=One-Click. NULL: not bulk. */
	const char *list_unsubscribe;
	const struct compose_header *extra;
	size_t n_extra;
	const char *text;                /* UTF-8 body, required; LF or CRLF */
	const char *html;                /* UTF-8 HTML document or NULL */
	const struct compose_attachment *attachments;
	size_t n_attachments;
};

/* Builds the message into out (reset first). Its size is capped by
 * LIMIT_MAIL_SIZE and by out's own cap. 0: out holds the message (CRLF,
 * NUL-terminated for convenience, length out->len). -1: err set
 * (temp = false, the message names the field), out reset: nothing built. */
MUST_CHECK int compose_build(const struct compose_mail *m, struct buf *out,
    struct err *err);

/* A new Message-ID "<32 hex digits from 128 random bits@domain>" into
 * out[size] (size >= COMPOSE_MSGID_NEW_SIZE is always enough). domain is
 * checked and lower-cased (email_domain_normalize_check). 0, or -1 with
 * err set and out "" (when size > 0). */
MUST_CHECK int compose_message_id_new(const char *domain, char *out,
    size_t size, struct err *err);

#endif
