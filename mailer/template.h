/* mailer/template.h: the text and HTML of each kind of mail we send.
 *
 * Each kind has a subject, a text body and an HTML fragment, built in, and
 * overridable per installation from a templates directory:
 *
 *   <dir>/<kind>.txt    "Subject: …" on the first line, an empty line,
 *                       then the text body
 *   <dir>/<kind>.html   an HTML fragment (the body's content)
 *
 * A missing file means the built-in; any other problem (unreadable, over
 * LIMIT_TEMPLATE_FILE, invalid UTF-8, a bad or unknown {{name}}, a script,
 * remote image or event handler in HTML) is an error at load naming
 * file:line, so a broken override stops startup instead of a send.
 *
 * Placeholders are {{name}} from a fixed set per kind (below). In the text
 * and subject a value goes in as is; in HTML every value goes through
 * html_escape() (common/html.h), never raw. The HTML fragment is wrapped in
 * our own shell: one column at most 560 px wide, inline styles only, no
 * remote images, no scripts. Mail to a patient starts (text and HTML) with
 * our separator line "—— Reply above this line to answer <practice> ——";
 * the reply-trimming code looks for TEMPLATE_SEPARATOR_MARK.
 *
 * Variables (every one must be given, nothing else may be):
 *   magic_link        practice_name, link, code, minutes
 *   notify_phi_free   practice_name, link
 *   notify_full_text  practice_name, link, patient_name, staff_name,
 *                     message_text
 *   test              practice_name, sent_at
 *   confirm_sender    practice_name, link, sender_address, days
 *   rejection_notice  practice_name, link, explanation
 *   urgent_ack        practice_name, emergency_text
 * link must be an http(s) URL; message_text and emergency_text may span
 * lines (and are not allowed in a subject); the others are one line.
 * magic_link, notify_phi_free, confirm_sender, rejection_notice and
 * urgent_ack carry no PHI: their variables name no patient and no message
 * (sender_address is the address a held reply came from, explanation a
 * fixed sentence of the handler, emergency_text the practice's). */
#ifndef POSTERN_MAILER_TEMPLATE_H
#define POSTERN_MAILER_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"

/* What reply trimming searches for (ASCII, survives any charset). */
#define TEMPLATE_SEPARATOR_MARK "Reply above this line"
/* The whole line is TEMPLATE_SEPARATOR_HEAD practice TEMPLATE_SEPARATOR_TAIL
 * ("—— Reply above this line to answer Practice ——"). */
#define TEMPLATE_SEPARATOR_HEAD \
	"\xe2\x80\x94\xe2\x80\x94 " TEMPLATE_SEPARATOR_MARK " to answer "
#define TEMPLATE_SEPARATOR_TAIL " \xe2\x80\x94\xe2\x80\x94"

enum template_kind {
	TEMPLATE_MAGIC_LINK,
	TEMPLATE_NOTIFY_PHI_FREE,
	TEMPLATE_NOTIFY_FULL_TEXT,
	TEMPLATE_TEST,
	TEMPLATE_CONFIRM_SENDER,
	TEMPLATE_REJECTION_NOTICE,
	TEMPLATE_URGENT_ACK,
};
#define TEMPLATE_KINDS 7

/* One value for a placeholder. Borrowed for the call. */
struct template_var {
	const char *name;
	const char *value;       /* UTF-8 */
};

/* A rendered mail: heap strings owned by the struct (template_mail_fini).
 * text and html use LF line ends; compose_build() makes them CRLF. */
struct template_mail {
	char *subject;           /* one line */
	char *text;
	char *html;              /* a whole document */
};

struct template_set;             /* opaque: the parsed templates */

/* "magic_link", … (file names, payloads); NULL for a bad kind. */
const char *template_kind_name(enum template_kind kind);
/* 0 and *kind_r set, or -1 for an unknown name. */
MUST_CHECK int template_kind_parse(const char *name,
    enum template_kind *kind_r);

/* Loads every kind: dir's overrides where present, else the built-ins
 * (dir NULL or "": built-ins only). 0 and *set_r set; -1 with err set
 * (file:line and the problem). The set is read-only after this, so threads
 * may share it. */
MUST_CHECK int template_set_load(const char *dir, struct template_set **set_r,
    struct err *err);
void template_set_free(struct template_set **setp);   /* NULL-safe */

/* Fills the kind's templates with vars[nvars] into *out (zeroed first).
 * separator: mail to a patient (starts with the separator line). 0, or -1
 * with err set (a missing, unknown, repeated or bad value: invalid UTF-8, a
 * control or a line break in a one-line value, a link that is not
 * http(s), too long) and *out empty. */
MUST_CHECK int template_render(const struct template_set *set,
    enum template_kind kind, bool separator, const struct template_var *vars,
    size_t nvars, struct template_mail *out, struct err *err);
void template_mail_fini(struct template_mail *m);

#endif
