/* mailer/parse.h: what an inbound raw message says, decoded to UTF-8.
 *
 * Parses one raw RFC 5322 message (as fetched from IMAP or read by
 * `posternctl mail inspect`): the headers classification and threading
 * read, the text body, the attachments' names and sizes, and the text of a
 * delivery-status report. MIME structure and transfer decodings are
 * libetpan's (mailmime_parse, mailmime_part_parse); header extraction,
 * RFC 2047 words, charsets, HTML→text and every limit are ours.
 *
 * libetpan 1.9.4 recurses into parts with no depth limit, so before it
 * sees a byte the raw message is checked: its size (LIMIT_MAIL_SIZE), its
 * header block, the number of Content-Type lines (which bounds the nesting
 * libetpan can recurse into) and the number of boundary delimiter lines
 * (which bounds the parts it allocates). The tree it builds is then walked
 * with a depth cap (10) and a part cap (200) (LIMIT_PARSE_* in
 * common/limits.h). Going over any cap is an error with
 * err->temp false (the mail is refused and recorded), never a crash, a
 * hang or a silent cut.
 *
 * Text: the first text/plain part outside attached messages, else the
 * first text/html part converted to text with libxml2's HTML parser
 * (no network; head, script, style, frames and objects dropped; images
 * and links leave only their text; blocks on their own lines,
 * blockquotes as "> " quotes). Quoted-printable and base64 are decoded; the declared
 * charset is converted to UTF-8 with iconv (ISO-8859-1 and US-ASCII labels
 * read as Windows-1252, as browsers do); text that is not valid UTF-8 in
 * an undeclared, unknown or wrongly declared charset is read as
 * Windows-1252. Later inline text parts (Apple Mail's text around an
 * inline image) are not appended yet. Attachment names: RFC 2231
 * (charset, continuations) or RFC 2047. A delivery-status part over
 * LIMIT_DSN_TEXT is not collected (classify_dsn_parse refuses it anyway).
 * Every string handed out is valid UTF-8 without NUL, with LF line ends;
 * names and subjects also lose control and bidi override/isolate
 * characters (U+202A-202E, U+2066-2069, U+200E/200F, U+061C). */
#ifndef POSTERN_MAILER_PARSE_H
#define POSTERN_MAILER_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"
#include "mailer/classify.h"

struct parsed_attachment {
	char *filename;          /* decoded UTF-8, "" when none given */
	char *content_type;      /* "type/subtype", lower case */
	size_t size;             /* decoded bytes */
	char *data;              /* the decoded bytes (size of them) */
};

/* Plain data, all owned by the struct; freed by parsed_mail_free(). Header
 * fields are NULL when the header is absent, else the first occurrence,
 * unfolded, valid UTF-8 (from, to, cc and subject with RFC 2047 words
 * decoded and controls and bidi characters removed). */
struct parsed_mail {
	char *from, *to, *cc, *delivered_to, *x_original_to, *return_path;
	char *subject, *message_id, *in_reply_to, *references;
	char *auto_submitted, *precedence, *x_autoreply, *x_autorespond;
	char *content_type;      /* the top-level one, with parameters */
	/* The body as UTF-8 text ("" when the mail has none); text_len bytes,
	 * NUL-terminated, no NUL inside. */
	char *text;
	size_t text_len;
	bool text_from_html;     /* converted from text/html */
	/* The first message/delivery-status part's text, or NULL. */
	char *dsn;
	size_t dsn_len;
	struct parsed_attachment *att;
	size_t natt;
	size_t nparts;           /* MIME parts seen */
	unsigned depth;          /* deepest nesting seen (top = 0) */
};

/* Parses raw[len] (need not be NUL-terminated). 0 and *pm_r set (free
 * with parsed_mail_free()); -1 with err set (err->temp false: the mail is
 * refused) when raw is over a cap, its MIME tree is too deep or has too
 * many parts, its text is over LIMIT_TRIM_INPUT, or it has no header
 * block. Keeps no pointers into raw. */
MUST_CHECK int parse_mail(const char *raw, size_t len,
    struct parsed_mail **pm_r, struct err *err);

void parsed_mail_free(struct parsed_mail **pmp);   /* NULL-safe; sets NULL */

/* Where raw[len]'s body starts: the length of its header block with the
 * empty line that ends it (LF or CRLF), or len when there is none. */
size_t parse_body_offset(const char *raw, size_t len);

/* Points h at pm's headers for classify_mail() (borrowed: valid while pm
 * lives). rcpt[4] is caller storage for To, Cc, Delivered-To and
 * X-Original-To. bounce_domain and self are left NULL. */
void parse_classify_headers(const struct parsed_mail *pm,
    struct classify_headers *h, const char *rcpt[4]);

#endif
