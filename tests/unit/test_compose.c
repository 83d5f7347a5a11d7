/* tests/unit/test_compose.c: compose_build() and compose_message_id_new().
 *
 * Every built message is scanned byte by byte (CRLF only, no line over 998,
 * header lines within 78) and parsed back with libetpan, an independent
 * parser: the MIME structure, content types, decoded bodies, RFC 2047
 * names and subjects (mailmime_encoded_phrase_parse) and RFC 2231
 * filenames (a small decoder here: libetpan 1.9.4 has none) must equal
 * what went in. Refused input (header injection above all) must leave
 * nothing built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libetpan/libetpan.h>
#include <sodium.h>
#include <strings.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/limits.h"
#include "mailer/compose.h"

#define DATE 1790000000                 /* Mon, 21 Sep 2026 14:13:20 +0000 */
#define MSGID "<0f1e2d3c4b5a69788796a5b4c3d2e1f0@practice.test>"

/* ------------------------------------------------------------ fixtures */

static uint8_t pdf[6000];               /* binary, with NULs, CRLFs, "--=_" */
static const char ics[] =
	"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n"
	"BEGIN:VEVENT\r\nSUMMARY:Termin bei Dr. M\xc3\xbcller\r\n"
	"END:VEVENT\r\nEND:VCALENDAR\r\n";
static char long_word[121];             /* one 120-byte word */
static char long_ascii_subject[400];    /* words, folds */
static char long_name_utf8[201];        /* 100 x "Ö": LIMIT_NAME bytes */
static char too_long_name[LIMIT_NAME + 2];
static char too_long_subject[LIMIT_MAIL_SUBJECT + 2];
static char long_filename[LIMIT_MAIL_FILENAME + 1];
static char tricky_text[4096];
static char aligned_name[3][128];       /* 1-3 ASCII bytes, then 40 x é */

static void
setup_fixtures(void)
{
	uint32_t x = 12345;
	size_t n = 0;

	for (size_t i = 0; i < sizeof pdf; i++) {
		x = x * 1103515245u + 12345u;
		pdf[i] = (uint8_t)(x >> 16);
	}
	memcpy(pdf, "%PDF-1.4\r\n\0\r\n--=_fake\r\n", 24);
	memset(long_word, 'w', 120);
	for (int i = 0; n + 8 < sizeof long_ascii_subject; i++)
		n += (size_t)snprintf(long_ascii_subject + n,
		    sizeof long_ascii_subject - n, "word%d ", i);
	long_ascii_subject[n - 1] = '\0';
	for (int i = 0; i < 100; i++)
		memcpy(long_name_utf8 + 2 * i, "\xc3\x96", 2);
	memset(too_long_name, 'a', LIMIT_NAME + 1);
	memset(too_long_subject, 's', LIMIT_MAIL_SUBJECT + 1);
	/* 252 bytes: 84 x a 3-byte character, spaces, and an extension */
	n = 0;
	while (n + 3 + 4 <= LIMIT_MAIL_FILENAME - 4) {
		memcpy(long_filename + n, n % 30 == 0 ? " ; " : "\xe2\x82\xac", 3);
		n += 3;
	}
	memcpy(long_filename + n, ".pdf", 5);
	for (int k = 0; k < 3; k++) {
		memset(aligned_name[k], 'a', (size_t)k + 1);
		for (int i = 0; i < 40; i++)
			memcpy(aligned_name[k] + k + 1 + 2 * i, "\xc3\xa9", 2);
		memcpy(aligned_name[k] + k + 1 + 80, ".txt", 5);
	}
	n = 0;
	n += (size_t)snprintf(tricky_text, sizeof tricky_text,
	    "\xe2\x80\x94\xe2\x80\x94 Reply above this line \xe2\x80\x94\xe2\x80\x94\n"
	    ".\n"
	    ".leading dot\n"
	    "From the start of a line\n"
	    "--=_0123456789abcdef0123456789abcdef\n"
	    "--=_0123456789abcdef0123456789abcdef--\n"
	    "a = b =3D c =\n"
	    "trailing spaces   \n"
	    "trailing tab\t\n"
	    "crlf line\r\n"
	    "lone cr\rnext\n"
	    "\x01\x1b control bytes\n"
	    "emoji \xf0\x9f\x98\x80 and \xc3\xa9\n");
	for (int i = 0; i < 2000 && n + 2 < sizeof tricky_text; i++)
		tricky_text[n++] = i % 97 == 96 ? ' ' : 'x';
	memcpy(tricky_text + n, "\nend", 5);
}

/* ------------------------------------------------------------ scanning */

/* CRLF only, every line <= 998, and (when soft) every header line of the
 * message and of each part <= 78. Lines of a base64 or QP body <= 76. */
static void
scan(const char *what, const struct buf *b, bool soft)
{
	const char *s = b->data;
	size_t n = b->len, start = 0, lineno = 0;
	bool in_header = true;

	assert_int_equal(strlen(s), n);            /* no NUL inside */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			fail_msg("%s: bare CR at %zu", what, i);
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			fail_msg("%s: bare LF at %zu", what, i);
		if (s[i] != '\n' && i + 1 != n)
			continue;
		size_t len = i + 1 - start - (s[i] == '\n' ? 2 : 0);
		lineno++;
		if (len > 998)
			fail_msg("%s: line %zu is %zu octets", what, lineno, len);
		if (in_header && soft && len > 78)
			fail_msg("%s: header line %zu is %zu octets: %.*s", what,
			    lineno, len, (int)len, s + start);
		if (!in_header && len > 76 && strncmp(s + start, "--=_", 4) != 0)
			fail_msg("%s: body line %zu is %zu octets", what,
			    lineno, len);
		/* a soft break never splits a UTF-8 character */
		if (!in_header && len >= 3 && s[start] == '=' &&
		    strchr("89AB", s[start + 1]) != NULL && lineno > 1 &&
		    s[start - 3] == '=')
			fail_msg("%s: line %zu starts inside a character", what,
			    lineno);
		if (len == 0)
			in_header = false;
		else if (strncmp(s + start, "--=_", 4) == 0)
			in_header = true;          /* a part's headers follow */
		start = i + 1;
	}
	assert_int_equal(s[n - 2], '\r');
	assert_int_equal(s[n - 1], '\n');
}

/* ------------------------------------------------------------ parsing back */

struct leaf {
	char type[96];
	char charset[32];
	char filename[LIMIT_MAIL_FILENAME + 1];
	char *body;                      /* decoded; free() */
	size_t len;
};

struct parsed {
	char structure[512];
	struct leaf leaves[LIMIT_MAIL_ATTACHMENTS + 2];
	size_t n;
};

static void
append(char *dst, size_t size, const char *s)
{
	size_t n = strlen(dst), k = strlen(s);

	assert_true(n + k < size);
	memcpy(dst + n, s, k + 1);
}

static void
type_of(struct mailmime_content *ct, char *out, size_t size)
{
	MMAPString *s = mmap_string_new("");
	int col = 0;

	assert_int_equal(mailmime_content_type_write_mem(s, &col, ct), 0);
	snprintf(out, size, "%.*s", (int)strcspn(s->str, ";"), s->str);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	mmap_string_free(s);
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The filename of a part: filename="…", or RFC 2231 filename*= /
 * filename*N*= segments (utf-8''%XX…) put together and decoded. */
static void
filename_of(struct mailmime_fields *fields, char *out, size_t size)
{
	char segs[32][300] = { { 0 } };
	size_t nseg = 0, o = 0;

	out[0] = '\0';
	if (fields == NULL)
		return;
	for (clistiter *it = clist_begin(fields->fld_list); it;
	    it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		if (f->fld_type != MAILMIME_FIELD_DISPOSITION)
			continue;
		for (clistiter *jt = clist_begin(f->fld_data.fld_disposition->
		    dsp_parms); jt; jt = clist_next(jt)) {
			struct mailmime_disposition_parm *pa = clist_content(jt);
			if (pa->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME) {
				snprintf(out, size, "%s", pa->pa_data.pa_filename);
				return;
			}
			if (pa->pa_type != MAILMIME_DISPOSITION_PARM_PARAMETER)
				continue;
			const char *name = pa->pa_data.pa_parameter->pa_name;
			const char *val = pa->pa_data.pa_parameter->pa_value;
			size_t k = 0;
			if (strcasecmp(name, "filename*") == 0) {
				k = 0;
			} else if (strncasecmp(name, "filename*", 9) == 0) {
				k = strtoul(name + 9, NULL, 10);
				assert_true(k < 32);
				assert_string_equal(name + strlen(name) - 1, "*");
			} else {
				continue;
			}
			snprintf(segs[k], sizeof segs[k], "%s", val);
			if (k + 1 > nseg)
				nseg = k + 1;
		}
	}
	if (nseg == 0)
		return;
	assert_true(strncasecmp(segs[0], "utf-8''", 7) == 0);
	/* each segment decodes on its own (RFC 2231 3): a %XX split over
	 * two segments is an error */
	for (size_t k = 0; k < nseg; k++) {
		const char *p = k == 0 ? segs[0] + 7 : segs[k];

		assert_true(segs[k][0] != '\0');
		for (; *p && o + 1 < size; p++) {
			if (*p == '%') {
				int hi = hexval(p[1]), lo = p[1] ? hexval(p[2]) : -1;
				if (hi < 0 || lo < 0)
					fail_msg("segment %zu [%s]: cut %%XX", k,
					    segs[k]);
				out[o++] = (char)(hi * 16 + lo);
				p += 2;
			} else {
				out[o++] = *p;
			}
		}
	}
	out[o] = '\0';
}

static void
walk(struct mailmime *m, struct parsed *p)
{
	char t[96];

	if (m->mm_type == MAILMIME_MESSAGE) {
		walk(m->mm_data.mm_message.mm_msg_mime, p);
		return;
	}
	type_of(m->mm_content_type, t, sizeof t);
	append(p->structure, sizeof p->structure, t);
	if (m->mm_type == MAILMIME_MULTIPLE) {
		bool first = true;
		append(p->structure, sizeof p->structure, "[");
		for (clistiter *it = clist_begin(m->mm_data.mm_multipart.mm_mp_list);
		    it; it = clist_next(it)) {
			if (!first)
				append(p->structure, sizeof p->structure, ",");
			first = false;
			walk(clist_content(it), p);
		}
		append(p->structure, sizeof p->structure, "]");
		return;
	}
	assert_true(p->n < sizeof p->leaves / sizeof p->leaves[0]);
	struct leaf *l = &p->leaves[p->n++];
	struct mailmime_data *d = m->mm_data.mm_single;
	char *cs = mailmime_content_param_get(m->mm_content_type, "charset");
	char *dec = NULL;
	size_t idx = 0, declen = 0;

	snprintf(l->type, sizeof l->type, "%s", t);
	snprintf(l->charset, sizeof l->charset, "%s", cs ? cs : "");
	filename_of(m->mm_mime_fields, l->filename, sizeof l->filename);
	assert_non_null(d);
	assert_int_equal(d->dt_type, MAILMIME_DATA_TEXT);
	assert_true(d->dt_encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE ||
	    d->dt_encoding == MAILMIME_MECHANISM_BASE64);
	assert_int_equal(mailmime_part_parse(d->dt_data.dt_text.dt_data,
	    d->dt_data.dt_text.dt_length, &idx, d->dt_encoding, &dec, &declen),
	    MAILIMF_NO_ERROR);
	l->body = malloc(declen + 1);
	memcpy(l->body, dec, declen);
	l->body[declen] = '\0';
	l->len = declen;
	mmap_string_unref(dec);
}

static void
parsed_fini(struct parsed *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->leaves[i].body);
}

/* A raw header value unfolded (CRLF before white space dropped), then
 * RFC 2047-decoded to UTF-8 by libetpan. */
static void
decode_words(const char *raw, char *out, size_t size)
{
	char unf[4096];
	size_t n = 0, idx = 0;
	char *dec = NULL;

	for (const char *p = raw; *p && n + 1 < sizeof unf; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
			p++;
			continue;
		}
		unf[n++] = *p;
	}
	unf[n] = '\0';
	assert_int_equal(mailmime_encoded_phrase_parse("us-ascii", unf, n,
	    &idx, "utf-8", &dec), MAILIMF_NO_ERROR);
	snprintf(out, size, "%s", dec);
	free(dec);
}

/* Runs of white space as one space, none at the ends: libetpan's phrase
 * decoder normalises white space, so compare like this with it. */
static void
squash(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (const char *p = in; *p && o + 1 < size; p++) {
		if (*p == ' ' || *p == '\t') {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		out[o++] = *p;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* Our own exact decoder for unstructured values (RFC 5322 unfolding, RFC
 * 2047 B words in utf-8, white space between adjacent words dropped),
 * because libetpan's phrase decoder squashes white space. */
static void
decode_exact(const char *raw, char *out, size_t size)
{
	char unf[4096], ws[256];
	size_t n = 0, o = 0, nws = 0;
	bool after_word = false;

	for (const char *p = raw; *p && n + 1 < sizeof unf; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
			p++;
			continue;
		}
		unf[n++] = *p;
	}
	unf[n] = '\0';
	for (size_t i = 0; i < n;) {
		const char *end;

		if (unf[i] == ' ' || unf[i] == '\t') {
			assert_true(nws + 1 < sizeof ws);
			ws[nws++] = unf[i++];
			continue;
		}
		if (strncasecmp(unf + i, "=?utf-8?B?", 10) == 0 &&
		    (end = strstr(unf + i + 10, "?=")) != NULL) {
			unsigned char bin[256];
			size_t binlen = 0;

			if (!after_word) {
				memcpy(out + o, ws, nws);
				o += nws;
			}
			nws = 0;
			assert_int_equal(sodium_base642bin(bin, sizeof bin,
			    unf + i + 10, (size_t)(end - unf - i - 10), NULL,
			    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
			assert_true(o + binlen < size);
			memcpy(out + o, bin, binlen);
			o += binlen;
			i = (size_t)(end - unf) + 2;
			after_word = true;
			continue;
		}
		assert_true(o + nws + 1 < size);
		memcpy(out + o, ws, nws);
		o += nws;
		nws = 0;
		out[o++] = unf[i++];
		after_word = false;
	}
	memcpy(out + o, ws, nws);
	o += nws;
	out[o] = '\0';
}

/* Finds a field of the top-level header; NULL when absent. */
static struct mailimf_field *
field(struct mailmime *top, int type, const char *opt_name)
{
	struct mailimf_fields *fs = top->mm_data.mm_message.mm_fields;

	for (clistiter *it = clist_begin(fs->fld_list); it; it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);
		if (f->fld_type != type)
			continue;
		if (opt_name == NULL || strcasecmp(f->fld_data.fld_optional_field->
		    fld_name, opt_name) == 0)
			return f;
	}
	return NULL;
}

static const char *
optional(struct mailmime *top, const char *name)
{
	struct mailimf_field *f = field(top, MAILIMF_FIELD_OPTIONAL_FIELD, name);
	return f ? f->fld_data.fld_optional_field->fld_value : NULL;
}

/* A field libetpan keeps as "optional" (not parsed) equals want. */
static void
expect_optional(struct mailmime *top, const char *name, const char *want)
{
	const char *got = optional(top, name);

	if (got == NULL)
		fail_msg("no %s header", name);
	if (strcmp(got, want) != 0)
		fail_msg("%s: [%s], want [%s]", name, got, want);
}

static void
check_mailbox(const char *what, struct mailimf_mailbox *mb, const char *name,
    const char *addr)
{
	char got[1024], want[1024];

	assert_non_null(mb);
	if (strcasecmp(mb->mb_addr_spec, addr) != 0)
		fail_msg("%s: address %s, want %s", what, mb->mb_addr_spec, addr);
	if (name == NULL || name[0] == '\0') {
		assert_null(mb->mb_display_name);
		return;
	}
	assert_non_null(mb->mb_display_name);
	decode_words(mb->mb_display_name, got, sizeof got);
	squash(got, got, sizeof got);
	squash(name, want, sizeof want);
	if (strcmp(got, want) != 0)
		fail_msg("%s: name [%s] decoded as [%s] (raw [%s])", what, name,
		    got, mb->mb_display_name);
}

/* LF and lone CR as CRLF: what a text body becomes on the wire. */
static char *
crlf(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(2 * n + 1), *q = o;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n')
			continue;
		if (s[i] == '\r' || s[i] == '\n') {
			*q++ = '\r';
			*q++ = '\n';
		} else {
			*q++ = s[i];
		}
	}
	*q = '\0';
	return o;
}

/* ------------------------------------------------------------ good mails */

static const struct compose_attachment att_pdf_ics[] = {
	{ "Befund M\xc3\xa4rz 2026.pdf", "application/pdf", pdf, sizeof pdf },
	{ "invite.ics", "text/calendar; method=REQUEST", (const uint8_t *)ics,
	  sizeof ics - 1 },
};
static const struct compose_attachment att_names[] = {
	{ "monthly report.pdf", "Application/PDF", pdf, 10 },
	{ "R\xc3\xa9sum\xc3\xa9.pdf", "application/pdf", pdf, 100 },
	{ long_filename, "application/octet-stream", pdf, 1 },
	{ "quote \"x\" ; semi=colon.txt", "text/plain; charset=us-ascii",
	  (const uint8_t *)"plain\r\n", 7 },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bin",
	  "application/octet-stream", pdf, 0 },
	{ "=?utf-8?B?ZXZpbA==?=.pdf", "application/pdf", pdf, 3 },
	{ NULL, "application/octet-stream", pdf, 57 },
	{ "\xf0\x9f\x98\x80", "image/png", pdf, 58 },
	{ aligned_name[0], "application/octet-stream", pdf, 2 },
	{ aligned_name[1], "application/octet-stream", pdf, 2 },
	{ aligned_name[2], "application/octet-stream", pdf, 2 },
};

struct gcase {
	const char *what;
	const char *from_name, *to_name, *subject;
	const char *text, *html;
	const struct compose_attachment *att;
	size_t natt;
	bool extras;                 /* reply-to, references, bulk, extra */
	bool soft;                   /* all header lines <= 78 */
	const char *structure;
};

static const struct gcase gcases[] = {
	{ "plain ascii", "Practice", "Ann Lee", "Hello", "Hi Ann.\n", NULL,
	  NULL, 0, false, true, "text/plain" },
	{ "no names, empty subject and text", NULL, "", "", "", NULL, NULL, 0,
	  false, true, "text/plain" },
	{ "non-ASCII names, subject, html", "Praxis Dr. M\xc3\xbcller",
	  "Zo\xc3\xab O'Brien", "Neue Nachricht \xe2\x80\x94 bitte lesen "
	  "\xf0\x9f\x98\x80", "Hallo Zo\xc3\xab\n", "<p>Hallo Zo\xc3\xab</p>\n",
	  NULL, 0, true, true, "multipart/alternative[text/plain,text/html]" },
	{ "long ascii subject folds", "Practice", "Ann", long_ascii_subject,
	  "x", NULL, NULL, 0, false, true, "text/plain" },
	{ "unbreakable word in subject", "Practice", "Ann", long_word, "x",
	  NULL, NULL, 0, false, true, "text/plain" },
	{ "spaces and tabs in subject", "Practice", "Ann", " a  b\tc  ", "x",
	  NULL, NULL, 0, false, true, "text/plain" },
	{ "subject that looks encoded", "=?utf-8?B?ZXZpbA==?=", "Ann",
	  "=?utf-8?B?ZXZpbA==?= literal", "x", NULL, NULL, 0, false, true,
	  "text/plain" },
	{ "specials in names", "Smith, John \"JJ\" \\ Jr. (MD)",
	  "a.b@c <d>", "x", "x", NULL, NULL, 0, true, true, "text/plain" },
	{ "double spaces in a name", "Ann  Lee ", " Bo", "x", "x", NULL, NULL,
	  0, false, true, "text/plain" },
	{ "long non-ASCII name", long_name_utf8, long_name_utf8, long_name_utf8,
	  "x", NULL, NULL, 0, false, true, "text/plain" },
	{ "tricky bodies", "P", "A", "x", tricky_text, tricky_text, NULL, 0,
	  false, true, "multipart/alternative[text/plain,text/html]" },
	{ "text, html, pdf, calendar", "Praxis M\xc3\xbcller",
	  "Zo\xc3\xab", "Ihr Termin", "see attached\n", "<p>see</p>",
	  att_pdf_ics, 2, true, true,
	  "multipart/mixed[multipart/alternative[text/plain,text/html],"
	  "application/pdf,text/calendar]" },
	{ "filenames", "P", "A", "files", "x", NULL, att_names,
	  sizeof att_names / sizeof att_names[0], false, true,
	  "multipart/mixed[text/plain,application/pdf,application/pdf,"
	  "application/octet-stream,text/plain,application/octet-stream,"
	  "application/pdf,application/octet-stream,image/png,"
	  "application/octet-stream,application/octet-stream,"
	  "application/octet-stream]" },
};

static const char *const refs[] = { "<a1@x.test>",
	"<CAF=abc+xyz/q@mail.gmail.com>", "<3@practice.test>" };
static const struct compose_header extra[] = {
	{ "X-Postern-Kind", "notify" },
	{ "X-Postern-Note", "caf\xc3\xa9 \xe2\x82\xac" },
};

static void
fill_mail(struct compose_mail *m, const struct gcase *c)
{
	memset(m, 0, sizeof *m);
	m->from = (struct compose_addr){ c->from_name, "noreply@Practice.TEST" };
	m->to = (struct compose_addr){ c->to_name, "patient1@patients.test" };
	m->subject = c->subject;
	m->date = DATE;
	m->message_id = MSGID;
	m->auto_submitted = true;
	m->text = c->text;
	m->html = c->html;
	m->attachments = c->att;
	m->n_attachments = c->natt;
	if (c->extras) {
		m->reply_to = (struct compose_addr){ c->from_name,
			"reply+abcdefghijklmnopqrstuvwxyz234567abcdef@practice.test" };
		m->in_reply_to = refs[2];
		m->references = refs;
		m->n_references = 3;
		m->list_unsubscribe = "https://portal.practice.test/u?t=abc&x=1";
		m->extra = extra;
		m->n_extra = 2;
		m->auto_replied = true;      /* a reply's shape */
	}
}

static void
test_good_mails(void **state)
{
	(void)state;
	setup_fixtures();
	for (size_t i = 0; i < sizeof gcases / sizeof gcases[0]; i++) {
		const struct gcase *c = &gcases[i];
		struct compose_mail m;
		struct buf b;
		struct err err = { 0 };
		struct mailmime *top = NULL;
		struct parsed p = { .n = 0 };
		struct mailimf_field *f;
		size_t idx = 0, leaf = 0;
		char got[2048], what[128];

		snprintf(what, sizeof what, "case %zu (%s)", i, c->what);
		fill_mail(&m, c);
		buf_init(&b, LIMIT_MAIL_SIZE);
		if (compose_build(&m, &b, &err) < 0)
			fail_msg("%s: %s", what, err.msg);
		scan(what, &b, c->soft);
		assert_int_equal(mailmime_parse(b.data, b.len, &idx, &top),
		    MAILIMF_NO_ERROR);
		walk(top, &p);
		if (strcmp(p.structure, c->structure) != 0)
			fail_msg("%s: structure %s, want %s", what, p.structure,
			    c->structure);

		/* headers */
		f = field(top, MAILIMF_FIELD_SUBJECT, NULL);
		assert_non_null(f);
		decode_exact(f->fld_data.fld_subject->sbj_value, got, sizeof got);
		/* parsers drop white space after the colon (the raw bytes
		 * keep it: "Subject:  a" for " a") */
		if (strcmp(got + strspn(got, " "),
		    c->subject + strspn(c->subject, " ")) != 0)
			fail_msg("%s: subject [%s] decoded as [%s]", what,
			    c->subject, got);
		{
			char a[2048], w2[2048];

			decode_words(f->fld_data.fld_subject->sbj_value, got,
			    sizeof got);
			squash(got, a, sizeof a);
			squash(c->subject, w2, sizeof w2);
			if (strcmp(a, w2) != 0)
				fail_msg("%s: libetpan decodes the subject as "
				    "[%s], want [%s]", what, a, w2);
		}
		f = field(top, MAILIMF_FIELD_FROM, NULL);
		assert_non_null(f);
		check_mailbox(what, clist_content(clist_begin(
		    f->fld_data.fld_from->frm_mb_list->mb_list)), c->from_name,
		    "noreply@practice.test");
		f = field(top, MAILIMF_FIELD_TO, NULL);
		assert_non_null(f);
		check_mailbox(what, ((struct mailimf_address *)clist_content(
		    clist_begin(f->fld_data.fld_to->to_addr_list->ad_list)))->
		    ad_data.ad_mailbox, c->to_name, "patient1@patients.test");
		f = field(top, MAILIMF_FIELD_MESSAGE_ID, NULL);
		assert_non_null(f);
		assert_string_equal(f->fld_data.fld_message_id->mid_value,
		    "0f1e2d3c4b5a69788796a5b4c3d2e1f0@practice.test");
		f = field(top, MAILIMF_FIELD_ORIG_DATE, NULL);
		assert_non_null(f);
		{
			struct mailimf_date_time *d =
			    f->fld_data.fld_orig_date->dt_date_time;
			assert_int_equal(d->dt_year, 2026);
			assert_int_equal(d->dt_month, 9);
			assert_int_equal(d->dt_day, 21);
			assert_int_equal(d->dt_hour, 14);
			assert_int_equal(d->dt_min, 13);
			assert_int_equal(d->dt_sec, 20);
			assert_int_equal(d->dt_zone, 0);
		}
		expect_optional(top, "Auto-Submitted",
		    c->extras ? "auto-replied" : "auto-generated");
		expect_optional(top, "X-Auto-Response-Suppress", "All");
		assert_non_null(strstr(b.data, "\r\nMIME-Version: 1.0\r\n"));
		if (c->extras) {
			struct mailimf_address *a;
			clistiter *it;

			f = field(top, MAILIMF_FIELD_REPLY_TO, NULL);
			assert_non_null(f);
			a = clist_content(clist_begin(f->fld_data.fld_reply_to->
			    rt_addr_list->ad_list));
			check_mailbox(what, a->ad_data.ad_mailbox, c->from_name,
			    "reply+abcdefghijklmnopqrstuvwxyz234567abcdef@"
			    "practice.test");
			f = field(top, MAILIMF_FIELD_REFERENCES, NULL);
			assert_non_null(f);
			it = clist_begin(f->fld_data.fld_references->mid_list);
			for (size_t k = 0; k < 3; k++, it = clist_next(it)) {
				char want[64];
				assert_non_null(it);
				snprintf(want, sizeof want, "%.*s",
				    (int)strlen(refs[k]) - 2, refs[k] + 1);
				assert_string_equal(clist_content(it), want);
			}
			assert_null(it);
			f = field(top, MAILIMF_FIELD_IN_REPLY_TO, NULL);
			assert_non_null(f);
			assert_string_equal(clist_content(clist_begin(
			    f->fld_data.fld_in_reply_to->mid_list)),
			    "3@practice.test");
			expect_optional(top, "List-Unsubscribe", "<https://portal.practice.test/u?t=abc&x=1>");
			expect_optional(top, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
			expect_optional(top, "X-Postern-Kind", "notify");
			decode_exact(optional(top, "X-Postern-Note"), got,
			    sizeof got);
			assert_string_equal(got, extra[1].value);
		} else {
			assert_null(field(top, MAILIMF_FIELD_REPLY_TO, NULL));
			assert_null(optional(top, "List-Unsubscribe"));
		}

		/* bodies */
		{
			char *want = crlf(c->text);
			assert_string_equal(p.leaves[leaf].type, "text/plain");
			assert_string_equal(p.leaves[leaf].charset, "utf-8");
			if (p.leaves[leaf].len != strlen(want) ||
			    memcmp(p.leaves[leaf].body, want, strlen(want)) != 0)
				fail_msg("%s: text body differs:\n[%s]\n[%s]",
				    what, p.leaves[leaf].body, want);
			free(want);
			leaf++;
		}
		if (c->html != NULL) {
			char *want = crlf(c->html);
			assert_string_equal(p.leaves[leaf].type, "text/html");
			assert_int_equal(p.leaves[leaf].len, strlen(want));
			assert_memory_equal(p.leaves[leaf].body, want,
			    strlen(want));
			free(want);
			leaf++;
		}
		for (size_t k = 0; k < c->natt; k++, leaf++) {
			const struct compose_attachment *a = &c->att[k];
			struct leaf *l = &p.leaves[leaf];

			if (l->len != a->len || memcmp(l->body, a->data, a->len))
				fail_msg("%s: attachment %zu differs (%zu vs "
				    "%zu bytes)", what, k, l->len, a->len);
			if (a->filename == NULL)
				assert_string_equal(l->filename, "");
			else if (strcmp(l->filename, a->filename) != 0)
				fail_msg("%s: attachment %zu filename [%s], "
				    "want [%s]", what, k, l->filename,
				    a->filename);
		}
		assert_int_equal(leaf, p.n);
		if (c->att == att_pdf_ics) {
			assert_string_equal(p.leaves[3].charset, "utf-8");
			assert_non_null(strstr(b.data, "Content-Type: text/calendar;"
			    " method=REQUEST; charset=utf-8;"));
		}
		parsed_fini(&p);
		mailmime_free(top);
		buf_fini(&b);
	}
}

/* Quoted-printable soft breaks around multi-byte characters at every
 * offset: bodies decode back, no line passes 76, no character is split. */
static void
test_qp_offsets(void **state)
{
	static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "=", " ", "." };

	(void)state;
	for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
		for (size_t k = 60; k <= 80; k++) {
			char text[512], what[64];
			struct compose_mail m = {
				.from = { NULL, "a@practice.test" },
				.to = { NULL, "b@patients.test" },
				.subject = "qp", .message_id = MSGID, .text = text,
			};
			struct buf b;
			struct err err = { 0 };
			struct mailmime *top = NULL;
			struct parsed p = { .n = 0 };
			size_t idx = 0, n = 0;

			memset(text, 'a', k);
			n = k;
			for (int r = 0; r < 40; r++) {
				memcpy(text + n, chars[c], strlen(chars[c]));
				n += strlen(chars[c]);
			}
			memcpy(text + n, "\n", 2);
			snprintf(what, sizeof what, "qp %zu/%zu", c, k);
			buf_init(&b, 1 << 16);
			if (compose_build(&m, &b, &err) < 0)
				fail_msg("%s: %s", what, err.msg);
			scan(what, &b, true);
			assert_int_equal(mailmime_parse(b.data, b.len, &idx, &top),
			    MAILIMF_NO_ERROR);
			walk(top, &p);
			text[n] = '\0';
			assert_int_equal(p.leaves[0].len, n + 2);
			assert_memory_equal(p.leaves[0].body, text, n);
			parsed_fini(&p);
			mailmime_free(top);
			buf_fini(&b);
		}
	}
}

/* ------------------------------------------------------------ refusals */

enum fld {
	F_FROM_NAME, F_FROM_ADDR, F_TO_NAME, F_TO_ADDR, F_RT_NAME, F_RT_ADDR,
	F_SUBJECT, F_MSGID, F_IRT, F_REF, F_UNSUB, F_XNAME, F_XVALUE,
	F_FILENAME, F_CTYPE, F_TEXT, F_HTML, F_COUNT
};

/* The word each field's error names, for every field. */
static const char *const fld_label[F_COUNT] = {
	"From name", "From address", "To name", "To address", "Reply-To name",
	"Reply-To address", "Subject", "Message-ID", "In-Reply-To",
	"References", "List-Unsubscribe", "extra header 1 name",
	"extra header X-Ok value", "attachment 1 filename",
	"attachment 1 content type", "text body", "HTML body",
};
#define N_HEADER_FIELDS F_TEXT          /* fields that end up in headers */

struct ecase {
	enum fld f;
	const char *value;
	const char *why;
};

static const struct ecase ecases[] = {
	{ F_FROM_ADDR, "notanaddress", "no @" },
	{ F_FROM_ADDR, "a@localhost", "no dot" },
	{ F_TO_ADDR, "Ann <ann@x.test>", "a space" },
	{ F_TO_ADDR, "ann@x.test,bob@y.test", "not allowed" },
	{ F_TO_ADDR, " ann@x.test\t", "control" },
	{ F_RT_ADDR, "reply+\xc3\xa9@practice.test", "non-ASCII" },
	{ F_RT_ADDR, NULL, "missing" },           /* a name without an address */
	{ F_TO_ADDR, NULL, "missing" },
	{ F_SUBJECT, NULL, "missing" },
	{ F_SUBJECT, "bell\x07", "control" },
	{ F_SUBJECT, "esc\x1b[31m", "control" },
	{ F_SUBJECT, "del\x7f", "control" },
	{ F_SUBJECT, "cut \xc3", "invalid UTF-8" },
	{ F_SUBJECT, "overlong \xc0\xaf", "invalid UTF-8" },
	{ F_SUBJECT, too_long_subject, "longer than" },
	{ F_FROM_NAME, too_long_name, "longer than" },
	{ F_TO_NAME, "tab\tname", "control" },
	{ F_MSGID, NULL, "missing" },
	{ F_MSGID, "abc@practice.test", "form" },
	{ F_MSGID, "<abc@practice.test", "form" },
	{ F_MSGID, "<a b@practice.test>", "space" },
	{ F_MSGID, "<a<b@practice.test>", "angle" },
	{ F_MSGID, "<nobody>", "no @" },
	{ F_MSGID, "<\xc3\xa9@x.test>", "non-ASCII" },
	{ F_IRT, "x", "form" },
	{ F_REF, "<ok@x.test> <two@x.test>", "space" },
	{ F_UNSUB, "mailto:u@practice.test", "http(s)" },
	{ F_UNSUB, "javascript:alert(1)", "http(s)" },
	{ F_UNSUB, "https://x.test/a b", "space" },
	{ F_UNSUB, "https://x.test/<a>", "angle" },
	{ F_XNAME, "Bcc", "written by compose" },
	{ F_XNAME, "content-transfer-encoding", "written by compose" },
	{ F_XNAME, "Reply-To", "written by compose" },
	{ F_XNAME, "X Bad", "not a header name" },
	{ F_XNAME, "X:Bad", "not a header name" },
	{ F_XNAME, "", "empty" },
	{ F_XNAME, NULL, "missing" },
	{ F_XVALUE, "\xff", "invalid UTF-8" },
	{ F_FILENAME, "../../etc/passwd", "path separator" },
	{ F_FILENAME, "C:\\x.pdf", "path separator" },
	{ F_FILENAME, "", "empty" },
	{ F_FILENAME, "\x01.pdf", "control" },
	{ F_FILENAME, "a\xed\xa0\x80.pdf", "invalid UTF-8" },
	{ F_CTYPE, NULL, "missing" },
	{ F_CTYPE, "pdf", "type/subtype" },
	{ F_CTYPE, "application/", "type/subtype" },
	{ F_CTYPE, "multipart/mixed", "cannot be an attachment" },
	{ F_CTYPE, "message/rfc822", "cannot be an attachment" },
	{ F_CTYPE, "text/plain; name=x", "from the attachment" },
	{ F_CTYPE, "text/plain; Boundary=x", "from the attachment" },
	{ F_CTYPE, "text/plain; charset", "bad parameter" },
	{ F_CTYPE, "text/plain x=y", "expected ;" },
	{ F_CTYPE, "text/plain; x=\"open", "quoted" },
	{ F_CTYPE, "text/plain; x=", "value" },
	{ F_CTYPE, "text/calendar; method=REQUEST; a=1; b=2; c=3; d=4; e=5; "
	  "f=6; g=7; h=8", "too many" },
	{ F_CTYPE, "application/pdf\xc3\xa9", "non-ASCII" },
	{ F_TEXT, NULL, "missing" },
	{ F_TEXT, "a\xc3", "invalid UTF-8" },
	{ F_HTML, "\xfe", "invalid UTF-8" },
};

/* A good mail with every field present, then field f set to v. */
static void
base_mail(struct compose_mail *m, struct compose_attachment *a,
    struct compose_header *x, const char **ref, enum fld f, const char *v)
{
	memset(m, 0, sizeof *m);
	m->from = (struct compose_addr){ "Practice", "noreply@practice.test" };
	m->to = (struct compose_addr){ "Ann", "ann@patients.test" };
	m->reply_to = (struct compose_addr){ "Practice", "reply@practice.test" };
	m->subject = "Subject";
	m->message_id = MSGID;
	m->in_reply_to = "<1@x.test>";
	*ref = "<2@x.test>";
	m->references = ref;
	m->n_references = 1;
	m->list_unsubscribe = "https://x.test/u";
	*x = (struct compose_header){ "X-Ok", "fine" };
	m->extra = x;
	m->n_extra = 1;
	m->text = "text";
	m->html = "<p>html</p>";
	*a = (struct compose_attachment){ "a.pdf", "application/pdf", pdf, 10 };
	m->attachments = a;
	m->n_attachments = 1;
	switch (f) {
	case F_FROM_NAME: m->from.name = v; break;
	case F_FROM_ADDR: m->from.addr = v; break;
	case F_TO_NAME: m->to.name = v; break;
	case F_TO_ADDR: m->to.addr = v; break;
	case F_RT_NAME: m->reply_to.name = v; break;
	case F_RT_ADDR: m->reply_to.addr = v; break;
	case F_SUBJECT: m->subject = v; break;
	case F_MSGID: m->message_id = v; break;
	case F_IRT: m->in_reply_to = v; break;
	case F_REF: *ref = v; break;
	case F_UNSUB: m->list_unsubscribe = v; break;
	case F_XNAME: x->name = v; break;
	case F_XVALUE: x->value = v; break;
	case F_FILENAME: a->filename = v; break;
	case F_CTYPE: a->content_type = v; break;
	case F_TEXT: m->text = v; break;
	case F_HTML: m->html = v; break;
	case F_COUNT: break;
	}
}

static void
expect_refused(const char *what, const struct compose_mail *m,
    const char *label, const char *why)
{
	struct buf b;
	struct err err = { .temp = true };

	buf_init(&b, LIMIT_MAIL_SIZE);
	assert_int_equal(buf_adds(&b, "stale"), 0);
	if (compose_build(m, &b, &err) != -1)
		fail_msg("%s: built:\n%s", what, b.data);
	assert_int_equal(b.len, 0);
	assert_false(err.temp);
	if (label != NULL && strstr(err.msg, label) == NULL)
		fail_msg("%s: error \"%s\" does not name \"%s\"", what, err.msg,
		    label);
	if (why != NULL && strstr(err.msg, why) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", what, err.msg, why);
	buf_fini(&b);
}

/* CR, LF and CRLF in every header field: refused, nothing built. */
static void
test_header_injection(void **state)
{
	static const char *const payloads[] = {
		"x\r\nBcc: evil@evil.test",
		"x\nBcc: evil@evil.test",
		"x\rBcc: evil@evil.test",
		"\r\n",
		"x\r\n\r\n<html>body</html>",
		"x\r\n Bcc: folded@evil.test",
		"<a@x.test>\r\nBcc: evil@evil.test",
		"https://x.test/\r\nBcc: evil@evil.test",
		"application/pdf\r\nContent-Type: text/html",
		"ann@patients.test\r\n",
		"\nann@patients.test",
	};
	struct compose_mail m;
	struct compose_attachment a;
	struct compose_header x;
	const char *ref;
	char what[96];
	size_t tried = 0;

	(void)state;
	setup_fixtures();
	/* the base mail itself is fine */
	{
		struct buf b;
		struct err err = { 0 };
		base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
		buf_init(&b, LIMIT_MAIL_SIZE);
		if (compose_build(&m, &b, &err) < 0)
			fail_msg("base mail: %s", err.msg);
		buf_fini(&b);
	}
	for (int f = 0; f < N_HEADER_FIELDS; f++) {
		for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
			snprintf(what, sizeof what, "%s + payload %zu",
			    fld_label[f], k);
			base_mail(&m, &a, &x, &ref, (enum fld)f, payloads[k]);
			expect_refused(what, &m, fld_label[f], "line break");
			tried++;
		}
	}
	assert_int_equal(tried, N_HEADER_FIELDS *
	    (sizeof payloads / sizeof payloads[0]));
	/* The Message-ID domain too. */
	{
		char id[COMPOSE_MSGID_NEW_SIZE];
		struct err err = { 0 };
		assert_int_equal(compose_message_id_new("practice.test\r\nBcc: "
		    "x@y.test", id, sizeof id, &err), -1);
		assert_non_null(strstr(err.msg, "line break"));
		assert_string_equal(id, "");
	}
	/* A NUL cannot sit inside a C string: what follows it is never
	 * read, so it cannot reach the output (see compose.h). */
	{
		static const char nul_name[] = "Ann\0\r\nBcc: evil@evil.test";
		struct buf b;
		struct err err = { 0 };
		base_mail(&m, &a, &x, &ref, F_TO_NAME, nul_name);
		buf_init(&b, LIMIT_MAIL_SIZE);
		assert_int_equal(compose_build(&m, &b, &err), 0);
		assert_null(strstr(b.data, "evil"));
		assert_null(strstr(b.data, "Bcc"));
		buf_fini(&b);
	}
}

static void
test_refusals(void **state)
{
	struct compose_mail m;
	struct compose_attachment a;
	struct compose_header x;
	const char *ref;
	char what[96];

	(void)state;
	setup_fixtures();
	for (size_t i = 0; i < sizeof ecases / sizeof ecases[0]; i++) {
		const struct ecase *c = &ecases[i];

		snprintf(what, sizeof what, "case %zu (%s)", i, fld_label[c->f]);
		base_mail(&m, &a, &x, &ref, c->f, c->value);
		if (c->f == F_RT_ADDR && c->value == NULL)
			expect_refused(what, &m, "Reply-To address", c->why);
		else
			expect_refused(what, &m, fld_label[c->f], c->why);
	}

	/* counts */
	{
		struct compose_attachment many[LIMIT_MAIL_ATTACHMENTS + 1];
		const char *ids[LIMIT_MAIL_REFERENCES + 1];
		struct compose_header hs[LIMIT_MAIL_EXTRA_HEADERS + 1];

		for (size_t i = 0; i <= LIMIT_MAIL_ATTACHMENTS; i++)
			many[i] = (struct compose_attachment){ "a.bin",
				"application/octet-stream", pdf, 1 };
		for (size_t i = 0; i <= LIMIT_MAIL_REFERENCES; i++)
			ids[i] = "<r@x.test>";
		for (size_t i = 0; i <= LIMIT_MAIL_EXTRA_HEADERS; i++)
			hs[i] = (struct compose_header){ "X-A", "b" };
		base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
		m.attachments = many;
		m.n_attachments = LIMIT_MAIL_ATTACHMENTS + 1;
		expect_refused("attachments", &m, NULL, "more than");
		base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
		m.references = ids;
		m.n_references = LIMIT_MAIL_REFERENCES + 1;
		expect_refused("references", &m, "References", "more than");
		base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
		m.extra = hs;
		m.n_extra = LIMIT_MAIL_EXTRA_HEADERS + 1;
		expect_refused("extra", &m, NULL, "more than");
		/* at the limits it builds */
		{
			struct buf b;
			struct err err = { 0 };
			base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
			m.attachments = many;
			m.n_attachments = LIMIT_MAIL_ATTACHMENTS;
			m.references = ids;
			m.n_references = LIMIT_MAIL_REFERENCES;
			m.extra = hs;
			m.n_extra = LIMIT_MAIL_EXTRA_HEADERS;
			buf_init(&b, LIMIT_MAIL_SIZE);
			if (compose_build(&m, &b, &err) < 0)
				fail_msg("at the limits: %s", err.msg);
			scan("at the limits", &b, true);
			buf_fini(&b);
		}
	}
	/* data missing for a length */
	base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
	a.data = NULL;
	expect_refused("no data", &m, "attachment 1", "no data");

	/* size caps: the caller's buffer, and LIMIT_MAIL_SIZE */
	{
		struct buf b;
		struct err err = { 0 };
		size_t big = LIMIT_MAIL_SIZE / 4 * 3 + 1000;
		uint8_t *blob = calloc(1, big);

		base_mail(&m, &a, &x, &ref, F_COUNT, NULL);
		buf_init(&b, 500);
		assert_int_equal(compose_build(&m, &b, &err), -1);
		assert_non_null(strstr(err.msg, "larger than 500"));
		assert_int_equal(b.len, 0);
		buf_fini(&b);

		a.data = blob;
		a.len = big;                  /* base64 passes the cap */
		expect_refused("over LIMIT_MAIL_SIZE", &m, NULL, "larger than");
		a.len = (size_t)LIMIT_MAIL_SIZE + 1;
		expect_refused("attachment over LIMIT_MAIL_SIZE", &m,
		    "attachment 1", "larger than");
		free(blob);
	}
}

static void
test_message_id(void **state)
{
	static const struct {
		const char *domain;
		const char *want_suffix;      /* NULL: refused */
	} cases[] = {
		{ "practice.test", "@practice.test>" },
		{ "Mail.Practice.TEST", "@mail.practice.test>" },
		{ "localhost", NULL },
		{ "", NULL },
		{ NULL, NULL },
		{ "a b.test", NULL },
		{ "x\xc3\xa9.test", NULL },
	};
	char prev[COMPOSE_MSGID_NEW_SIZE] = "";

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char id[COMPOSE_MSGID_NEW_SIZE];
		struct err err = { 0 };
		int rc = compose_message_id_new(cases[i].domain, id, sizeof id,
		    &err);

		if (cases[i].want_suffix == NULL) {
			if (rc != -1)
				fail_msg("case %zu: made %s", i, id);
			assert_string_equal(id, "");
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(id[0], '<');
		for (int k = 1; k <= 32; k++)
			assert_non_null(strchr("0123456789abcdef", id[k]));
		assert_string_equal(id + 33, cases[i].want_suffix);
		assert_string_not_equal(id, prev);   /* fresh each time */
		snprintf(prev, sizeof prev, "%s", id);
	}
	/* the result is an id compose_build() takes; a small buffer fails */
	{
		char id[COMPOSE_MSGID_NEW_SIZE], small[20];
		struct err err = { 0 };
		struct compose_mail m;
		struct compose_attachment a;
		struct compose_header x;
		const char *ref;
		struct buf b;

		assert_int_equal(compose_message_id_new("practice.test", small,
		    sizeof small, &err), -1);
		assert_string_equal(small, "");
		assert_int_equal(compose_message_id_new("practice.test", id,
		    sizeof id, &err), 0);
		base_mail(&m, &a, &x, &ref, F_MSGID, id);
		buf_init(&b, LIMIT_MAIL_SIZE);
		assert_int_equal(compose_build(&m, &b, &err), 0);
		assert_non_null(strstr(b.data, id));
		buf_fini(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_mails),
		cmocka_unit_test(test_qp_offsets),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_message_id),
	};
	struct err err = { 0 };

	if (crypto_init(&err) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
