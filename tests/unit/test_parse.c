/* tests/unit/test_parse.c: raw inbound mail → struct parsed_mail
 * (mailer/parse.h). One table of small messages (structure, transfer
 * encodings, charsets, RFC 2047, hostile names, attachments, DSNs), then
 * generated MIME bombs that must be refused quickly, and the UTF-8
 * promise over every case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/buf.h"
#include "mailer/classify.h"
#include "mailer/parse.h"
#include "common/utf8.h"

#define HDR "From: Sam Park <sam@example.test>\nTo: reply@oak.test\n" \
	"Message-ID: <m1@example.test>\nMIME-Version: 1.0\n"

struct pcase {
	const char *what;
	const char *raw;
	int want_ret;
	const char *subject;      /* exact, NULL: not checked */
	const char *text;         /* a substring of the text, NULL: not checked */
	const char *not_text;     /* must not be in the text */
	const char *from;         /* exact */
	size_t natt;
	const char *att_name, *att_type;
	size_t att_size;
	const char *dsn;          /* a substring of the DSN text */
	const char *err;          /* a substring of the error */
};

static const struct pcase pcases[] = {
	{ "plain ASCII", HDR "Subject: hi\n\nHello there.\n", 0, "hi",
	  "Hello there.", NULL, "Sam Park <sam@example.test>", 0, NULL, NULL, 0,
	  NULL, NULL },
	{ "CRLF and folded subject", "From: a@x.test\r\nSubject: a long\r\n "
	  "subject\r\n\r\nLine one\r\nLine two\r\n", 0, "a long subject",
	  "Line one\nLine two", "\r", NULL, 0, NULL, NULL, 0, NULL, NULL },
	{ "multipart/alternative picks text/plain",
	  HDR "Subject: alt\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n"
	  "--b1\nContent-Type: text/plain; charset=utf-8\n\nplain words\n"
	  "--b1\nContent-Type: text/html\n\n<p>html words</p>\n--b1--\n", 0,
	  "alt", "plain words", "html", NULL, 0, NULL, NULL, 0, NULL, NULL },
	{ "HTML only: tags, script, style and entities",
	  HDR "Subject: h\nContent-Type: text/html; charset=utf-8\n\n"
	  "<html><head><style>p{}</style></head><body><p>Tom &amp; Jerry"
	  " &lt;3 &#233;t&#xE9;</p><script>evil()</script><br>bye</body></html>\n",
	  0, "h", "Tom & Jerry <3 \xc3\xa9t\xc3\xa9", "evil", NULL, 0, NULL, NULL,
	  0, NULL, NULL },
	{ "HTML (libxml2): br is one line, blockquote becomes > quotes",
	  HDR "Subject: q\nContent-Type: text/html\n\n"
	  "<div>Yes please<br>call me</div><div>On Mon wrote:<blockquote>old "
	  "<b>text</b></blockquote></div><img src=\"http://t.test/x.png\">"
	  "<a href=\"http://evil.test\">link</a>\n",
	  0, "q", "Yes please\ncall me\nOn Mon wrote:\n\n> old text\n\nlink",
	  "http", NULL, 0, NULL, NULL, 0, NULL, NULL },
	{ "HTML (libxml2): broken markup, comments and noscript",
	  HDR "Subject: b\nContent-Type: text/html\n\n"
	  "<p>one <i>two<p>three<!-- hidden --><noscript>ns</noscript>"
	  "<table><tr><td>a</td><td>b</td></tr></table>\n",
	  0, "b", "one two\n\nthree\n\na b", "hidden", NULL, 0, NULL, NULL, 0,
	  NULL, NULL },
	{ "nested multiparts: mixed(related(alternative))",
	  HDR "Subject: n\nContent-Type: multipart/mixed; boundary=m\n\n--m\n"
	  "Content-Type: multipart/related; boundary=r\n\n--r\n"
	  "Content-Type: multipart/alternative; boundary=a\n\n--a\n"
	  "Content-Type: text/plain\n\ndeep text\n--a\nContent-Type: text/html\n\n"
	  "<b>x</b>\n--a--\n--r\nContent-Type: image/png\n"
	  "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--r--\n--m--\n", 0,
	  "n", "deep text", NULL, NULL, 1, "", "image/png", 8, NULL, NULL },
	{ "quoted-printable soft breaks and escapes",
	  HDR "Subject: qp\nContent-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 au la=\nit =3D ok\n",
	  0, "qp", "Caf\xc3\xa9 au lait = ok", NULL, NULL, 0, NULL, NULL, 0, NULL,
	  NULL },
	{ "base64 body",
	  HDR "Subject: b\nContent-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: base64\n\nSGVsbG8sIHfDtnJsZCE=\n", 0, "b",
	  "Hello, w\xc3\xb6rld!", NULL, NULL, 0, NULL, NULL, 0, NULL, NULL },
	{ "RFC 2047 subject: B and Q words, space between words dropped",
	  HDR "Subject: =?UTF-8?B?w5xiZXI=?= =?utf-8?q?_caf=C3=A9?= and more\n\nx\n",
	  0, "\xc3\x9c" "ber caf\xc3\xa9 and more", NULL, NULL, NULL, 0, NULL,
	  NULL, 0, NULL, NULL },
	{ "RFC 2047 display name in Latin-1",
	  "From: =?ISO-8859-1?Q?Ren=E9e_M=FCller?= <r@x.test>\nSubject: s\n\nx\n",
	  0, "s", NULL, NULL, "Ren\xc3\xa9" "e M\xc3\xbcller <r@x.test>", 0, NULL,
	  NULL, 0, NULL, NULL },
	{ "malformed encoded word stays literal",
	  HDR "Subject: =?utf-8?x?abc?= and =?broken\n\nx\n", 0,
	  "=?utf-8?x?abc?= and =?broken", NULL, NULL, NULL, 0, NULL, NULL, 0,
	  NULL, NULL },
	{ "ISO-8859-1 body",
	  HDR "Subject: l\nContent-Type: text/plain; charset=ISO-8859-1\n"
	  "Content-Transfer-Encoding: 8bit\n\nGr\xfc\xdf" "e, \xe0 bient\xf4t\n", 0,
	  "l", "Gr\xc3\xbc\xc3\x9f" "e, \xc3\xa0 bient\xc3\xb4t", NULL, NULL, 0,
	  NULL, NULL, 0, NULL, NULL },
	{ "Windows-1252 body (curly quotes, euro)",
	  HDR "Subject: w\nContent-Type: text/plain; charset=windows-1252\n\n"
	  "\x93quoted\x94 \x80" "5\n", 0, "w",
	  "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac" "5", NULL, NULL, 0, NULL,
	  NULL, 0, NULL, NULL },
	{ "Latin-1 label on UTF-8 text (mislabelled) stays UTF-8",
	  HDR "Subject: m\nContent-Type: text/plain; charset=iso-8859-1\n\n"
	  "na\xc3\xafve\n", 0, "m", "na\xc3\xafve", "\xc3\x83", NULL, 0, NULL,
	  NULL, 0, NULL, NULL },
	{ "UTF-8 label on Latin-1 text (mislabelled) read as Windows-1252",
	  HDR "Subject: m2\nContent-Type: text/plain; charset=utf-8\n\n"
	  "caf\xe9\n", 0, "m2", "caf\xc3\xa9", NULL, NULL, 0, NULL, NULL, 0,
	  NULL, NULL },
	{ "undeclared 8-bit text read as Windows-1252",
	  HDR "Subject: u\n\nna\xefve\n", 0, "u", "na\xc3\xafve", NULL, NULL, 0,
	  NULL, NULL, 0, NULL, NULL },
	{ "unknown charset, valid UTF-8 kept",
	  HDR "Subject: k\nContent-Type: text/plain; charset=x-no-such\n\n"
	  "\xc3\xa9t\xc3\xa9\n", 0, "k", "\xc3\xa9t\xc3\xa9", NULL, NULL, 0, NULL,
	  NULL, 0, NULL, NULL },
	{ "Shift_JIS through iconv",
	  HDR "Subject: j\nContent-Type: text/plain; charset=Shift_JIS\n\n"
	  "\x93\xfa\x96\x7b\n", 0, "j", "\xe6\x97\xa5\xe6\x9c\xac", NULL, NULL, 0,
	  NULL, NULL, 0, NULL, NULL },
	{ "bidi override and NUL-ish controls removed from the subject",
	  HDR "Subject: =?utf-8?q?pay=E2=80=AEfdp.exe=00=01x?=\n\nx\n", 0,
	  "payfdp.exex", NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL },
	{ "isolates and marks removed from a display name",
	  "From: =?utf-8?b?4oGmQW5u4oGp4oCP?= <a@x.test>\n\nx\n", 0, NULL, NULL,
	  NULL, "Ann <a@x.test>", 0, NULL, NULL, 0, NULL, NULL },
	{ "NUL in the body removed",
	  HDR "Subject: z\n\nab\0cd\n", 0, "z", "abcd", NULL, NULL, 0, NULL, NULL,
	  0, NULL, NULL },
	{ "attachment: name, type, decoded size",
	  HDR "Subject: a\nContent-Type: multipart/mixed; boundary=\"==x==\"\n\n"
	  "--==x==\nContent-Type: text/plain\n\nsee attached\n--==x==\n"
	  "Content-Type: application/pdf\nContent-Disposition: attachment;"
	  " filename=\"scan.pdf\"\nContent-Transfer-Encoding: base64\n\n"
	  "JVBERi0xLjQK\n--==x==--\n", 0, "a", "see attached", NULL, NULL, 1,
	  "scan.pdf", "application/pdf", 9, NULL, NULL },
	{ "RFC 2231 file name with charset",
	  HDR "Subject: r\nContent-Type: multipart/mixed; boundary=m\n\n--m\n"
	  "Content-Type: text/plain\n\nhi\n--m\nContent-Type: application/pdf\n"
	  "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\n\n"
	  "abc\n--m--\n", 0, "r", "hi", NULL, NULL, 1, "r\xc3\xa9sum\xc3\xa9.pdf",
	  "application/pdf", 3, NULL, NULL },
	{ "RFC 2231 continuations in the Content-Type name",
	  HDR "Subject: r\nContent-Type: multipart/mixed; boundary=m\n\n--m\n"
	  "Content-Type: text/plain\n\nhi\n--m\nContent-Type: image/png;\n"
	  " name*0=\"long\"; name*1*=%20name.png\n\nabc\n--m--\n", 0, "r",
	  "hi", NULL, NULL, 1, "long name.png", "image/png", 3, NULL, NULL },
	{ "bidi override removed from an attachment name",
	  HDR "Subject: r\nContent-Type: multipart/mixed; boundary=m\n\n--m\n"
	  "Content-Type: application/octet-stream\nContent-Disposition: attachment;"
	  " filename=\"=?utf-8?q?inv=E2=80=AEfdp.exe?=\"\n\nabc\n--m--\n", 0,
	  "r", "", NULL, NULL, 1, "invfdp.exe", "application/octet-stream", 3,
	  NULL, NULL },
	{ "attached message counted, not read as the body",
	  HDR "Subject: f\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
	  "Content-Type: text/plain\n\nmine\n--q\nContent-Type: message/rfc822\n\n"
	  "From: x@y.test\nSubject: old\n\nnot mine\n--q--\n", 0, "f", "mine",
	  "not mine", NULL, 1, "", "message/rfc822", 0, NULL, NULL },
	{ "DSN report text collected",
	  "From: MAILER-DAEMON@mx.test\nSubject: Undelivered\n"
	  "Content-Type: multipart/report; report-type=delivery-status; boundary=R\n\n"
	  "--R\nContent-Type: text/plain\n\nfailed\n--R\n"
	  "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\n\n"
	  "Final-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 5.1.1\n--R--\n",
	  0, "Undelivered", "failed", NULL, NULL, 0, NULL, NULL, 0, "Status: 5.1.1",
	  NULL },
	{ "no header block", "just some text without a colon\n", -1, NULL, NULL,
	  NULL, NULL, 0, NULL, NULL, 0, NULL, "no header" },
	{ "empty body", "From: a@x.test\nSubject: e\n", 0, "e", "", NULL, NULL, 0,
	  NULL, NULL, 0, NULL, NULL },
};

/* Valid UTF-8 and no NUL byte. */
static bool
utf8_ok(const char *s, size_t n)
{
	return utf8_valid(s, n) && memchr(s, 0, n) == NULL;
}

static void
check_utf8(const struct parsed_mail *pm)
{
	const char *f[] = { pm->from, pm->to, pm->subject, pm->message_id,
		pm->content_type };

	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i] != NULL)
			assert_true(utf8_ok(f[i], strlen(f[i])));
	assert_non_null(pm->text);
	assert_int_equal(strlen(pm->text), pm->text_len);
	assert_true(utf8_ok(pm->text, pm->text_len));
	for (size_t i = 0; i < pm->natt; i++)
		assert_true(utf8_ok(pm->att[i].filename,
		    strlen(pm->att[i].filename)));
}

static void
test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		const struct pcase *c = &pcases[i];
		struct parsed_mail *pm = NULL;
		struct err err = { 0 };
		/* the NUL case carries a NUL: take the length up to "\n" end */
		size_t len = strlen(c->raw);
		int ret;

		if (strstr(c->what, "NUL in the body") != NULL)
			len += 1 + strlen(c->raw + len + 1);
		ret = parse_mail(c->raw, len, &pm, &err);
		if (ret != c->want_ret)
			fail_msg("case %zu (%s): ret %d (%s), want %d", i, c->what,
			    ret, err.msg, c->want_ret);
		if (ret < 0) {
			assert_null(pm);
			assert_false(err.temp);
			if (c->err && strstr(err.msg, c->err) == NULL)
				fail_msg("case %zu (%s): error \"%s\"", i, c->what,
				    err.msg);
			continue;
		}
		check_utf8(pm);
		if (c->subject && (pm->subject == NULL ||
		    strcmp(pm->subject, c->subject) != 0))
			fail_msg("case %zu (%s): subject \"%s\"", i, c->what,
			    pm->subject ? pm->subject : "(null)");
		if (c->from && strcmp(pm->from, c->from) != 0)
			fail_msg("case %zu (%s): from \"%s\"", i, c->what, pm->from);
		if (c->text && strstr(pm->text, c->text) == NULL)
			fail_msg("case %zu (%s): text \"%s\"", i, c->what, pm->text);
		if (c->not_text && strstr(pm->text, c->not_text) != NULL)
			fail_msg("case %zu (%s): text has \"%s\": \"%s\"", i,
			    c->what, c->not_text, pm->text);
		if (pm->natt != c->natt)
			fail_msg("case %zu (%s): %zu attachments", i, c->what,
			    pm->natt);
		if (c->natt > 0 && (strcmp(pm->att[0].filename, c->att_name) != 0 ||
		    strcmp(pm->att[0].content_type, c->att_type) != 0 ||
		    (c->att_size && pm->att[0].size != c->att_size)))
			fail_msg("case %zu (%s): attachment \"%s\" %s %zu", i,
			    c->what, pm->att[0].filename, pm->att[0].content_type,
			    pm->att[0].size);
		if (c->dsn && (pm->dsn == NULL || strstr(pm->dsn, c->dsn) == NULL))
			fail_msg("case %zu (%s): dsn \"%s\"", i, c->what,
			    pm->dsn ? pm->dsn : "(null)");
		if (!c->dsn)
			assert_null(pm->dsn);
		parsed_mail_free(&pm);
		assert_null(pm);
	}
}

/* The parsed mail feeds classify and the DSN parser as the ingester does. */
static void
test_parse_classify(void **state)
{
	static const char raw[] =
	    "Return-Path: <>\nFrom: MAILER-DAEMON@mx.test\nSubject: Undelivered\n"
	    "To: bounce+abc@bounce.oak.test\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"R\"\n\n--R\nContent-Type: text/plain\n\nfailed\n--R\n"
	    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\n\n"
	    "Final-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 5.1.1\n"
	    "--R--\n";
	struct parsed_mail *pm = NULL;
	struct classify_headers h;
	struct classify_result r;
	struct classify_dsn d;
	const char *rcpt[4];
	struct err err;

	(void)state;
	assert_int_equal(parse_mail(raw, sizeof raw - 1, &pm, &err), 0);
	parse_classify_headers(pm, &h, rcpt);
	classify_mail(&h, &r);
	assert_int_equal(r.kind, CLASSIFY_BOUNCE);
	assert_non_null(pm->dsn);
	assert_int_equal(classify_dsn_parse(pm->dsn, pm->dsn_len, &d, &err), 1);
	assert_string_equal(d.status, "5.1.1");
	assert_true(d.hard);
	assert_string_equal(d.recipient, "a@b.test");
	parsed_mail_free(&pm);
}

/* levels nested multiparts, each with its own boundary. */
static void
nest(struct buf *b, int levels)
{
	for (int i = 0; i < levels; i++)
		assert_int_equal(buf_printf(b, "Content-Type: multipart/mixed; "
		    "boundary=\"n%d\"\n\n--n%d\n", i, i), 0);
	assert_int_equal(buf_adds(b, "Content-Type: text/plain\n\ncore\n"), 0);
	for (int i = levels - 1; i >= 0; i--)
		assert_int_equal(buf_printf(b, "--n%d--\n", i), 0);
}

static int
parse_buf(const struct buf *b, struct err *err)
{
	struct parsed_mail *pm = NULL;
	int ret = parse_mail(buf_str(b), b->len, &pm, err);

	if (ret == 0)
		check_utf8(pm);
	parsed_mail_free(&pm);
	return ret;
}

static void
test_parse_bombs(void **state)
{
	struct buf b;
	struct err err;

	/* What is asserted is where each bomb is refused (the error names
	 * the cap that stopped it), not how long it took: a benchmark
	 * measures time, a test does not. The pre-scan of the raw text
	 * refuses by counting before libetpan parses anything; the libFuzzer
	 * targets (make fuzz) run with a per-input time limit. */
	(void)state;
	buf_init(&b, 64 * 1024 * 1024);
	/* 9 levels of nesting: fine */
	assert_int_equal(buf_adds(&b, HDR "Subject: ok\n"), 0);
	nest(&b, 9);
	assert_int_equal(parse_buf(&b, &err), 0);
	/* 12 levels: over the depth cap */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: deep\n"), 0);
	nest(&b, 12);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "nesting"));
	assert_false(err.temp);
	/* 50,000 levels: refused by the pre-scan (it counts the parts),
	 * before libetpan would recurse into them */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: bomb\n"), 0);
	nest(&b, 50000);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	assert_null(strstr(err.msg, "nesting"));
	/* 1,000 parts in one multipart */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: parts\nContent-Type: "
	    "multipart/mixed; boundary=p\n\n"), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_adds(&b, "--p\n\nx\n"), 0);
	assert_int_equal(buf_adds(&b, "--p--\n"), 0);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	assert_non_null(strstr(err.msg, "MIME parts"));
	/* 150 parts: fine */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: parts\nContent-Type: "
	    "multipart/mixed; boundary=p\n\n"), 0);
	for (int i = 0; i < 150; i++)
		assert_int_equal(buf_adds(&b, "--p\n\nx\n"), 0);
	assert_int_equal(buf_adds(&b, "--p--\n"), 0);
	assert_int_equal(parse_buf(&b, &err), 0);
	/* a boundary with a quoted-pair, read differently by libetpan:
	 * the looser cap on "--token" lines still holds */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: esc\nContent-Type: "
	    "multipart/mixed; boundary=\"a\\b\"\n\n"), 0);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(buf_adds(&b, "--ab\n\nx\n"), 0);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "lines that may start MIME parts"));
	/* "--p junk" lines are text, not delimiters: 1,000 of them parse */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: junk\nContent-Type: "
	    "multipart/mixed; boundary=p\n\n--p\n\n"), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_adds(&b, "--p junk\n"), 0);
	assert_int_equal(buf_adds(&b, "--p--\n"), 0);
	assert_int_equal(parse_buf(&b, &err), 0);
	/* a 6 MB base64 text part: over the text cap */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: big\nContent-Type: "
	    "text/plain\nContent-Transfer-Encoding: base64\n\n"), 0);
	for (int i = 0; i < 6 * 1024 * 1024 / 57; i++)
		assert_int_equal(buf_adds(&b, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
		    "QUFBQUFBQUFB\n"), 0);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	/* raw over the message cap: refused before any parsing */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, HDR "Subject: huge\n\n"), 0);
	while (b.len <= LIMIT_MAIL_SIZE)
		assert_int_equal(buf_adds(&b, "0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcde\n"), 0);
	assert_int_equal(parse_buf(&b, &err), -1);
	assert_non_null(strstr(err.msg, "message of"));
	buf_fini(&b);
}

static size_t
body_at(const char *s)
{
	return parse_body_offset(s, strlen(s));
}

static void
test_parse_body_offset(void **state)
{
	(void)state;
	assert_int_equal(body_at("A: 1\r\nB: 2\r\n\r\nbody"), 14);
	assert_int_equal(body_at("A: 1\nB: 2\n\nbody"), 11);
	/* no empty line: all of it is header */
	assert_int_equal(body_at("A: 1\r\nB: 2\r\n"), 12);
	assert_int_equal(body_at(""), 0);
	/* an empty line right after the first line break */
	assert_int_equal(body_at("\r\n\r\nx"), 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_classify),
		cmocka_unit_test(test_parse_bombs),
		cmocka_unit_test(test_parse_body_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
