/* tests/unit/test_smtp_classify.c: the pure parts of mailer/smtp.c: how a
 * libcurl result and an SMTP reply code become retry / bounce, and which
 * envelope addresses are accepted. One table each; a case is one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "mailer/smtp.h"

static void
test_classify(void **state)
{
	static const struct {
		int curl;
		long code;
		enum smtp_class want;
	} cases[] = {
		{ CURLE_OK, 0, SMTP_CLASS_OK },
		{ CURLE_OK, 250, SMTP_CLASS_OK },
		/* The server's verdict wins over libcurl's error code. */
		{ CURLE_SEND_ERROR, 550, SMTP_CLASS_PERM },      /* RCPT 550 */
		{ CURLE_SEND_ERROR, 554, SMTP_CLASS_PERM },
		{ CURLE_SEND_ERROR, 450, SMTP_CLASS_TEMP },      /* greylisted */
		{ CURLE_SEND_ERROR, 452, SMTP_CLASS_TEMP },
		{ CURLE_WEIRD_SERVER_REPLY, 552, SMTP_CLASS_PERM }, /* too big */
		{ CURLE_WEIRD_SERVER_REPLY, 451, SMTP_CLASS_TEMP },
		{ CURLE_LOGIN_DENIED, 535, SMTP_CLASS_PERM },
		{ CURLE_LOGIN_DENIED, 454, SMTP_CLASS_TEMP },    /* auth down */
		{ CURLE_LOGIN_DENIED, 0, SMTP_CLASS_PERM },
		{ CURLE_RECV_ERROR, 421, SMTP_CLASS_TEMP },      /* shutting down */
		/* No 4xx/5xx: libcurl's code decides. */
		{ CURLE_COULDNT_CONNECT, 0, SMTP_CLASS_TEMP },
		{ CURLE_COULDNT_RESOLVE_HOST, 0, SMTP_CLASS_TEMP },
		{ CURLE_OPERATION_TIMEDOUT, 0, SMTP_CLASS_TEMP },
		{ CURLE_OPERATION_TIMEDOUT, 354, SMTP_CLASS_TEMP }, /* stalled */
		{ CURLE_SEND_ERROR, 0, SMTP_CLASS_TEMP },
		{ CURLE_RECV_ERROR, 250, SMTP_CLASS_TEMP },      /* lost after OK */
		{ CURLE_GOT_NOTHING, 0, SMTP_CLASS_TEMP },
		{ CURLE_SSL_CONNECT_ERROR, 0, SMTP_CLASS_TEMP },
		{ CURLE_PEER_FAILED_VERIFICATION, 0, SMTP_CLASS_PERM },
		{ CURLE_SSL_CACERT_BADFILE, 0, SMTP_CLASS_PERM },
		{ CURLE_USE_SSL_FAILED, 220, SMTP_CLASS_PERM },  /* no STARTTLS */
		{ CURLE_URL_MALFORMAT, 0, SMTP_CLASS_PERM },
		{ CURLE_UNSUPPORTED_PROTOCOL, 0, SMTP_CLASS_PERM },
		{ CURLE_FILESIZE_EXCEEDED, 0, SMTP_CLASS_PERM },
		{ CURLE_OUT_OF_MEMORY, 0, SMTP_CLASS_TEMP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum smtp_class got = smtp_classify(cases[i].curl, cases[i].code);
		if (got != cases[i].want)
			fail_msg("case %zu: curl=%d code=%ld: got %d, want %d", i,
			    cases[i].curl, cases[i].code, (int)got,
			    (int)cases[i].want);
	}
}

static void
test_address(void **state)
{
	static char long_addr[300];
	static const struct {
		const char *addr;
		bool allow_empty;
		bool want;
	} cases[] = {
		{ "patient1@patients.test", false, true },
		{ "reply+t0k-3n_x@practice.test", false, true },
		{ "bounce+42-abcdef@practice.test", false, true },
		{ "j\xc3\xb6rg@example.test", false, true },   /* SMTPUTF8 */
		{ "", true, true },                              /* null sender */
		{ "", false, false },
		{ NULL, true, false },
		{ "no-at-sign", false, false },
		{ "@practice.test", false, false },
		{ "user@", false, false },
		{ "a@b@c", false, false },
		{ "a b@practice.test", false, false },
		{ "a@practice.test\r\nRCPT TO:<x@evil>", false, false },
		{ "a@practice.test\n", false, false },
		{ "<a@practice.test>", false, false },
		{ "a>@practice.test", false, false },
		{ "\"a\"@practice.test", false, false },
		{ "a\\b@practice.test", false, false },
		{ "a\x7f@practice.test", false, false },
		{ "a\t@practice.test", false, false },
		{ long_addr, false, false },
	};

	(void)state;
	memset(long_addr, 'a', sizeof long_addr - 1);
	long_addr[200] = '@';                            /* 299 bytes > 254 */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = smtp_address_ok(cases[i].addr, cases[i].allow_empty);
		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got,
			    cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
