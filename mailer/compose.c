/* mailer/compose.c: the RFC 5322 / MIME serializer behind compose_build().
 *
 * Two passes: check every field (nothing is written while any is bad), then
 * write. The writer keeps a sticky "over the cap" flag instead of checking
 * each append, and the column of the current header line for folding.
 * Every header token is bounded by the checks (ids, URLs, content types,
 * filename fallbacks, encoded words), so no header line can pass 998
 * octets; bodies are quoted-printable (76) or base64 (76). */
#include "mailer/compose.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/crypto.h"
#include "common/csv.h"
#include "common/email.h"
#include "common/mem.h"
#include "common/utf8.h"

#define LINE_SOFT 78            /* fold header lines here when we can */
#define QP_MAX 76               /* RFC 2045 6.7: with the soft-break '=' */
#define B64_IN 57               /* bytes per base64 line: 76 characters */
/* UTF-8 bytes per encoded word: 52 base64 characters, a 64-character word
 * that fits after "Subject: " within 78 columns. */
#define EW_BYTES 39
/* An ASCII word longer than this makes a subject encoded (then it folds). */
#define WORD_MAX 60
/* RFC 2231 segment length (percent-encoded characters). */
#define PCT_SEG 56
/* The ASCII name= fallback of an RFC 2231 filename, cut to this. */
#define FALLBACK_MAX 48
#define BOUNDARY_LEN (2 + 32)   /* "=_" + 128 bits in hex */
/* Parameter words of one Content-Type or Content-Disposition: the type,
 * up to 8 parameters, charset and name (11); or the disposition and at
 * most 3 * LIMIT_MAIL_FILENAME / (PCT_SEG - 2) + 1 = 15 RFC 2231
 * segments. Each word is a checked parameter (LIMIT_MAIL_CONTENT_TYPE),
 * a name fallback (LIMIT_MAIL_FILENAME + 8) or a segment, plus ';'. */
#define PARAM_WORDS 24
#define PARAM_WORD_SIZE (LIMIT_MAIL_FILENAME + 16)
_Static_assert(PARAM_WORD_SIZE >= LIMIT_MAIL_CONTENT_TYPE + 2,
    "a content type parameter fits a word");

struct writer {
	struct buf *b;
	size_t limit;           /* LIMIT_MAIL_SIZE, or less: b's own cap */
	size_t col;             /* bytes on the current header line */
	size_t words;           /* words in the current header */
	bool over;              /* the cap was hit; later output is dropped */
};

static void
put(struct writer *w, const void *p, size_t n)
{
	if (w->over || n > w->limit - w->b->len || buf_add(w->b, p, n) < 0)
		w->over = true;
}

static void
puts_(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* ------------------------------------------------------------ checks */

static bool
prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static size_t
utf8_char_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* A header value: no CR or LF (header injection), no other control but
 * tab (when allow_tab), valid UTF-8 (or ASCII only), at most max bytes.
 * (A NUL ends the C string: see compose.h.) */
static int
check_text(const char *what, const char *s, size_t max, bool ascii_only,
    bool allow_tab, struct err *err)
{
	size_t n;

	if (s == NULL)
		return err_set(err, false, "%s: missing", what);
	n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n')
			return err_set(err, false, "%s: contains a line break "
			    "(CR or LF)", what);
		if ((c < 0x20 && !(c == '\t' && allow_tab)) || c == 0x7f)
			return err_set(err, false, "%s: contains a control "
			    "character", what);
		if (c >= 0x80 && ascii_only)
			return err_set(err, false, "%s: contains non-ASCII "
			    "characters", what);
	}
	if (n > max)
		return err_set(err, false, "%s: longer than %zu bytes", what,
		    max);
	if (!utf8_valid(s, n))
		return err_set(err, false, "%s: invalid UTF-8", what);
	return 0;
}

/* A mailbox: the display name and the address; addr_r gets the
 * normalised address. */
static int
check_addr(const char *what, const struct compose_addr *a, char *addr_r,
    size_t size, struct err *err)
{
	char w[64];

	snprintf(w, sizeof w, "%s name", what);
	if (a->name != NULL && check_text(w, a->name, LIMIT_NAME, false, false,
	    err) < 0)
		return -1;
	snprintf(w, sizeof w, "%s address", what);
	if (check_text(w, a->addr, LIMIT_EMAIL, true, false, err) < 0)
		return -1;
	if (email_normalize_check(a->addr, addr_r, size, err) < 0) {
		err_prefix(err, "%s", w);
		return -1;
	}
	return 0;
}

/* "<left@right>": printable ASCII, no space, < or > inside. */
static int
check_msgid(const char *what, const char *s, struct err *err)
{
	size_t n;

	if (check_text(what, s, LIMIT_MAIL_MSGID, true, false, err) < 0)
		return -1;
	n = strlen(s);
	if (n < 5 || s[0] != '<' || s[n - 1] != '>')
		return err_set(err, false, "%s: not of the form <id@domain>",
		    what);
	for (size_t i = 1; i + 1 < n; i++)
		if (s[i] == ' ' || s[i] == '<' || s[i] == '>')
			return err_set(err, false, "%s: space or angle bracket "
			    "inside the id", what);
	if (memchr(s + 1, '@', n - 2) == NULL)
		return err_set(err, false, "%s: no @ in the id", what);
	return 0;
}

static bool
is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* RFC 2045 token: 1..max printable ASCII, no space or tspecials. */
static size_t
token_len(const char *s, size_t max)
{
	size_t n = 0;

	while (s[n] > ' ' && (unsigned char)s[n] < 0x7f &&
	    !is_tspecial((unsigned char)s[n]))
		n++;
	return n <= max ? n : 0;
}

/* One attachment's content type, parsed into its normalised form:
 * "type/subtype" and "key=value" parameters (lower-case type and keys).
 * has_charset_r: a charset parameter was given. */
struct ctype {
	char type[LIMIT_MAIL_CONTENT_TYPE + 1];
	char params[LIMIT_MAIL_CT_PARAMS][LIMIT_MAIL_CONTENT_TYPE + 1];
	size_t n_params;
	bool text;
	bool has_charset;
};

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int
parse_ctype(const char *what, const char *s, struct ctype *ct,
    struct err *err)
{
	size_t n, m;
	const char *p = s;

	if (check_text(what, s, LIMIT_MAIL_CONTENT_TYPE, true, false, err) < 0)
		return -1;
	memset(ct, 0, sizeof *ct);
	n = token_len(p, LIMIT_MAIL_CT_TOKEN);
	if (n == 0 || p[n] != '/' ||
	    (m = token_len(p + n + 1, LIMIT_MAIL_CT_TOKEN)) == 0)
		return err_set(err, false, "%s: not of the form type/subtype",
		    what);
	memcpy(ct->type, p, n + 1 + m);
	ct->type[n + 1 + m] = '\0';
	lower(ct->type);
	if (prefix_ci(ct->type, "multipart/") ||
	    prefix_ci(ct->type, "message/"))
		return err_set(err, false, "%s: %s cannot be an attachment",
		    what, ct->type);
	ct->text = strncmp(ct->type, "text/", 5) == 0;
	p += n + 1 + m;
	for (;;) {
		char *param;
		size_t k, v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p != ';')
			return err_set(err, false, "%s: expected ; before a "
			    "parameter", what);
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;                         /* a trailing ; */
		k = token_len(p, LIMIT_MAIL_CT_TOKEN);
		if (k == 0 || p[k] != '=')
			return err_set(err, false, "%s: bad parameter", what);
		if (p[k + 1] == '"') {
			v = 1;
			while (p[k + 1 + v] != '\0' && p[k + 1 + v] != '"' &&
			    p[k + 1 + v] != '\\')
				v++;
			if (p[k + 1 + v] != '"')
				return err_set(err, false, "%s: bad quoted "
				    "parameter value", what);
			v++;
		} else if ((v = token_len(p + k + 1, LIMIT_MAIL_CT_VALUE)) == 0) {
			return err_set(err, false, "%s: bad parameter value",
			    what);
		}
		if (ct->n_params == sizeof ct->params / sizeof ct->params[0])
			return err_set(err, false, "%s: too many parameters",
			    what);
		param = ct->params[ct->n_params++];
		memcpy(param, p, k + 1 + v);
		param[k + 1 + v] = '\0';
		param[k] = '\0';
		lower(param);
		if (strcmp(param, "name") == 0 || strcmp(param, "filename") == 0
		    || strcmp(param, "boundary") == 0)
			return err_set(err, false, "%s: parameter %s is set "
			    "from the attachment itself", what, param);
		if (strcmp(param, "charset") == 0)
			ct->has_charset = true;
		param[k] = '=';
		p += k + 1 + v;
	}
	return 0;
}

static int
check_filename(const char *what, const char *s, struct err *err)
{
	if (check_text(what, s, LIMIT_MAIL_FILENAME, false, false, err) < 0)
		return -1;
	if (*s == '\0')
		return err_set(err, false, "%s: empty (use NULL for none)",
		    what);
	if (strpbrk(s, "/\\") != NULL)
		return err_set(err, false, "%s: contains a path separator",
		    what);
	return 0;
}

/* Header names compose_build() writes itself, or that only MTAs write. */
static bool
reserved_header(const char *name)
{
	static const char *const names[] = {
		"Date", "From", "Sender", "To", "Cc", "Bcc", "Reply-To",
		"Subject", "Message-ID", "In-Reply-To", "References",
		"MIME-Version", "Auto-Submitted", "X-Auto-Response-Suppress",
		"List-Unsubscribe", "List-Unsubscribe-Post", "Return-Path",
		"Received", "Delivered-To",
	};

	if (strncasecmp(name, "Content-", 8) == 0 ||
	    strncasecmp(name, "Resent-", 7) == 0)
		return true;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

static int
check_extra(size_t i, const struct compose_header *h, struct err *err)
{
	char what[64];

	snprintf(what, sizeof what, "extra header %zu name", i + 1);
	if (check_text(what, h->name, LIMIT_MAIL_HEADER_NAME, true, false,
	    err) < 0)
		return -1;
	if (h->name[0] == '\0')
		return err_set(err, false, "%s: empty", what);
	for (const char *p = h->name; *p != '\0'; p++)
		if (*p <= ' ' || *p == ':' || *p == 0x7f)
			return err_set(err, false, "%s: not a header name",
			    what);
	if (reserved_header(h->name))
		return err_set(err, false, "%s: %s is written by compose "
		    "itself", what, h->name);
	snprintf(what, sizeof what, "extra header %s value", h->name);
	return check_text(what, h->value, LIMIT_MAIL_HEADER_VALUE, false, true,
	    err);
}

static int
check_url(const char *what, const char *s, struct err *err)
{
	if (check_text(what, s, LIMIT_MAIL_URL, true, false, err) < 0)
		return -1;
	if (!prefix_ci(s, "https://") && !prefix_ci(s, "http://"))
		return err_set(err, false, "%s: not an http(s) URL", what);
	if (strpbrk(s, " <>\"") != NULL)
		return err_set(err, false, "%s: space, quote or angle bracket "
		    "in the URL", what);
	return 0;
}

/* Validated copies of what the writer needs beyond struct compose_mail. */
struct checked {
	char from[LIMIT_EMAIL + 1];
	char to[LIMIT_EMAIL + 1];
	char reply_to[LIMIT_EMAIL + 1];
	struct ctype ct[LIMIT_MAIL_ATTACHMENTS];
};

static int
check_mail(const struct compose_mail *m, struct checked *c, struct err *err)
{
	char what[64];

	if (check_addr("From", &m->from, c->from, sizeof c->from, err) < 0 ||
	    check_addr("To", &m->to, c->to, sizeof c->to, err) < 0)
		return -1;
	if (m->reply_to.addr != NULL || m->reply_to.name != NULL) {
		if (check_addr("Reply-To", &m->reply_to, c->reply_to,
		    sizeof c->reply_to, err) < 0)
			return -1;
	}
	if (check_text("Subject", m->subject, LIMIT_MAIL_SUBJECT, false, true,
	    err) < 0)
		return -1;
	if (check_msgid("Message-ID", m->message_id, err) < 0)
		return -1;
	if (m->in_reply_to != NULL &&
	    check_msgid("In-Reply-To", m->in_reply_to, err) < 0)
		return -1;
	if (m->n_references > LIMIT_MAIL_REFERENCES)
		return err_set(err, false, "References: more than %d ids",
		    LIMIT_MAIL_REFERENCES);
	for (size_t i = 0; i < m->n_references; i++) {
		snprintf(what, sizeof what, "References id %zu", i + 1);
		if (check_msgid(what, m->references != NULL ?
		    m->references[i] : NULL, err) < 0)
			return -1;
	}
	if (m->list_unsubscribe != NULL &&
	    check_url("List-Unsubscribe", m->list_unsubscribe, err) < 0)
		return -1;
	if (m->n_extra > LIMIT_MAIL_EXTRA_HEADERS)
		return err_set(err, false, "more than %d extra headers",
		    LIMIT_MAIL_EXTRA_HEADERS);
	for (size_t i = 0; i < m->n_extra; i++)
		if (check_extra(i, &m->extra[i], err) < 0)
			return -1;
	if (m->text == NULL)
		return err_set(err, false, "text body: missing");
	if (!utf8_valid(m->text, strlen(m->text)))
		return err_set(err, false, "text body: invalid UTF-8");
	if (m->html != NULL && !utf8_valid(m->html, strlen(m->html)))
		return err_set(err, false, "HTML body: invalid UTF-8");
	if (m->n_attachments > LIMIT_MAIL_ATTACHMENTS)
		return err_set(err, false, "more than %d attachments",
		    LIMIT_MAIL_ATTACHMENTS);
	for (size_t i = 0; i < m->n_attachments; i++) {
		const struct compose_attachment *a = &m->attachments[i];

		snprintf(what, sizeof what, "attachment %zu content type", i + 1);
		if (parse_ctype(what, a->content_type, &c->ct[i], err) < 0)
			return -1;
		snprintf(what, sizeof what, "attachment %zu filename", i + 1);
		if (a->filename != NULL && check_filename(what, a->filename,
		    err) < 0)
			return -1;
		if (a->data == NULL && a->len > 0)
			return err_set(err, false, "attachment %zu: no data",
			    i + 1);
		if (a->len > LIMIT_MAIL_SIZE)
			return err_set(err, false, "attachment %zu: larger "
			    "than %d bytes", i + 1, LIMIT_MAIL_SIZE);
	}
	return 0;
}

/* ------------------------------------------------------------ headers */

static void
hdr_begin(struct writer *w, const char *name)
{
	puts_(w, name);
	put(w, ":", 1);
	w->col = strlen(name) + 1;
	w->words = 0;
}

/* One word, after a space, or after CRLF SP when it would pass LINE_SOFT
 * (never before the first word, nor for an empty word: a folded line must
 * hold more than white space). */
static void
hdr_word(struct writer *w, const char *p, size_t n)
{
	if (w->words > 0 && n > 0 && w->col + 1 + n > LINE_SOFT) {
		put(w, "\r\n ", 3);
		w->col = 1;
	} else {
		put(w, " ", 1);
		w->col++;
	}
	put(w, p, n);
	w->col += n;
	w->words++;
}

static void
hdr_words(struct writer *w, const char *s)
{
	hdr_word(w, s, strlen(s));
}

static void
hdr_end(struct writer *w)
{
	put(w, "\r\n", 2);
}

/* s as RFC 2047 encoded words (utf-8, B), whole characters in each. */
static void
hdr_encoded(struct writer *w, const char *s)
{
	size_t n = strlen(s), i = 0;

	while (i < n) {
		char word[16 + 4 * EW_BYTES / 3 + 8];
		size_t take = 0, len;

		while (i + take < n) {
			size_t cl = utf8_char_len((unsigned char)s[i + take]);
			if (take + cl > EW_BYTES)
				break;
			take += cl;
		}
		memcpy(word, "=?utf-8?B?", 10);
		sodium_bin2base64(word + 10, sizeof word - 10,
		    (const unsigned char *)s + i, take,
		    sodium_base64_VARIANT_ORIGINAL);
		len = strlen(word);
		memcpy(word + len, "?=", 3);
		hdr_word(w, word, len + 2);
		i += take;
	}
}

/* Unstructured text (Subject, extra values): as is, folded at spaces,
 * unless it is non-ASCII, could be read as an encoded word, or has a word
 * too long to fold; then encoded. */
static void
hdr_unstructured(struct writer *w, const char *s)
{
	const char *p = s;

	if (!is_ascii(s) || strstr(s, "=?") != NULL)
		goto encode;
	for (;;) {
		size_t n = strcspn(p, " ");
		if (n > WORD_MAX)
			goto encode;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (*s == '\0') {
		hdr_word(w, "", 0);
		return;
	}
	for (p = s;;) {
		size_t n = strcspn(p, " ");
		hdr_word(w, p, n);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return;
encode:
	hdr_encoded(w, s);
}

static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A display name: atoms when it is plain words, else a quoted string,
 * else (non-ASCII, "=?", or too long for one line) encoded words. */
static void
hdr_phrase(struct writer *w, const char *s)
{
	size_t n = strlen(s);
	bool atoms = n > 0 && s[0] != ' ' && s[n - 1] != ' ';
	char q[2 * LIMIT_NAME + 3];
	size_t qn = 0;

	if (!is_ascii(s) || strstr(s, "=?") != NULL) {
		hdr_encoded(w, s);
		return;
	}
	for (size_t i = 0; i < n && atoms; i++)
		if (!(is_atext((unsigned char)s[i]) ||
		    (s[i] == ' ' && s[i + 1] != ' ')))
			atoms = false;
	if (atoms) {
		for (const char *p = s;;) {
			size_t k = strcspn(p, " ");
			hdr_word(w, p, k);
			if (p[k] == '\0')
				return;
			p += k + 1;
		}
	}
	q[qn++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			q[qn++] = '\\';
		q[qn++] = s[i];
	}
	q[qn++] = '"';
	if (qn > LINE_SOFT - 12) {             /* "Reply-To: " and a fold */
		hdr_encoded(w, s);
		return;
	}
	hdr_word(w, q, qn);
}

static void
hdr_mailbox(struct writer *w, const char *field, const char *name,
    const char *addr)
{
	char angle[LIMIT_EMAIL + 3];

	hdr_begin(w, field);
	if (name != NULL && name[0] != '\0') {
		hdr_phrase(w, name);
		snprintf(angle, sizeof angle, "<%s>", addr);
		hdr_words(w, angle);
	} else {
		hdr_words(w, addr);
	}
	hdr_end(w);
}

static void
hdr_date(struct writer *w, time_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	char s[64];

	if (gmtime_r(&t, &tm) == NULL)
		BUG("gmtime_r(%lld) failed", (long long)t);
	snprintf(s, sizeof s, "%s, %d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	hdr_begin(w, "Date");
	hdr_words(w, s);
	hdr_end(w);
}

/* ------------------------------------------------------------ bodies */

static void
boundary_new(char out[BOUNDARY_LEN + 1])
{
	uint8_t r[16];

	randombytes_buf(r, sizeof r);
	out[0] = '=';
	out[1] = '_';
	crypto_hex(r, sizeof r, out + 2);
}

/* Quoted-printable of UTF-8 text. Line breaks (CRLF, LF or a lone CR)
 * become CRLF; white space before a break, '=', controls and 8-bit bytes
 * are encoded, and so are a '.' or the F of "From " starting a line
 * (agents that dot-stuff or mbox-quote badly). Soft breaks never split a
 * character. */
static void
qp_body(struct writer *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i = 0, line = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t cl, enc;
		bool encode;
		char tmp[12];

		if (c == '\r' || c == '\n') {
			i += (c == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
			put(w, "\r\n", 2);
			line = 0;
			continue;
		}
		cl = utf8_char_len(c);
		if (cl > n - i)
			cl = 1;                 /* checked UTF-8: cannot happen */
	again:
		if (c >= 0x80) {
			encode = true;
		} else if (c == ' ' || c == '\t') {
			encode = i + 1 == n || s[i + 1] == '\r' ||
			    s[i + 1] == '\n';
		} else {
			encode = c == '=' || c < 0x20 || c == 0x7f ||
			    (line == 0 && (c == '.' ||
			    (c == 'F' && strncmp(s + i, "From ", 5) == 0)));
		}
		enc = encode ? 3 * cl : 1;
		if (line + enc > QP_MAX - 1) {
			put(w, "=\r\n", 3);
			line = 0;
			goto again;             /* line-start rules may apply */
		}
		if (encode) {
			for (size_t k = 0; k < cl; k++) {
				unsigned char b = (unsigned char)s[i + k];
				tmp[3 * k] = '=';
				tmp[3 * k + 1] = hex[b >> 4];
				tmp[3 * k + 2] = hex[b & 15];
			}
			put(w, tmp, enc);
		} else {
			put(w, s + i, 1);
		}
		line += enc;
		i += cl;
	}
}

static void
b64_body(struct writer *w, const uint8_t *p, size_t n)
{
	char line[4 * B64_IN / 3 + 3];

	for (size_t i = 0; i < n; i += B64_IN) {
		size_t k = n - i < B64_IN ? n - i : B64_IN;

		sodium_bin2base64(line, sizeof line, p + i, k,
		    sodium_base64_VARIANT_ORIGINAL);
		puts_(w, line);
		put(w, "\r\n", 2);
	}
}

static void
text_part(struct writer *w, const char *subtype, const char *body)
{
	puts_(w, "Content-Type: text/");
	puts_(w, subtype);
	puts_(w, "; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	qp_body(w, body);
}

static void
multipart_header(struct writer *w, const char *subtype, const char *bound)
{
	puts_(w, "Content-Type: multipart/");
	puts_(w, subtype);
	puts_(w, ";\r\n boundary=\"");
	puts_(w, bound);
	puts_(w, "\"\r\n\r\n");
}

static void
delimiter(struct writer *w, const char *bound, bool last)
{
	puts_(w, "\r\n--");
	puts_(w, bound);
	puts_(w, last ? "--\r\n" : "\r\n");
}

/* The text, or text and HTML as alternatives: headers and body. */
static void
body_part(struct writer *w, const struct compose_mail *m)
{
	char bound[BOUNDARY_LEN + 1];

	if (m->html == NULL) {
		text_part(w, "plain", m->text);
		return;
	}
	boundary_new(bound);
	multipart_header(w, "alternative", bound);
	puts_(w, "--");
	puts_(w, bound);
	puts_(w, "\r\n");
	text_part(w, "plain", m->text);
	delimiter(w, bound, false);
	text_part(w, "html", m->html);
	delimiter(w, bound, true);
}

static bool
is_attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$&+-.^_`|~", c) != NULL);
}

/* A header of words "a;" "b;" … "z": each parameter may fold. */
static void
hdr_params(struct writer *w, const char *field, char words[][PARAM_WORD_SIZE],
    size_t n)
{
	hdr_begin(w, field);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(words[i]);

		if (i + 1 < n)
			words[i][len++] = ';';
		hdr_word(w, words[i], len);
	}
	hdr_end(w);
}

/* An attachment's part headers. The filename goes in as filename="x" and
 * name="x" when it is short plain ASCII; else as RFC 2231
 * (filename*=utf-8''…, continued as filename*0*=, filename*1*= … when
 * long) plus an ASCII name= fallback (other characters as '_'). */
static void
attachment_headers(struct writer *w, const struct compose_attachment *a,
    const struct ctype *ct)
{
	char words[PARAM_WORDS][PARAM_WORD_SIZE];
	const char *f = a->filename;
	char pct[3 * LIMIT_MAIL_FILENAME + 1];
	size_t n = f != NULL ? strlen(f) : 0, nw = 0, pl = 0;
	bool plain = f != NULL && is_ascii(f) && strchr(f, '"') == NULL &&
	    strstr(f, "=?") == NULL && n <= WORD_MAX - 12;

	/* Content-Type: type/subtype; params; charset; name */
	snprintf(words[nw++], sizeof words[0], "%s", ct->type);
	for (size_t i = 0; i < ct->n_params; i++)
		snprintf(words[nw++], sizeof words[0], "%s", ct->params[i]);
	if (ct->text && !ct->has_charset)
		snprintf(words[nw++], sizeof words[0], "charset=utf-8");
	if (f != NULL) {
		char fb[LIMIT_MAIL_FILENAME + 1];
		size_t fl = 0, dot;

		for (size_t i = 0; i < n;) {
			unsigned char c = (unsigned char)f[i];

			fb[fl++] = c >= 0x80 || c == '"' ? '_' : (char)c;
			i += c >= 0x80 ? utf8_char_len(c) : 1;
		}
		fb[fl] = '\0';
		/* a fallback is a hint: keep it on one short line, cut in the
		 * middle so the extension stays */
		if (fl > FALLBACK_MAX) {
			char *ext = strrchr(fb, '.');
			dot = ext != NULL && strlen(ext) <= 10 ? strlen(ext) : 0;
			memmove(fb + FALLBACK_MAX - dot, fb + fl - dot, dot + 1);
		}
		snprintf(words[nw++], sizeof words[0], "name=\"%s\"", fb);
	}
	hdr_params(w, "Content-Type", words, nw);
	puts_(w, "Content-Transfer-Encoding: base64\r\n");

	/* Content-Disposition: attachment; filename… */
	nw = 0;
	snprintf(words[nw++], sizeof words[0], "attachment");
	if (plain) {
		snprintf(words[nw++], sizeof words[0], "filename=\"%s\"", f);
	} else if (f != NULL) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)f[i];

			if (is_attr_char(c)) {
				pct[pl++] = (char)c;
			} else {
				snprintf(pct + pl, 4, "%%%02X", c);
				pl += 3;
			}
		}
		pct[pl] = '\0';
	}
	if (f != NULL && !plain && pl <= PCT_SEG) {
		snprintf(words[nw++], sizeof words[0], "filename*=utf-8''%s",
		    pct);
	} else if (f != NULL && !plain) {
		for (size_t i = 0, seg = 0; i < pl; seg++) {
			size_t k = pl - i < PCT_SEG ? pl - i : PCT_SEG;

			if (i + k < pl) {       /* never split a %XX triplet */
				if (pct[i + k - 1] == '%')
					k -= 1;
				else if (pct[i + k - 2] == '%')
					k -= 2;
			}
			snprintf(words[nw++], sizeof words[0],
			    "filename*%zu*=%s%.*s", seg, seg == 0 ? "utf-8''" :
			    "", (int)k, pct + i);
			i += k;
		}
	}
	hdr_params(w, "Content-Disposition", words, nw);
	put(w, "\r\n", 2);
}

/* ------------------------------------------------------------ the message */

int
compose_build(const struct compose_mail *m, struct buf *out, struct err *err)
{
	struct checked *c = xcalloc(1, sizeof *c);
	struct writer w = { .b = out, .limit = out->cap < LIMIT_MAIL_SIZE ?
		out->cap : (size_t)LIMIT_MAIL_SIZE };
	int ret = -1;

	buf_reset(out);
	if (check_mail(m, c, err) < 0)
		goto out;

	hdr_date(&w, m->date != 0 ? m->date : time(NULL));
	hdr_mailbox(&w, "From", m->from.name, c->from);
	hdr_mailbox(&w, "To", m->to.name, c->to);
	if (c->reply_to[0] != '\0')
		hdr_mailbox(&w, "Reply-To", m->reply_to.name, c->reply_to);
	hdr_begin(&w, "Subject");
	hdr_unstructured(&w, m->subject);
	hdr_end(&w);
	hdr_begin(&w, "Message-ID");
	hdr_words(&w, m->message_id);
	hdr_end(&w);
	if (m->in_reply_to != NULL) {
		hdr_begin(&w, "In-Reply-To");
		hdr_words(&w, m->in_reply_to);
		hdr_end(&w);
	}
	if (m->n_references > 0) {
		hdr_begin(&w, "References");
		for (size_t i = 0; i < m->n_references; i++)
			hdr_words(&w, m->references[i]);
		hdr_end(&w);
	}
	if (m->auto_replied)
		puts_(&w, "Auto-Submitted: auto-replied\r\n"
		    "X-Auto-Response-Suppress: All\r\n");
	else if (m->auto_submitted)
		puts_(&w, "Auto-Submitted: auto-generated\r\n"
		    "X-Auto-Response-Suppress: All\r\n");
	if (m->list_unsubscribe != NULL) {
		hdr_begin(&w, "List-Unsubscribe");
		put(&w, " <", 2);
		puts_(&w, m->list_unsubscribe);
		put(&w, ">\r\n", 3);
		puts_(&w, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
	}
	for (size_t i = 0; i < m->n_extra; i++) {
		hdr_begin(&w, m->extra[i].name);
		hdr_unstructured(&w, m->extra[i].value);
		hdr_end(&w);
	}
	puts_(&w, "MIME-Version: 1.0\r\n");

	if (m->n_attachments == 0) {
		body_part(&w, m);
		/* A lone text part not ending in a line break: end the message
		 * with a QP soft break, so it ends in CRLF (as SMTP wants) and
		 * the text decodes exactly. */
		if (m->html == NULL && !w.over &&
		    (out->len == 0 || out->data[out->len - 1] != '\n'))
			puts_(&w, "=\r\n");
	} else {
		char bound[BOUNDARY_LEN + 1];

		boundary_new(bound);
		multipart_header(&w, "mixed", bound);
		puts_(&w, "--");
		puts_(&w, bound);
		puts_(&w, "\r\n");
		body_part(&w, m);
		for (size_t i = 0; i < m->n_attachments; i++) {
			const struct compose_attachment *a = &m->attachments[i];

			delimiter(&w, bound, false);
			attachment_headers(&w, a, &c->ct[i]);
			b64_body(&w, a->data, a->len);
		}
		delimiter(&w, bound, true);
	}
	if (w.over) {
		err_set(err, false, "message larger than %zu bytes", w.limit);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		buf_reset(out);
	free(c);
	return ret;
}

int
compose_message_id_new(const char *domain, char *out, size_t size,
    struct err *err)
{
	char dom[EMAIL_DOMAIN_MAX + 1], hex[33];
	uint8_t r[16];
	int n;

	if (size > 0)
		out[0] = '\0';
	if (check_text("Message-ID domain", domain, EMAIL_DOMAIN_MAX, true,
	    false, err) < 0)
		return -1;
	if (email_domain_normalize_check(domain, dom, sizeof dom, err) < 0) {
		err_prefix(err, "Message-ID domain");
		return -1;
	}
	randombytes_buf(r, sizeof r);
	crypto_hex(r, sizeof r, hex);
	n = snprintf(out, size, "<%s@%s>", hex, dom);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			out[0] = '\0';
		return err_set(err, false, "Message-ID: buffer of %zu bytes "
		    "too small", size);
	}
	return 0;
}
