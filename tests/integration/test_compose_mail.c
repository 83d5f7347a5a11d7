/* tests/integration/test_compose_mail.c: a composed message through the
 * real mail stack (tests/harness/mailstack.sh: Postfix with STARTTLS, then
 * Dovecot), read back over IMAP and parsed with libetpan.
 *
 *   tests/harness/mailstack.sh start DIR
 *   eval "$(tests/harness/mailstack.sh env DIR)"
 *   build/tests/test_compose_mail
 *
 * Without the MAILSTACK_* variables the run FAILS (it never skips).
 *
 * 1. A notification (template notify_full_text: text + HTML), a PDF-ish
 *    attachment and a calendar, a non-ASCII practice, patient and subject,
 *    Reply-To reply+TOKEN and envelope sender bounce+TOKEN: what arrives
 *    holds what was sent byte for byte; headers decode, both bodies and
 *    both attachments are intact, Reply-To's token and Return-Path's
 *    token verify.
 * 2. A reply to that Reply-To, its local part upper-cased as some MTAs
 *    and clients do: it lands in the reply mailbox, and the token in
 *    Delivered-To still verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libetpan/libetpan.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/limits.h"
#include "mailer/compose.h"
#include "mailer/imap.h"
#include "mailer/smtp.h"
#include "tests/integration/stack_env.h"
#include "mailer/template.h"
#include "mailer/token.h"

#define POLL_TIMEOUT_MS 10000
#define POLL_STEP_MS 50
#define IO_TIMEOUT_S 10
#define PATIENT "patient1@patients.test"
#define THREAD_ID 4242
#define DELIVERY_ID 777

static struct {
	const char *host;
	const char *password;
	const char *ca;
	unsigned smtp, imap;
} stack;

static struct token_key keys[2];        /* reply and bounce, key id 1 */
static char run_id[64];

static void
send_mail(const char *from, const char *rcpt, const struct buf *msg)
{
	char url[128];
	struct smtp_opts o = { .url = url, .tls = SMTP_TLS_REQUIRED,
		.ca_file = stack.ca, .connect_timeout_s = IO_TIMEOUT_S,
		.timeout_s = IO_TIMEOUT_S };
	struct smtp_conn *s = NULL;
	struct smtp_result res;
	struct err err = { 0 };

	snprintf(url, sizeof url, "smtp://%s:%u/postern-compose", stack.host,
	    stack.smtp);
	if (smtp_open(&o, &s, &err) < 0)
		fail_msg("smtp_open: %s", err.msg);
	if (smtp_send(s, from, &rcpt, 1, msg->data, msg->len, &res, &err) < 0)
		fail_msg("smtp_send: %s", err.msg);
	assert_int_equal(res.code, 250);
	smtp_close(&s);
}

/* Polls user's INBOX (STARTTLS) until a message holding needle arrives. */
static void
wait_for(const char *user, const char *needle, struct buf *raw)
{
	struct imap_opts o = { .host = stack.host, .port = stack.imap,
		.tls = IMAP_TLS_STARTTLS, .ca_file = stack.ca,
		.username = user, .password = stack.password,
		.timeout_s = IO_TIMEOUT_S };
	struct imap_conn *c = NULL;
	struct err err = { 0 };
	int64_t deadline = now_ms() + POLL_TIMEOUT_MS;
	uint32_t last = 0;

	if (imap_open(&o, &c, &err) < 0)
		fail_msg("imap_open %s: %s", user, err.msg);
	for (;;) {
		uint32_t validity, next, *uids = NULL;
		size_t n = 0;
		bool found = false;

		if (imap_select(c, "INBOX", &validity, &next, &err) < 0)
			fail_msg("imap_select: %s", err.msg);
		if (imap_uids_after(c, last, 100, &uids, &n, &err) < 0)
			fail_msg("imap_uids_after: %s", err.msg);
		for (size_t i = 0; i < n && !found; i++) {
			buf_reset(raw);
			if (imap_fetch(c, uids[i], LIMIT_MAIL_SIZE, raw, &err) < 0)
				fail_msg("imap_fetch: %s", err.msg);
			found = raw->len > 0 && strstr(buf_str(raw), needle);
			last = uids[i];
		}
		free(uids);
		if (found)
			break;
		if (now_ms() > deadline)
			fail_msg("no message with %s in %s's INBOX after %d ms",
			    needle, user, POLL_TIMEOUT_MS);
		usleep(POLL_STEP_MS * 1000);
	}
	imap_close(&c);
}

/* ------------------------------------------------------------ parsing back */

struct leaf {
	char type[96];
	char filename[LIMIT_MAIL_FILENAME + 1];
	char *body;
	size_t len;
};

struct parsed {
	char structure[256];
	struct leaf leaves[8];
	size_t n;
};

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* filename="x", or RFC 2231 filename*= / filename*N*= decoded. */
static void
filename_of(struct mailmime_fields *fields, char *out, size_t size)
{
	char segs[16][300] = { { 0 } };
	size_t nseg = 0, o = 0;

	out[0] = '\0';
	for (clistiter *it = fields ? clist_begin(fields->fld_list) : NULL; it;
	    it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		if (f->fld_type != MAILMIME_FIELD_DISPOSITION)
			continue;
		for (clistiter *jt = clist_begin(f->fld_data.fld_disposition->
		    dsp_parms); jt; jt = clist_next(jt)) {
			struct mailmime_disposition_parm *pa = clist_content(jt);
			const char *name;
			size_t k = 0;

			if (pa->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME) {
				snprintf(out, size, "%s", pa->pa_data.pa_filename);
				return;
			}
			if (pa->pa_type != MAILMIME_DISPOSITION_PARM_PARAMETER)
				continue;
			name = pa->pa_data.pa_parameter->pa_name;
			if (strncasecmp(name, "filename*", 9) != 0)
				continue;
			if (name[9] != '\0')
				k = strtoul(name + 9, NULL, 10);
			assert_true(k < 16);
			snprintf(segs[k], sizeof segs[k], "%s",
			    pa->pa_data.pa_parameter->pa_value);
			if (k + 1 > nseg)
				nseg = k + 1;
		}
	}
	if (nseg == 0)
		return;
	assert_true(strncasecmp(segs[0], "utf-8''", 7) == 0);
	for (size_t k = 0; k < nseg; k++)
		for (const char *p = segs[k] + (k ? 0 : 7); *p && o + 1 < size; p++) {
			if (*p == '%') {
				out[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
				p += 2;
			} else {
				out[o++] = *p;
			}
		}
	out[o] = '\0';
}

static void
walk(struct mailmime *m, struct parsed *p)
{
	MMAPString *s;
	int col = 0;
	size_t n;

	if (m->mm_type == MAILMIME_MESSAGE) {
		walk(m->mm_data.mm_message.mm_msg_mime, p);
		return;
	}
	s = mmap_string_new("");
	assert_int_equal(mailmime_content_type_write_mem(s, &col,
	    m->mm_content_type), 0);
	n = strlen(p->structure);
	snprintf(p->structure + n, sizeof p->structure - n, "%.*s",
	    (int)strcspn(s->str, ";"), s->str);
	if (m->mm_type == MAILMIME_MULTIPLE) {
		bool first = true;

		strncat(p->structure, "[", sizeof p->structure -
		    strlen(p->structure) - 1);
		for (clistiter *it = clist_begin(m->mm_data.mm_multipart.
		    mm_mp_list); it; it = clist_next(it)) {
			if (!first)
				strncat(p->structure, ",", sizeof p->structure -
				    strlen(p->structure) - 1);
			first = false;
			walk(clist_content(it), p);
		}
		strncat(p->structure, "]", sizeof p->structure -
		    strlen(p->structure) - 1);
	} else {
		struct leaf *l = &p->leaves[p->n++];
		struct mailmime_data *d = m->mm_data.mm_single;
		char *dec = NULL;
		size_t idx = 0, declen = 0;

		snprintf(l->type, sizeof l->type, "%.*s",
		    (int)strcspn(s->str, ";"), s->str);
		filename_of(m->mm_mime_fields, l->filename, sizeof l->filename);
		assert_int_equal(mailmime_part_parse(d->dt_data.dt_text.dt_data,
		    d->dt_data.dt_text.dt_length, &idx, d->dt_encoding, &dec,
		    &declen), MAILIMF_NO_ERROR);
		l->body = malloc(declen + 1);
		memcpy(l->body, dec, declen);
		l->body[declen] = '\0';
		l->len = declen;
		mmap_string_unref(dec);
	}
	mmap_string_free(s);
}

/* Unfolds and decodes RFC 2047 B words (utf-8), exactly. */
static void
decode_exact(const char *raw, char *out, size_t size)
{
	size_t o = 0;
	bool after_word = false;
	const char *ws = NULL;

	while (*raw == ' ')
		raw++;
	for (const char *p = raw; *p;) {
		const char *end;

		if (p[0] == '\r' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (*p == ' ' || *p == '\t') {
			if (ws == NULL)
				ws = p;
			p++;
			continue;
		}
		if (strncasecmp(p, "=?utf-8?B?", 10) == 0 &&
		    (end = strstr(p + 10, "?=")) != NULL) {
			size_t binlen = 0;

			if (!after_word && ws != NULL) {
				memcpy(out + o, ws, (size_t)(p - ws));
				o += (size_t)(p - ws);
			}
			ws = NULL;
			assert_int_equal(sodium_base642bin((unsigned char *)out + o,
			    size - o - 1, p + 10, (size_t)(end - p - 10), NULL,
			    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
			o += binlen;
			p = end + 2;
			after_word = true;
			continue;
		}
		if (ws != NULL) {
			memcpy(out + o, ws, (size_t)(p - ws));
			o += (size_t)(p - ws);
			ws = NULL;
		}
		assert_true(o + 1 < size);
		out[o++] = *p++;
		after_word = false;
	}
	out[o] = '\0';
}

/* The unfolded value of the first header `name` of a raw message. */
static void
raw_header(const char *msg, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	for (const char *p = msg; *p && !(p[0] == '\r' && p[1] == '\n');
	    p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			size_t o = 0;
			const char *v = p + nl + 1;

			for (;;) {
				const char *e = strstr(v, "\r\n");
				size_t k = (size_t)(e - v);

				assert_true(o + k < size);
				memcpy(out + o, v, k);
				o += k;
				if (e[2] != ' ' && e[2] != '\t')
					break;
				v = e + 2;
			}
			out[o] = '\0';
			return;
		}
	}
	fail_msg("no %s header", name);
}

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

/* ------------------------------------------------------------ the tests */

static char reply_addr[TOKEN_ADDRESS_SIZE];

static void
test_notification_round_trip(void **state)
{
	static const char practice[] = "Praxis Dr. M\xc3\xbcller \xe2\x80\x93 "
	    "Zo\xc3\xab's Clinic";
	static const char patient[] = "Zo\xc3\xab O'Brien-\xc5\x81\xc3\xb3" "d\xc5\xba";
	static const char ics[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "METHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Termin\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n";
	const struct template_var vars[] = {
		{ "practice_name", practice },
		{ "link", "https://portal.practice.test/m/4242" },
		{ "patient_name", patient },
		{ "staff_name", "Dr. M\xc3\xbcller" },
		{ "message_text", "Ihre Werte sind gut.\n\n"
		  "> a quoted line\n.a dot line\nFrom a line\n\xf0\x9f\x98\x80" },
	};
	uint8_t pdf[20000];
	char subject[256], msgid[COMPOSE_MSGID_NEW_SIZE],
	    bounce[TOKEN_ADDRESS_SIZE], got[1024], name[256];
	struct template_set *set = NULL;
	struct template_mail tm;
	struct compose_attachment att[2];
	struct compose_mail m;
	struct buf msg, raw;
	struct err err = { 0 };
	struct mailmime *top = NULL;
	struct parsed p = { .n = 0 };
	struct token_info info;
	size_t idx = 0;
	int64_t now = time(NULL);
	char *want;

	(void)state;
	randombytes_buf(pdf, sizeof pdf);
	memcpy(pdf, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15);
	if (token_address_make(TOKEN_REPLY, THREAD_ID, now + 90 * 86400,
	    &keys[0], "Practice.Test", reply_addr, sizeof reply_addr, &err) < 0 ||
	    token_address_make(TOKEN_BOUNCE, DELIVERY_ID, now + 7 * 86400,
	    &keys[1], "practice.test", bounce, sizeof bounce, &err) < 0 ||
	    compose_message_id_new("practice.test", msgid, sizeof msgid,
	    &err) < 0)
		fail_msg("tokens: %s", err.msg);
	if (template_set_load(NULL, &set, &err) < 0 ||
	    template_render(set, TEMPLATE_NOTIFY_FULL_TEXT, true, vars,
	    sizeof vars / sizeof vars[0], &tm, &err) < 0)
		fail_msg("template: %s", err.msg);
	snprintf(subject, sizeof subject, "%s \xe2\x80\x94 Befund f\xc3\xbcr "
	    "Sie %s", tm.subject, run_id);
	att[0] = (struct compose_attachment){ "Befund M\xc3\xa4rz 2026.pdf",
		"application/pdf", pdf, sizeof pdf };
	att[1] = (struct compose_attachment){ "termin.ics",
		"text/calendar; method=REQUEST", (const uint8_t *)ics,
		sizeof ics - 1 };
	m = (struct compose_mail){
		.from = { practice, "noreply@practice.test" },
		.to = { patient, PATIENT },
		.reply_to = { practice, reply_addr },
		.subject = subject, .message_id = msgid,
		.auto_submitted = true,
		.text = tm.text, .html = tm.html,
		.attachments = att, .n_attachments = 2,
	};
	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (compose_build(&m, &msg, &err) < 0)
		fail_msg("compose_build: %s", err.msg);
	send_mail(bounce, PATIENT, &msg);

	buf_init(&raw, LIMIT_MAIL_SIZE);
	wait_for(PATIENT, msgid, &raw);
	/* what we sent arrived unchanged, below the headers the MTAs added */
	assert_true(raw.len > msg.len);
	assert_memory_equal(raw.data + raw.len - msg.len, msg.data, msg.len);

	/* the envelope sender: VERP bounce token */
	raw_header(raw.data, "Return-Path", got, sizeof got);
	assert_int_equal(token_verify_address(got, "practice.test", now, keys, 2,
	    &info, &err), TOKEN_VALID);
	assert_int_equal(info.kind, TOKEN_BOUNCE);
	assert_int_equal(info.id, DELIVERY_ID);
	/* Reply-To: the thread's token */
	raw_header(raw.data, "Reply-To", got, sizeof got);
	assert_int_equal(token_verify_address(got, "practice.test", now, keys, 2,
	    &info, &err), TOKEN_VALID);
	assert_int_equal(info.kind, TOKEN_REPLY);
	assert_int_equal(info.id, THREAD_ID);
	/* encoded headers decode */
	raw_header(raw.data, "Subject", got, sizeof got);
	decode_exact(got, name, sizeof name);
	assert_string_equal(name, subject);
	raw_header(raw.data, "From", got, sizeof got);
	decode_exact(got, name, sizeof name);
	assert_non_null(strstr(name, practice));
	assert_non_null(strstr(name, "<noreply@practice.test>"));
	raw_header(raw.data, "To", got, sizeof got);
	decode_exact(got, name, sizeof name);
	assert_non_null(strstr(name, patient));
	raw_header(raw.data, "Auto-Submitted", got, sizeof got);
	assert_string_equal(got, " auto-generated");

	/* structure, bodies, attachments */
	assert_int_equal(mailmime_parse(raw.data, raw.len, &idx, &top),
	    MAILIMF_NO_ERROR);
	walk(top, &p);
	assert_string_equal(p.structure, "multipart/mixed[multipart/alternative"
	    "[text/plain,text/html],application/pdf,text/calendar]");
	want = crlf(tm.text);
	assert_int_equal(p.leaves[0].len, strlen(want));
	assert_memory_equal(p.leaves[0].body, want, strlen(want));
	assert_true(strncmp(p.leaves[0].body, TEMPLATE_SEPARATOR_HEAD,
	    strlen(TEMPLATE_SEPARATOR_HEAD)) == 0);
	free(want);
	want = crlf(tm.html);
	assert_int_equal(p.leaves[1].len, strlen(want));
	assert_memory_equal(p.leaves[1].body, want, strlen(want));
	free(want);
	assert_int_equal(p.leaves[2].len, sizeof pdf);
	assert_memory_equal(p.leaves[2].body, pdf, sizeof pdf);
	assert_string_equal(p.leaves[2].filename, att[0].filename);
	assert_int_equal(p.leaves[3].len, sizeof ics - 1);
	assert_memory_equal(p.leaves[3].body, ics, sizeof ics - 1);
	assert_string_equal(p.leaves[3].filename, "termin.ics");
	print_message("delivered %zu bytes (%zu sent), %s\n", raw.len, msg.len,
	    msgid);

	for (size_t i = 0; i < p.n; i++)
		free(p.leaves[i].body);
	mailmime_free(top);
	buf_fini(&raw);
	buf_fini(&msg);
	template_mail_fini(&tm);
	template_set_free(&set);
}

/* The patient answers; their client (or an MTA) upper-cases the local
 * part. Postfix's "+" delimiter still delivers it to reply@, and the
 * token in Delivered-To verifies. */
static void
test_reply_to_token_address(void **state)
{
	char upper[TOKEN_ADDRESS_SIZE], msgid[COMPOSE_MSGID_NEW_SIZE],
	    got[512];
	struct compose_mail m;
	struct buf msg, raw;
	struct err err = { 0 };
	struct token_info info;
	char *at;

	(void)state;
	assert_true(reply_addr[0] != '\0');      /* made by the test above */
	snprintf(upper, sizeof upper, "%s", reply_addr);
	at = strchr(upper, '@');
	for (char *q = upper; q < at; q++)
		if (*q >= 'a' && *q <= 'z')
			*q = (char)(*q - 32);
	assert_true(strncmp(upper, "REPLY+", 6) == 0);
	if (compose_message_id_new("patients.test", msgid, sizeof msgid,
	    &err) < 0)
		fail_msg("%s", err.msg);
	m = (struct compose_mail){
		.from = { "Zo\xc3\xab", PATIENT },
		.to = { NULL, upper },
		.subject = "Re: your message", .message_id = msgid,
		.text = "Thank you!\n\n> " TEMPLATE_SEPARATOR_HEAD "x\n",
	};
	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (compose_build(&m, &msg, &err) < 0)
		fail_msg("compose_build: %s", err.msg);
	send_mail(PATIENT, upper, &msg);
	buf_init(&raw, LIMIT_MAIL_SIZE);
	wait_for("reply@practice.test", msgid, &raw);
	raw_header(raw.data, "Delivered-To", got, sizeof got);
	print_message("Delivered-To:%s\n", got);
	assert_int_equal(token_verify_address(got, "practice.test", time(NULL),
	    keys, 2, &info, &err), TOKEN_VALID);
	assert_int_equal(info.id, THREAD_ID);
	raw_header(raw.data, "To", got, sizeof got);
	assert_int_equal(token_verify_address(got, NULL, time(NULL), keys, 2,
	    &info, &err), TOKEN_VALID);
	buf_fini(&raw);
	buf_fini(&msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notification_round_trip),
		cmocka_unit_test(test_reply_to_token_address),
	};
	struct timespec ts;
	struct err err = { 0 };
	uint8_t server_key[CRYPTO_KEY_BYTES];
	int missing = 0;

	stack.host = need_env("test_compose_mail", "MAILSTACK_HOST", &missing);
	stack.password = need_env("test_compose_mail", "MAILSTACK_PASSWORD", &missing);
	stack.ca = need_env("test_compose_mail", "MAILSTACK_CA", &missing);
	stack.smtp = port_of(need_env("test_compose_mail", "MAILSTACK_SMTP_PORT", &missing));
	stack.imap = port_of(need_env("test_compose_mail", "MAILSTACK_IMAP_PORT", &missing));
	if (missing > 0) {
		fprintf(stderr, "test_compose_mail: FAIL: start the stack and "
		    "export its variables first:\n"
		    "  tests/harness/mailstack.sh start DIR && "
		    "eval \"$(tests/harness/mailstack.sh env DIR)\"\n");
		return 1;
	}
	if (!stack.smtp || !stack.imap) {
		fprintf(stderr, "test_compose_mail: FAIL: a MAILSTACK_*_PORT "
		    "is not a port number\n");
		return 1;
	}
	if (crypto_init(&err) < 0)
		return 1;
	randombytes_buf(server_key, sizeof server_key);
	token_key_init(&keys[0], 1, TOKEN_REPLY, server_key);
	token_key_init(&keys[1], 1, TOKEN_BOUNCE, server_key);
	sodium_memzero(server_key, sizeof server_key);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(run_id, sizeof run_id, "%lld.%09ld.%d", (long long)ts.tv_sec,
	    ts.tv_nsec, (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
