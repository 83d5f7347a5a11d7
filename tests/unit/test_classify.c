/* tests/unit/test_classify.c: reply / auto-reply / bounce classification
 * from headers, and the delivery-status parser. One table each; the
 * header sets are modelled on what Exchange, Gmail, Postfix, Exim,
 * Sendmail and vacation programs send, with made-up addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailer/classify.h"

#define TOK "abcdefghijklmnopqrstuvwxyz234567abcdefgh"   /* 40 base32 */
#define BOUNCE_ADDR "bounce+" TOK "@bounce.oak.test"
#define REPLY_ADDR "reply+" TOK "@oak.test"
#define PATIENT "Sam Park <sam@example.test>"

/* One header set; rcpt is one To/Delivered-To value (or NULL). */
struct ccase {
	const char *what;
	const char *from, *return_path, *auto_submitted, *precedence;
	const char *x_autoreply, *x_autorespond, *subject, *content_type;
	const char *rcpt, *rcpt2;
	enum classify_kind want;
	const char *reason;       /* a substring of the reason */
};

#define A CLASSIFY_AUTO_REPLY
#define B CLASSIFY_BOUNCE
#define R CLASSIFY_REPLY
#define U CLASSIFY_UNKNOWN

static const struct ccase ccases[] = {
	/* what, from, return_path, auto_submitted, precedence, x_autoreply,
	 * x_autorespond, subject, content_type, rcpt, rcpt2, want, reason */
	{ "plain reply", PATIENT, "<sam@example.test>", NULL, NULL, NULL, NULL,
	  "Re: New message from Oak Clinic", "text/plain; charset=utf-8",
	  REPLY_ADDR, NULL, R, "no sign" },
	{ "reply, Return-Path unknown", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Re: hi", NULL, REPLY_ADDR, NULL, R, "" },
	{ "Auto-Submitted: no is a person", PATIENT, "<sam@example.test>", "no",
	  NULL, NULL, NULL, "Re: hi", NULL, NULL, NULL, R, "" },
	{ "Auto-Submitted: auto-replied (Gmail vacation)", PATIENT,
	  "<sam@example.test>", "auto-replied", NULL, NULL, NULL, "Re: hi",
	  NULL, NULL, NULL, A, "auto-submitted: auto-replied" },
	{ "Auto-Submitted with parameters and case", PATIENT, "<sam@example.test>",
	  "Auto-Generated; owner-email=\"x@example.test\"", NULL, NULL, NULL,
	  "hi", NULL, NULL, NULL, A, "Auto-Generated" },
	{ "Auto-Submitted: auto-notified", PATIENT, NULL, "auto-notified (x)",
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, A, "auto-notified" },
	{ "Auto-Submitted empty: ignored", PATIENT, NULL, "  ", NULL, NULL,
	  NULL, "Re: hi", NULL, NULL, NULL, R, "" },
	{ "Exchange out of office", PATIENT, "<sam@example.test>", "auto-replied",
	  NULL, NULL, NULL, "Automatic reply: New message from Oak Clinic",
	  NULL, BOUNCE_ADDR, NULL, A, "auto-submitted" },
	{ "OOO subject only (English)", PATIENT, "<sam@example.test>", NULL,
	  NULL, NULL, NULL, "Out of Office: back Monday", NULL, NULL, NULL, A,
	  "out-of-office subject" },
	{ "OOO subject German", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Abwesenheitsnotiz: Neue Nachricht", NULL, NULL, NULL, A, "Abwesenheit" },
	{ "OOO subject German Exchange", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Automatische Antwort: Neue Nachricht", NULL, NULL, NULL, A, "" },
	{ "OOO subject French", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "R\xc3\xa9ponse automatique : Nouveau message", NULL, NULL, NULL, A, "" },
	{ "OOO subject Spanish", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Respuesta autom\xc3\xa1tica: Nuevo mensaje", NULL, NULL, NULL, A, "" },
	{ "OOO subject Italian", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Risposta automatica: Nuovo messaggio", NULL, NULL, NULL, A, "" },
	{ "OOO subject Dutch", PATIENT, NULL, NULL, NULL, NULL, NULL,
	  "Automatisch antwoord: Nieuw bericht", NULL, NULL, NULL, A, "" },
	{ "'Re: out of office?' from a person is a reply", PATIENT, NULL, NULL,
	  NULL, NULL, NULL, "Re: out of office hours?", NULL, NULL, NULL, R, "" },
	{ "X-Autoreply: yes", PATIENT, NULL, NULL, NULL, "yes", NULL, "Re: hi",
	  NULL, NULL, NULL, A, "x-autoreply" },
	{ "X-Autorespond", PATIENT, NULL, NULL, NULL, NULL, "1", "Re: hi", NULL,
	  NULL, NULL, A, "x-autorespond" },
	{ "X-Autoreply: no", PATIENT, NULL, NULL, NULL, "no", NULL, "Re: hi",
	  NULL, NULL, NULL, R, "" },
	{ "Precedence: bulk", PATIENT, NULL, NULL, "bulk", NULL, NULL, "Re: hi",
	  NULL, NULL, NULL, A, "precedence: bulk" },
	{ "Precedence: JUNK", PATIENT, NULL, NULL, "JUNK", NULL, NULL, NULL,
	  NULL, NULL, NULL, A, "JUNK" },
	{ "Precedence: list", PATIENT, NULL, NULL, "list", NULL, NULL, NULL,
	  NULL, NULL, NULL, A, "list" },
	{ "Precedence: auto_reply", PATIENT, NULL, NULL, "auto_reply", NULL,
	  NULL, NULL, NULL, NULL, NULL, A, "auto_reply" },
	{ "Precedence: first-class is not automatic", PATIENT, NULL, NULL,
	  "first-class", NULL, NULL, "Re: hi", NULL, NULL, NULL, R, "" },
	{ "null sender", PATIENT, "<>", NULL, NULL, NULL, NULL, "Re: hi", NULL,
	  NULL, NULL, A, "null sender" },
	{ "null sender, empty", PATIENT, "", NULL, NULL, NULL, NULL, "Re: hi",
	  NULL, NULL, NULL, A, "null sender" },
	{ "null sender with blanks", PATIENT, " < > ", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, A, "null sender" },
	{ "<x> is not null", PATIENT, "<x>", NULL, NULL, NULL, NULL, "Re: hi",
	  NULL, NULL, NULL, R, "" },
	{ "noreply sender", "Portal <noreply@service.test>", NULL, NULL, NULL,
	  NULL, NULL, "Your code", NULL, NULL, NULL, A, "sender: noreply" },
	{ "no-reply sender with suffix", "no-reply-alerts@service.test", NULL,
	  NULL, NULL, NULL, NULL, "hi", NULL, NULL, NULL, A, "no-reply" },
	{ "do-not-reply sender", "\"X\" <Do-Not-Reply@service.test>", NULL,
	  NULL, NULL, NULL, NULL, "hi", NULL, NULL, NULL, A, "Do-Not-Reply" },
	{ "postmaster, no bounce subject", "postmaster@example.test", NULL, NULL,
	  NULL, NULL, NULL, "Notice", NULL, NULL, NULL, A, "postmaster" },
	{ "a display name with <noreply> in quotes", "\"<noreply@x.test>\" <sam@example.test>",
	  NULL, NULL, NULL, NULL, NULL, "Re: hi", NULL, NULL, NULL, R, "" },
	/* Bounces. */
	{ "Postfix DSN", "MAILER-DAEMON@mx.example.test (Mail Delivery System)",
	  "<>", NULL, NULL, NULL, NULL, "Undelivered Mail Returned to Sender",
	  "multipart/report; report-type=delivery-status;\tboundary=\"x\"",
	  BOUNCE_ADDR, NULL, B, "delivery status report" },
	{ "Exchange NDR (quoted parameter, upper case)", "postmaster@corp.test",
	  "<>", "auto-replied", NULL, NULL, NULL, "Undeliverable: New message",
	  "Multipart/Report; Report-Type=\"Delivery-Status\"; boundary=b",
	  BOUNCE_ADDR, NULL, B, "delivery status" },
	{ "plain bounce to our VERP address", "MAILER-DAEMON@old.test", "<>",
	  NULL, NULL, NULL, NULL, "failure notice", "text/plain", NULL,
	  "Ann <" BOUNCE_ADDR ">", B, "bounce address" },
	{ "bounce address among others", "someone@x.test", "<>", NULL, NULL,
	  NULL, NULL, "hi", "text/plain", "\"Lee, Ann\" <a@x.test>, " BOUNCE_ADDR,
	  NULL, B, "bounce address" },
	{ "cut bounce token still counts", "someone@x.test", NULL, NULL, NULL,
	  NULL, NULL, "hi", NULL, "bounce+abc@bounce.oak.test", NULL, B,
	  "bounce address" },
	{ "auto-reply to our bounce address is an auto-reply", PATIENT,
	  "<sam@example.test>", "auto-replied", NULL, NULL, NULL, "Re: hi",
	  NULL, BOUNCE_ADDR, NULL, A, "auto-submitted" },
	{ "mailer-daemon bounce subject, no report", "Mail Delivery Subsystem <mailer-daemon@googlemail.test>",
	  "<>", NULL, NULL, NULL, NULL, "Delivery Status Notification (Failure)",
	  "text/plain", NULL, NULL, B, "bounce subject" },
	{ "read receipt (MDN)", PATIENT, "<sam@example.test>", NULL, NULL, NULL,
	  NULL, "Read: New message",
	  "multipart/report; report-type=disposition-notification; boundary=x",
	  REPLY_ADDR, NULL, A, "report: disposition-notification" },
	{ "multipart/report without report-type", PATIENT, NULL, NULL, NULL,
	  NULL, NULL, NULL, "multipart/report", NULL, NULL, A, "unknown" },
	{ "multipart/reportx is not a report", PATIENT, NULL, NULL, NULL, NULL,
	  NULL, "Re: hi", "multipart/reportx; report-type=delivery-status",
	  NULL, NULL, R, "" },
	/* Unknown. */
	{ "no From", NULL, NULL, NULL, NULL, NULL, NULL, "hi", NULL, NULL, NULL,
	  U, "no From" },
	{ "From without an address", "Undisclosed", NULL, NULL, NULL, NULL,
	  NULL, "hi", NULL, NULL, NULL, U, "no address" },
	{ "Precedence with a comment", PATIENT, NULL, NULL,
	  "bulk (x)", NULL, NULL, NULL, NULL, NULL, NULL, A, "precedence: bulk" },
};

static void
test_classify_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
		const struct ccase *c = &ccases[i];
		const char *rcpt[2] = { c->rcpt, c->rcpt2 };
		struct classify_headers h = {
			.from = c->from, .return_path = c->return_path,
			.auto_submitted = c->auto_submitted,
			.precedence = c->precedence,
			.x_autoreply = c->x_autoreply,
			.x_autorespond = c->x_autorespond,
			.subject = c->subject, .content_type = c->content_type,
			.rcpt = rcpt, .nrcpt = 2,
		};
		struct classify_result r;

		classify_mail(&h, &r);
		if (r.kind != c->want || strstr(r.reason, c->reason) == NULL)
			fail_msg("case %zu (%s): %s \"%s\", want %s \"%s\"", i,
			    c->what, classify_kind_name(r.kind), r.reason,
			    classify_kind_name(c->want), c->reason);
		assert_true(r.reason[0] != '\0');
		for (const char *p = r.reason; *p; p++)
			assert_true((unsigned char)*p >= 0x20);
	}
}

static void
test_classify_edges(void **state)
{
	struct classify_headers h = { 0 };
	struct classify_result r;
	const char *rcpt[] = { BOUNCE_ADDR };
	char big[LIMIT_CLASSIFY_VALUE * 2];

	(void)state;
	/* nothing at all */
	classify_mail(&h, &r);
	assert_int_equal(r.kind, CLASSIFY_UNKNOWN);
	/* bounce domain filter */
	h.from = "x@y.test";
	h.rcpt = rcpt;
	h.nrcpt = 1;
	h.bounce_domain = "other.test";
	classify_mail(&h, &r);
	assert_int_equal(r.kind, CLASSIFY_REPLY);
	h.bounce_domain = "Bounce.Oak.Test";
	classify_mail(&h, &r);
	assert_int_equal(r.kind, CLASSIFY_BOUNCE);
	/* a huge subject is read only up to the cap, and not NUL-needing
	 * beyond it */
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "Out of Office", 13);
	h = (struct classify_headers){ .from = "x@y.test", .subject = big };
	classify_mail(&h, &r);
	assert_int_equal(r.kind, CLASSIFY_AUTO_REPLY);
	assert_true(strlen(r.reason) < sizeof r.reason);
	/* control characters from outside never reach the reason */
	h = (struct classify_headers){ .from = "x@y.test",
	    .auto_submitted = "auto-replied\x1b[31m" };
	classify_mail(&h, &r);
	assert_null(strchr(r.reason, '\x1b'));
	/* our own mail looping back */
	{
		const char *self[] = { "clinic@oak.test", NULL };

		h = (struct classify_headers){ .from =
		    "\"Oak\" <Clinic@Oak.TEST>", .self = self, .nself = 2 };
		classify_mail(&h, &r);
		assert_int_equal(r.kind, CLASSIFY_AUTO_REPLY);
		assert_non_null(strstr(r.reason, "loop"));
		h.from = "Oak <clinic@oak.test.evil>";
		classify_mail(&h, &r);
		assert_int_equal(r.kind, CLASSIFY_REPLY);
		h.from = "Oak <" REPLY_ADDR ">";
		classify_mail(&h, &r);
		assert_int_equal(r.kind, CLASSIFY_AUTO_REPLY);
		assert_non_null(strstr(r.reason, "loop"));
	}
	assert_string_equal(classify_kind_name(CLASSIFY_BOUNCE), "bounce");
	assert_string_equal(classify_kind_name(CLASSIFY_AUTO_REPLY),
	    "auto_reply");
}

/* delivery-status parts */
struct dcase {
	const char *what;
	const char *in;
	int ret;
	const char *status, *action, *recipient;
	bool hard, soft;
	const char *diag;         /* substring, or NULL */
};

static const struct dcase dcases[] = {
	{ "Postfix hard bounce",
	  "Reporting-MTA: dns; mx.oak.test\nX-Postfix-Queue-ID: 4AB\n"
	  "Arrival-Date: Tue,  3 Mar 2026 10:02:11 +0000 (UTC)\n\n"
	  "Final-Recipient: rfc822; sam@example.test\n"
	  "Original-Recipient: rfc822;sam@example.test\nAction: failed\n"
	  "Status: 5.1.1\nRemote-MTA: dns; mx.example.test\n"
	  "Diagnostic-Code: smtp; 550 5.1.1 <sam@example.test>: Recipient\n"
	  "    address rejected: User unknown in local recipient table\n",
	  1, "5.1.1", "failed", "sam@example.test", true, false,
	  "550 5.1.1 <sam@example.test>: Recipient address rejected: User" },
	{ "Exim soft (delayed), CRLF",
	  "Reporting-MTA: dns; exim.test\r\n\r\nAction: delayed\r\n"
	  "Final-Recipient: rfc822;Sam@Example.TEST\r\nStatus: 4.4.7\r\n"
	  "Will-Retry-Until: Fri, 6 Mar 2026\r\n",
	  1, "4.4.7", "delayed", "sam@example.test", false, true, NULL },
	{ "Exchange: angle brackets, comment after status",
	  "Reporting-MTA: dns;EX1.corp.test\n\nFinal-recipient: RFC822; <sam@corp.test>\n"
	  "Action: Failed\nStatus: 5.2.2 (mailbox full)\n"
	  "Diagnostic-code: smtp;552 5.2.2 Mailbox full\n",
	  1, "5.2.2", "failed", "sam@corp.test", true, false, "552 5.2.2" },
	{ "no Final-Recipient: the original one",
	  "Original-Recipient: rfc822; ann@x.test\nAction: failed\nStatus: 5.0.0\n",
	  1, "5.0.0", "failed", "ann@x.test", true, false, NULL },
	{ "failed without Status is hard",
	  "Final-Recipient: rfc822; ann@x.test\nAction: failed\n",
	  1, "", "failed", "ann@x.test", true, false, NULL },
	{ "bad Status ignored, Action decides",
	  "Final-Recipient: rfc822; ann@x.test\nAction: delayed\nStatus: 9.x\n",
	  1, "", "delayed", "ann@x.test", false, true, NULL },
	{ "success DSN",
	  "Final-Recipient: rfc822; ann@x.test\nAction: delivered\nStatus: 2.0.0\n",
	  1, "2.0.0", "delivered", "ann@x.test", false, false, NULL },
	{ "two recipients: the failed one wins",
	  "Reporting-MTA: dns; m\n\n"
	  "Final-Recipient: rfc822; a@x.test\nAction: delayed\nStatus: 4.2.0\n\n"
	  "Final-Recipient: rfc822; b@x.test\nAction: failed\nStatus: 5.7.1\n",
	  1, "5.7.1", "failed", "b@x.test", true, false, NULL },
	{ "two recipients without a blank line",
	  "Final-Recipient: rfc822; a@x.test\nAction: failed\nStatus: 5.1.1\n"
	  "Final-Recipient: rfc822; b@x.test\nAction: failed\nStatus: 5.1.2\n",
	  1, "5.1.1", "failed", "a@x.test", true, false, NULL },
	{ "address too long is dropped, status kept",
	  "Final-Recipient: rfc822; "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaa@x.test\nStatus: 5.1.1\n",
	  1, "5.1.1", "", "", true, false, NULL },
	{ "junk lines skipped",
	  "this is not a field\n: nor this\nFinal-Recipient: rfc822; a@x.test\n"
	  "garbage\nStatus: 4.0.0\n",
	  1, "4.0.0", "", "a@x.test", false, true, NULL },
	{ "no final newline",
	  "Final-Recipient: rfc822; a@x.test\nStatus: 5.1.1",
	  1, "5.1.1", "", "a@x.test", true, false, NULL },
	{ "per-message fields only", "Reporting-MTA: dns; mx\nArrival-Date: x\n",
	  0, "", "", "", false, false, NULL },
	{ "empty", "", 0, "", "", "", false, false, NULL },
};

static void
test_dsn_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
		const struct dcase *c = &dcases[i];
		struct classify_dsn d;
		struct err err = { 0 };
		int ret;

		memset(&d, 0x5a, sizeof d);
		ret = classify_dsn_parse(c->in, strlen(c->in), &d, &err);
		if (ret != c->ret)
			fail_msg("case %zu (%s): ret %d (%s)", i, c->what, ret,
			    err.msg);
		if (strcmp(d.status, c->status) != 0 ||
		    strcmp(d.action, c->action) != 0 ||
		    strcmp(d.recipient, c->recipient) != 0 ||
		    d.hard != c->hard || d.soft != c->soft)
			fail_msg("case %zu (%s): status [%s] action [%s] rcpt "
			    "[%s] hard %d soft %d", i, c->what, d.status,
			    d.action, d.recipient, d.hard, d.soft);
		if (c->diag != NULL && strstr(d.diagnostic, c->diag) == NULL)
			fail_msg("case %zu (%s): diagnostic [%s]", i, c->what,
			    d.diagnostic);
	}
}

static void
test_dsn_limits(void **state)
{
	struct classify_dsn d;
	struct err err = { 0 };
	size_t n = LIMIT_DSN_TEXT + 1;
	char *big = malloc(n);
	char line[4096];

	(void)state;
	assert_non_null(big);
	memset(big, 'x', n);
	assert_int_equal(classify_dsn_parse(big, n, &d, &err), -1);
	assert_non_null(strstr(err.msg, "larger"));
	/* a huge folded Diagnostic-Code: kept short, valid UTF-8 cut */
	memset(big, ' ', n);
	{
		static const char head[] =
		    "Final-Recipient: rfc822; a@x.test\nStatus: 5.1.1\n"
		    "Diagnostic-Code: smtp; ";
		size_t k = sizeof head - 1;

		memcpy(big, head, k);
		for (int i = 0; k + 4 < LIMIT_DSN_TEXT; i++) {
			memcpy(big + k, "\xc3\xa9", 2);   /* é */
			k += 2;
			if (i % 40 == 39) {
				memcpy(big + k, "\n ", 2);  /* folded */
				k += 2;
			}
		}
		assert_int_equal(classify_dsn_parse(big, k, &d, &err), 1);
		assert_string_equal(d.status, "5.1.1");
		assert_true(strlen(d.diagnostic) <= DSN_DIAG_MAX);
		assert_true(((unsigned char)d.diagnostic[strlen(d.diagnostic) -
		    1] & 0xc0) != 0xc0);
	}
	free(big);
	/* a folded address over the field buffer is dropped, not cut */
	memset(line, 'a', sizeof line);
	memcpy(line, "Final-Recipient: rfc822;", 24);
	memcpy(line + sizeof line - 21, "@x.test\nStatus: 5.1.1", 21);
	assert_int_equal(classify_dsn_parse(line, sizeof line, &d, &err), 1);
	assert_string_equal(d.recipient, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_classify_edges),
		cmocka_unit_test(test_dsn_table),
		cmocka_unit_test(test_dsn_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
