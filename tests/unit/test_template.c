/* tests/unit/test_template.c: built-in templates, overrides from a
 * directory (errors name file:line), and rendering (values escaped in
 * HTML, the separator line first, fixed variables per kind). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mailer/template.h"

#define SEP_TEXT(p) TEMPLATE_SEPARATOR_HEAD p TEMPLATE_SEPARATOR_TAIL "\n\n"

static const struct template_var v_magic[] = {
	{ "practice_name", "Praxis M\xc3\xbcller & Partner" },
	{ "link", "https://portal.practice.test/verify?t=abc&x=1" },
	{ "code", "482 913" },
	{ "minutes", "15" },
};
static const struct template_var v_phi_free[] = {
	{ "link", "https://portal.practice.test/m/7" },
	{ "practice_name", "Clinic" },
};
static const struct template_var v_full[] = {
	{ "practice_name", "Clinic" },
	{ "link", "http://localhost:8080/m/7" },
	{ "patient_name", "Zo\xc3\xab <b>O'Brien</b>" },
	{ "staff_name", "Dr. \"Bo\"" },
	{ "message_text", "Line one\nLine <two> & \"three\"\r\n\n<script>alert(1)"
	  "</script>\n" TEMPLATE_SEPARATOR_MARK " (quoted)" },
};
static const struct template_var v_confirm[] = {
	{ "practice_name", "Clinic & Co" },
	{ "link", "https://portal.practice.test/confirm?t=abc&x=1" },
	{ "sender_address", "<b>spouse</b>@home.test" },
	{ "days", "7" },
};
static const struct template_var v_reject[] = {
	{ "practice_name", "Clinic" },
	{ "link", "https://portal.practice.test/login" },
	{ "explanation", "it is larger than we can accept <by email>." },
};
static const struct template_var v_urgent[] = {
	{ "practice_name", "Clinic" },
	{ "emergency_text", "Call 911 <now>\nor the night line: 555-0100" },
};
static const struct template_var v_test[] = {
	{ "practice_name", "<img src=x onerror=alert(1)>" },
	{ "sent_at", "2026-09-21 14:13 UTC" },
};

struct rcase {
	enum template_kind kind;
	bool separator;
	const struct template_var *vars;
	size_t nvars;
	const char *subject;            /* exact */
	const char *text_has[4];        /* substrings of the text */
	const char *html_has[4];        /* substrings of the HTML */
	const char *html_lacks[3];      /* never in the HTML */
};

#define V(a) a, sizeof a / sizeof a[0]

static const struct rcase rcases[] = {
	{ TEMPLATE_MAGIC_LINK, true, V(v_magic),
	  "Your sign-in link for Praxis M\xc3\xbcller & Partner",
	  { "https://portal.practice.test/verify?t=abc&x=1\n", "    482 913\n",
	    "expire in 15 minutes", NULL },
	  { "href=\"https://portal.practice.test/verify?t=abc&amp;x=1\"",
	    "482 913</p>", "Praxis M\xc3\xbcller &amp; Partner", ">Sign in</a>" },
	  { "abc&x=1", "& Partner", NULL } },
	{ TEMPLATE_MAGIC_LINK, false, V(v_magic), NULL,
	  { "Hello,\n", NULL }, { NULL }, { TEMPLATE_SEPARATOR_MARK, NULL } },
	{ TEMPLATE_NOTIFY_PHI_FREE, true, V(v_phi_free),
	  "New message from Clinic",
	  { "new message from Clinic", "https://portal.practice.test/m/7",
	    NULL },
	  { "href=\"https://portal.practice.test/m/7\"", "Read and reply",
	    NULL },
	  { NULL } },
	{ TEMPLATE_NOTIFY_FULL_TEXT, true, V(v_full), "New message from Clinic",
	  { "Hello Zo\xc3\xab <b>O'Brien</b>,", "Line one\nLine <two> & "
	    "\"three\"\r\n\n<script>", "Dr. \"Bo\" (Clinic) wrote:", NULL },
	  { "Zo\xc3\xab &lt;b&gt;O&#39;Brien&lt;/b&gt;",
	    "Line &lt;two&gt; &amp; &quot;three&quot;",
	    "&lt;script&gt;alert(1)&lt;/script&gt;", "white-space:pre-wrap" },
	  { "<script", "<b>", NULL } },
	{ TEMPLATE_CONFIRM_SENDER, false, V(v_confirm),
	  "Did you write to Clinic & Co?",
	  { "Clinic & Co received a reply that says it is from you, sent from "
	    "<b>spouse</b>@home.test.", "https://portal.practice.test/confirm?"
	    "t=abc&x=1\n", "works for 7 days", NULL },
	  { "href=\"https://portal.practice.test/confirm?t=abc&amp;x=1\"",
	    "&lt;b&gt;spouse&lt;/b&gt;@home.test", "Clinic &amp; Co", NULL },
	  { "<b>", "& Co", NULL } },
	{ TEMPLATE_REJECTION_NOTICE, false, V(v_reject),
	  "Your message to Clinic was not delivered",
	  { "could not be delivered to Clinic: it is larger than we can accept "
	    "<by email>.", "https://portal.practice.test/login\n", NULL },
	  { "accept &lt;by email&gt;.", ">Sign in</a>", NULL },
	  { "<by", NULL } },
	{ TEMPLATE_URGENT_ACK, false, V(v_urgent),
	  "Clinic received your message",
	  { "If this is an emergency:\n\nCall 911 <now>\nor the night line: "
	    "555-0100\n", NULL },
	  { "Call 911 &lt;now&gt;\nor the night line", "white-space:pre-wrap",
	    NULL },
	  { "<now>", NULL } },
	{ TEMPLATE_TEST, false, V(v_test),
	  "postern test mail for <img src=x onerror=alert(1)>",
	  { "sent at 2026-09-21 14:13 UTC.", NULL },
	  { "&lt;img src=x onerror=alert(1)&gt;", "<title>postern test mail "
	    "for &lt;img", NULL },
	  { "<img", NULL } },
};

/* What every rendered HTML document must look like. */
static void
check_html_shell(const char *what, const char *html, bool separator)
{
	static const char *const must[] = {
		"<!DOCTYPE html>", "<meta charset=\"utf-8\">",
		"name=\"viewport\"", "max-width:560px", "</html>\n",
	};
	static const char *const never[] = {
		"<script", "<style", "<link", "<img", "<iframe", "<form",
	};
	/* inside a tag (values are escaped, so only our markup has tags) */
	static const char *const never_in_tag[] = {
		"src=", "url(", " on", "javascript:", "http://x", "@import",
	};
	const char *body = strstr(html, "<body");

	for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
		if (strstr(html, must[i]) == NULL)
			fail_msg("%s: HTML lacks %s", what, must[i]);
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		if (strstr(html, never[i]) != NULL)
			fail_msg("%s: HTML has %s", what, never[i]);
	for (const char *t = strchr(html, '<'); t != NULL;
	    t = strchr(t + 1, '<')) {
		size_t len = strcspn(t, ">");
		for (size_t i = 0; i < sizeof never_in_tag /
		    sizeof never_in_tag[0]; i++) {
			const char *hit = strstr(t, never_in_tag[i]);
			if (hit != NULL && hit < t + len)
				fail_msg("%s: a tag has %s: %.*s", what,
				    never_in_tag[i], (int)len, t);
		}
	}
	assert_non_null(body);
	body = strchr(body, '>') + 1;
	/* the separator is the first thing in the body, or absent */
	if (separator) {
		const char *sep = strstr(body, TEMPLATE_SEPARATOR_MARK);
		assert_non_null(sep);
		assert_non_null(strstr(body, "<p "));
		assert_true(strstr(body, "<p ") < sep);
		assert_true(strstr(body, "<table") > sep);
	}
}

static struct template_set *
load_ok(const char *dir)
{
	struct template_set *set = NULL;
	struct err err = { 0 };

	if (template_set_load(dir, &set, &err) < 0)
		fail_msg("template_set_load(%s): %s", dir ? dir : "NULL",
		    err.msg);
	assert_non_null(set);
	return set;
}

static void
test_render_table(void **state)
{
	struct template_set *set;

	(void)state;
	set = load_ok(NULL);
	for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
		const struct rcase *c = &rcases[i];
		struct template_mail m = { 0 };
		struct err err = { 0 };
		char what[64];
		const char *practice = NULL;

		snprintf(what, sizeof what, "case %zu (%s)", i,
		    template_kind_name(c->kind));
		if (template_render(set, c->kind, c->separator, c->vars,
		    c->nvars, &m, &err) < 0)
			fail_msg("%s: %s", what, err.msg);
		for (size_t k = 0; k < c->nvars; k++)
			if (strcmp(c->vars[k].name, "practice_name") == 0)
				practice = c->vars[k].value;
		if (c->subject != NULL)
			assert_string_equal(m.subject, c->subject);
		assert_null(strpbrk(m.subject, "\r\n"));
		for (size_t k = 0; k < 4 && c->text_has[k]; k++)
			if (strstr(m.text, c->text_has[k]) == NULL)
				fail_msg("%s: text lacks [%s]:\n%s", what,
				    c->text_has[k], m.text);
		for (size_t k = 0; k < 4 && c->html_has[k]; k++)
			if (strstr(m.html, c->html_has[k]) == NULL)
				fail_msg("%s: HTML lacks [%s]:\n%s", what,
				    c->html_has[k], m.html);
		for (size_t k = 0; k < 3 && c->html_lacks[k]; k++)
			if (strstr(m.html, c->html_lacks[k]) != NULL)
				fail_msg("%s: HTML has [%s]", what,
				    c->html_lacks[k]);
		/* the separator line: first in the text, or nowhere */
		if (c->separator) {
			char want[512];
			snprintf(want, sizeof want, "%s%s%s\n\n",
			    TEMPLATE_SEPARATOR_HEAD, practice,
			    TEMPLATE_SEPARATOR_TAIL);
			if (strncmp(m.text, want, strlen(want)) != 0)
				fail_msg("%s: text does not start with the "
				    "separator:\n%s", what, m.text);
		} else if (c->kind != TEMPLATE_NOTIFY_FULL_TEXT) {
			assert_null(strstr(m.text, TEMPLATE_SEPARATOR_MARK));
		}
		check_html_shell(what, m.html, c->separator);
		template_mail_fini(&m);
		assert_null(m.text);
		template_mail_fini(&m);               /* twice is fine */
	}
	template_set_free(&set);
	assert_null(set);
	template_set_free(&set);                      /* NULL-safe */
}

/* Rendering refusals: variables missing, unknown, repeated or bad. */
struct ecase {
	enum template_kind kind;
	const char *name;               /* this variable … */
	const char *value;              /* … gets this value (NULL: removed) */
	const char *why;
};

static char huge[LIMIT_TEMPLATE_VALUE + 2];

static const struct ecase ecases[] = {
	{ TEMPLATE_MAGIC_LINK, "code", NULL, "variable code not given" },
	{ TEMPLATE_MAGIC_LINK, "patient_name", "Ann", "no variable patient_name" },
	{ TEMPLATE_MAGIC_LINK, "message_text", "PHI", "no variable message_text" },
	{ TEMPLATE_NOTIFY_PHI_FREE, "patient_name", "Ann", "no variable" },
	{ TEMPLATE_NOTIFY_PHI_FREE, "message_text", "PHI", "no variable" },
	{ TEMPLATE_MAGIC_LINK, "practice_name", "x", "given twice" },
	{ TEMPLATE_MAGIC_LINK, "nonsense", "x", "no variable nonsense" },
	{ TEMPLATE_MAGIC_LINK, "link", "javascript:alert(1)", "http(s)" },
	{ TEMPLATE_MAGIC_LINK, "link", "data:text/html,x", "http(s)" },
	{ TEMPLATE_MAGIC_LINK, "link", "https://x.test/a b", "space" },
	{ TEMPLATE_MAGIC_LINK, "link", "https://x.test/\"onmouseover=", "quote" },
	{ TEMPLATE_MAGIC_LINK, "link", "https://x.test/\xc3\xa9", "non-ASCII" },
	{ TEMPLATE_MAGIC_LINK, "link", "https://x.test/\n", "line break" },
	{ TEMPLATE_MAGIC_LINK, "code", "12\r\nBcc: x", "line break" },
	{ TEMPLATE_MAGIC_LINK, "minutes", "1\x01", "control" },
	{ TEMPLATE_MAGIC_LINK, "code", "\xc3", "invalid UTF-8" },
	{ TEMPLATE_MAGIC_LINK, "code", huge, "longer than" },
	{ TEMPLATE_NOTIFY_FULL_TEXT, "message_text", "a\x1b[2J", "control" },
	{ TEMPLATE_NOTIFY_FULL_TEXT, "patient_name", "Ann\nLee", "line break" },
	{ TEMPLATE_TEST, "sent_at", NULL, "not given" },
	/* the follow-up mails take no patient or message variables */
	{ TEMPLATE_CONFIRM_SENDER, "message_text", "PHI", "no variable" },
	{ TEMPLATE_CONFIRM_SENDER, "sender_address", "a@b\nBcc: x", "line break" },
	{ TEMPLATE_REJECTION_NOTICE, "patient_name", "Ann", "no variable" },
	{ TEMPLATE_REJECTION_NOTICE, "explanation", NULL, "not given" },
	{ TEMPLATE_URGENT_ACK, "message_text", "PHI", "no variable" },
	{ TEMPLATE_URGENT_ACK, "emergency_text", "a\x1b[2J", "control" },
};

static void
test_render_refusals(void **state)
{
	struct template_set *set;

	(void)state;
	memset(huge, 'h', sizeof huge - 1);
	set = load_ok(NULL);
	for (size_t i = 0; i < sizeof ecases / sizeof ecases[0]; i++) {
		const struct ecase *c = &ecases[i];
		const struct template_var *base = c->kind == TEMPLATE_MAGIC_LINK ?
		    v_magic : c->kind == TEMPLATE_NOTIFY_PHI_FREE ? v_phi_free :
		    c->kind == TEMPLATE_NOTIFY_FULL_TEXT ? v_full :
		    c->kind == TEMPLATE_CONFIRM_SENDER ? v_confirm :
		    c->kind == TEMPLATE_REJECTION_NOTICE ? v_reject :
		    c->kind == TEMPLATE_URGENT_ACK ? v_urgent : v_test;
		size_t nbase = c->kind == TEMPLATE_MAGIC_LINK ? 4 :
		    c->kind == TEMPLATE_NOTIFY_PHI_FREE ? 2 :
		    c->kind == TEMPLATE_NOTIFY_FULL_TEXT ? 5 :
		    c->kind == TEMPLATE_CONFIRM_SENDER ? 4 :
		    c->kind == TEMPLATE_REJECTION_NOTICE ? 3 :
		    c->kind == TEMPLATE_URGENT_ACK ? 2 : 2;
		struct template_var vars[8];
		size_t n = 0;
		bool replaced = false;
		struct template_mail m;
		struct err err = { 0 };

		for (size_t k = 0; k < nbase; k++) {
			if (strcmp(base[k].name, c->name) == 0 &&
			    strcmp(c->why, "given twice") != 0) {
				replaced = true;
				if (c->value == NULL)
					continue;
				vars[n++] = (struct template_var){ c->name,
					c->value };
			} else {
				vars[n++] = base[k];
			}
		}
		if (!replaced && c->value != NULL)
			vars[n++] = (struct template_var){ c->name, c->value };
		memset(&m, 0xff, sizeof m);
		if (template_render(set, c->kind, true, vars, n, &m, &err) != -1)
			fail_msg("case %zu: rendered:\n%s", i, m.text);
		assert_null(m.subject);
		assert_null(m.text);
		assert_null(m.html);
		if (strstr(err.msg, c->why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg,
			    c->why);
	}
	template_set_free(&set);
}

/* ------------------------------------------------------------ overrides */

static char tmpdir[64];

static void
write_file(const char *name, const char *content, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
clear_dir(void)
{
	static const char *const names[] = { "magic_link.txt",
		"magic_link.html", "notify_phi_free.txt", "notify_phi_free.html",
		"notify_full_text.txt", "notify_full_text.html", "test.txt",
		"test.html" };
	char path[256];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		if (unlink(path) < 0 && errno == EISDIR)
			assert_int_equal(rmdir(path), 0);
		else
			(void)rmdir(path);
	}
}

struct ocase {
	const char *file;
	const char *content;             /* NULL: big (over the cap) */
	const char *why;                 /* NULL: loads; else the error has it */
};

static const struct ocase ocases[] = {
	/* good overrides */
	{ "magic_link.txt", "Subject: Anmeldung bei {{practice_name}}\n\n"
	  "Link: {{link}}\nCode: {{code}} ({{minutes}} min)\n", NULL },
	{ "magic_link.txt", "Subject: CRLF {{code}}\r\n\r\nbody\r\n", NULL },
	{ "test.html", "<p style=\"color:#333\">{{practice_name}} "
	  "{{sent_at}} }} { {</p>\n", NULL },
	{ "notify_full_text.html", "<div>{{message_text}}</div>", NULL },
	/* errors, each naming file:line */
	{ "magic_link.txt", "Subject: x\n\nline 3\nline 4\nhi {{patient_name}}\n",
	  "magic_link.txt:5: unknown variable {{patient_name}} (magic_link "
	  "knows: practice_name, link, code, minutes)" },
	{ "magic_link.html", "<p>\n</p>\n<p>{{message_text}}</p>",
	  "magic_link.html:3: unknown variable {{message_text}}" },
	{ "notify_phi_free.txt", "Subject: x\n\n{{patient_name}}",
	  "notify_phi_free.txt:3: unknown variable {{patient_name}}" },
	{ "test.txt", "Subject: x\n\n{{ practice_name }}", "test.txt:3: a {{" },
	{ "test.txt", "Subject: x\n\n\n{{practice_name", "test.txt:4: a {{" },
	{ "test.txt", "Subject: x\n\n{{}}", "test.txt:3: a {{" },
	{ "test.txt", "Subject: x\n\n{{Practice_Name}}", "test.txt:3: a {{" },
	{ "test.txt", "Subject: x\n\n{{practice_name}", "test.txt:3: a {{" },
	{ "test.txt", "Subject: {{nope}}\n\nx", "test.txt:1: unknown variable" },
	{ "test.txt", "x\n\nbody", "test.txt:1: the first line" },
	{ "test.txt", "Subject: x\nbody", "test.txt:2: an empty line" },
	{ "test.txt", "Subject:   \n\nbody", "test.txt:1: empty subject" },
	{ "test.txt", "", "test.txt:1: the first line" },
	{ "notify_full_text.txt", "Subject: {{message_text}}\n\nx",
	  "notify_full_text.txt:1: {{message_text}} spans lines" },
	{ "test.html", "<p>ok</p>\n<script>alert(1)</script>",
	  "test.html:2: <script is not allowed" },
	{ "test.html", "<p>\n\n<IMG SRC=\"https://tracker.test/p.gif\">",
	  "test.html:3: <img is not allowed" },
	{ "test.html", "<a href=\"#\"\n onclick=\"x()\">a</a>",
	  "test.html:2: event handler" },
	{ "test.html", "<p style=\"background:url(https://x.test/a.png)\">",
	  "test.html:1: url( is not allowed" },
	{ "test.html", "<a href=\"javascript:alert(1)\">x</a>",
	  "test.html:1: javascript: is not allowed" },
	{ "test.html", "<table background=\"https://x.test/a.png\">",
	  "test.html:1: background= is not allowed" },
	{ "test.html", "<style>p{}</style>", "test.html:1: <style" },
	{ "test.html", "<html><body>x</body></html>", "test.html:1: <html" },
	{ "test.html", "ok\n\x01", "test.html:2: a control character" },
	{ "test.html", "bad \xc3\x28", "test.html: invalid UTF-8" },
	{ "test.html", NULL, "larger than 65536 bytes" },
};

static void
test_overrides(void **state)
{
	static char big[LIMIT_TEMPLATE_FILE + 2];
	struct template_set *set = NULL;

	(void)state;
	memset(big, 'b', sizeof big - 1);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/postern-tpl.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	for (size_t i = 0; i < sizeof ocases / sizeof ocases[0]; i++) {
		const struct ocase *c = &ocases[i];
		struct err err = { 0 };
		int rc;

		clear_dir();
		if (c->content != NULL)
			write_file(c->file, c->content, strlen(c->content));
		else
			write_file(c->file, big, sizeof big - 1);
		rc = template_set_load(tmpdir, &set, &err);
		if (c->why == NULL) {
			if (rc < 0)
				fail_msg("case %zu (%s): %s", i, c->file, err.msg);
			template_set_free(&set);
			continue;
		}
		if (rc != -1)
			fail_msg("case %zu (%s): loaded", i, c->file);
		assert_null(set);
		if (strstr(err.msg, c->why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg,
			    c->why);
		/* the path in the message is the file's */
		if (strstr(err.msg, tmpdir) == NULL)
			fail_msg("case %zu: \"%s\" does not name the file", i,
			    err.msg);
	}

	/* An override replaces the built-in; the other file stays built in. */
	{
		struct template_mail m;
		struct err err = { 0 };

		clear_dir();
		write_file("magic_link.txt", ocases[0].content,
		    strlen(ocases[0].content));
		write_file("test.html", ocases[2].content,
		    strlen(ocases[2].content));
		set = load_ok(tmpdir);
		if (template_render(set, TEMPLATE_MAGIC_LINK, true, V(v_magic),
		    &m, &err) < 0)
			fail_msg("render: %s", err.msg);
		assert_string_equal(m.subject, "Anmeldung bei Praxis "
		    "M\xc3\xbcller & Partner");
		assert_non_null(strstr(m.text, "Code: 482 913 (15 min)\n"));
		assert_true(strncmp(m.text, TEMPLATE_SEPARATOR_HEAD,
		    strlen(TEMPLATE_SEPARATOR_HEAD)) == 0);
		assert_non_null(strstr(m.html, ">Sign in</a>"));   /* built-in */
		template_mail_fini(&m);
		if (template_render(set, TEMPLATE_TEST, false, V(v_test), &m,
		    &err) < 0)
			fail_msg("render: %s", err.msg);
		assert_non_null(strstr(m.html, "<p style=\"color:#333\">&lt;img "
		    "src=x onerror=alert(1)&gt; 2026-09-21 14:13 UTC }} { {</p>"));
		check_html_shell("override", m.html, false);
		template_mail_fini(&m);
		template_set_free(&set);
	}

	/* The directory itself: missing, a file; a template that is a
	 * directory. */
	{
		char path[128];
		struct err err = { 0 };

		clear_dir();
		snprintf(path, sizeof path, "%s/test.txt", tmpdir);
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(template_set_load(tmpdir, &set, &err), -1);
		assert_non_null(strstr(err.msg, "not a regular file"));
		clear_dir();
		write_file("test.txt", "Subject: x\n\ny", 13);
		snprintf(path, sizeof path, "%s/test.txt", tmpdir);
		assert_int_equal(template_set_load(path, &set, &err), -1);
		assert_non_null(strstr(err.msg, "not a directory"));
		snprintf(path, sizeof path, "%s/none", tmpdir);
		assert_int_equal(template_set_load(path, &set, &err), -1);
		assert_non_null(strstr(err.msg, "No such file"));
		/* "" means built-ins, like NULL */
		set = load_ok("");
		template_set_free(&set);
		clear_dir();
	}
	assert_int_equal(rmdir(tmpdir), 0);
}

static void
test_kind_names(void **state)
{
	static const char *const names[TEMPLATE_KINDS] = { "magic_link",
		"notify_phi_free", "notify_full_text", "test", "confirm_sender",
		"rejection_notice", "urgent_ack" };
	enum template_kind k;

	(void)state;
	for (int i = 0; i < TEMPLATE_KINDS; i++) {
		assert_string_equal(template_kind_name((enum template_kind)i),
		    names[i]);
		assert_int_equal(template_kind_parse(names[i], &k), 0);
		assert_int_equal(k, i);
	}
	assert_null(template_kind_name((enum template_kind)TEMPLATE_KINDS));
	assert_null(template_kind_name((enum template_kind)-1));
	assert_int_equal(template_kind_parse("Magic_Link", &k), -1);
	assert_int_equal(template_kind_parse("", &k), -1);
	assert_int_equal(template_kind_parse(NULL, &k), -1);
	/* the separator constants fit together */
	assert_non_null(strstr(SEP_TEXT("X"), TEMPLATE_SEPARATOR_MARK));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_table),
		cmocka_unit_test(test_render_refusals),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
