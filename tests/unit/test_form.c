/* tests/unit/test_form.c: httpd/form.c: urlencoded form fields, Cookie
 * headers, token shapes, typed codes and X-Forwarded-For, one table each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/limits.h"
#include "httpd/form.h"

struct get_case {
	const char *body;
	const char *name;
	size_t size;               /* of the output buffer */
	int want;                  /* 1 / 0 / -1 */
	const char *value;         /* when want == 1 */
};

static const struct get_case form_cases[] = {
	{ "email=ann%40example.com", "email", 64, 1, "ann@example.com" },
	{ "a=1&email=b%2Bc%40x.test&z=2", "email", 64, 1, "b+c@x.test" },
	{ "email=a+b", "email", 64, 1, "a b" },
	{ "email=", "email", 64, 1, "" },
	{ "email", "email", 64, 1, "" },
	{ "", "email", 64, 0, NULL },
	{ "other=1", "email", 64, 0, NULL },
	{ "emailx=1&xemail=2", "email", 64, 0, NULL },
	{ "e%6dail=x", "email", 64, 1, "x" },             /* encoded name */
	{ "a=1&&email=x&", "email", 64, 1, "x" },        /* empty pieces */
	{ "email=%41%62", "email", 64, 1, "Ab" },
	{ "email=%4", "email", 64, -1, NULL },            /* cut escape */
	{ "email=%zz", "email", 64, -1, NULL },
	{ "email=a%00b", "email", 64, -1, NULL },         /* NUL */
	{ "other=%zz&email=x", "email", 64, -1, NULL },   /* bad anywhere */
	{ "email=1&email=2", "email", 64, -1, NULL },     /* twice */
	{ "email=12345678", "email", 9, 1, "12345678" },  /* just fits */
	{ "email=123456789", "email", 9, -1, NULL },      /* never cut */
	{ "t=abc%3D&code=1%202", "code", 64, 1, "1 2" },
	{ "email=caf%C3%A9", "email", 64, 1, "caf\xc3\xa9" },
};

static void
test_form_get(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof form_cases / sizeof form_cases[0]; i++) {
		const struct get_case *c = &form_cases[i];
		char out[128];
		int rc;

		memset(out, 'X', sizeof out);
		rc = form_get(c->body, strlen(c->body), c->name, out, c->size);
		if (rc != c->want)
			fail_msg("case %zu [%s]: got %d want %d", i, c->body, rc,
			    c->want);
		if (rc == 1 && strcmp(out, c->value) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, out, c->value);
	}
}

static void
test_form_not_nul_terminated(void **state)
{
	/* The body is bytes plus a length: nothing past len is read. */
	const char body[] = "email=abcdef";
	char out[32];

	(void)state;
	assert_int_equal(form_get(body, 9, "email", out, sizeof out), 1);
	assert_string_equal(out, "abc");
}

static void
test_form_field_cap(void **state)
{
	char body[LIMIT_FORM_FIELDS * 8 + 64], out[16];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < LIMIT_FORM_FIELDS; i++)
		n += (size_t)snprintf(body + n, sizeof body - n, "f%d=1&", i);
	assert_int_equal(form_get(body, n, "f3", out, sizeof out), 1);
	n += (size_t)snprintf(body + n, sizeof body - n, "extra=1");
	assert_int_equal(form_get(body, n, "f3", out, sizeof out), -1);
}

static const struct get_case cookie_cases[] = {
	{ "postern_session=abc", "postern_session", 64, 1, "abc" },
	{ "a=1; postern_session=abc; b=2", "postern_session", 64, 1, "abc" },
	{ "a=1;postern_session=abc", "postern_session", 64, 1, "abc" },
	{ "  postern_session = abc  ", "postern_session", 64, 1, "abc" },
	{ "postern_session=\"abc\"", "postern_session", 64, 1, "abc" },
	{ "postern_session=first; postern_session=second", "postern_session",
	  64, 1, "first" },
	{ "xpostern_session=abc", "postern_session", 64, 0, NULL },
	{ "postern_sessionx=abc", "postern_session", 64, 0, NULL },
	{ "postern_session", "postern_session", 64, 0, NULL },
	{ "", "postern_session", 64, 0, NULL },
	{ "a=1; b", "postern_session", 64, 0, NULL },
	{ "postern_session=", "postern_session", 64, 1, "" },
	{ "postern_session=12345678", "postern_session", 9, 1, "12345678" },
	{ "postern_session=123456789", "postern_session", 9, -1, NULL },
};

static void
test_cookie_get(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cookie_cases / sizeof cookie_cases[0];
	     i++) {
		const struct get_case *c = &cookie_cases[i];
		char out[128];
		int rc;

		rc = form_cookie_get(c->body, c->name, out, c->size);
		if (rc != c->want)
			fail_msg("case %zu [%s]: got %d want %d", i, c->body, rc,
			    c->want);
		if (rc == 1 && strcmp(out, c->value) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, out, c->value);
	}
}

static void
test_cookie_header_cap(void **state)
{
	static char h[LIMIT_COOKIE_HEADER + 64];
	char out[64];

	(void)state;
	memset(h, 'a', sizeof h);
	memcpy(h, "postern_session=abc; x=", 23);
	h[LIMIT_COOKIE_HEADER] = '\0';
	assert_int_equal(form_cookie_get(h, "postern_session", out, sizeof out), 1);
	h[LIMIT_COOKIE_HEADER] = 'a';
	h[LIMIT_COOKIE_HEADER + 1] = '\0';
	assert_int_equal(form_cookie_get(h, "postern_session", out, sizeof out), -1);
}

static const struct {
	const char *s;
	size_t n;
	bool want;
} b64_cases[] = {
	{ "abcDEF012-_", 11, true },
	{ "abcDEF012-_", 10, false },        /* longer than n */
	{ "abcDEF012-", 11, false },         /* shorter */
	{ "abc+", 4, false },                /* standard base64 */
	{ "abc=", 4, false },
	{ "ab c", 4, false },
	{ "", 0, true },
	{ "ab%2", 4, false },
};

static void
test_b64url(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++)
		if (form_is_b64url(b64_cases[i].s, b64_cases[i].n) !=
		    b64_cases[i].want)
			fail_msg("case %zu [%s]", i, b64_cases[i].s);
}

static const struct {
	const char *in;
	const char *want;             /* NULL: refused */
} code_cases[] = {
	{ "12345678", "12345678" },
	{ "1234 5678", "12345678" },
	{ " 1234-5678 ", "12345678" },
	{ "00000000", "00000000" },
	{ "1234567", NULL },
	{ "123456789", NULL },
	{ "1234567a", NULL },
	{ "1234\t5678", NULL },
	{ "", NULL },
	{ "１2345678", NULL },          /* a full-width digit */
};

static void
test_code(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof code_cases / sizeof code_cases[0]; i++) {
		char out[9];
		bool ok = form_code(code_cases[i].in, out, 8);

		if (ok != (code_cases[i].want != NULL))
			fail_msg("case %zu [%s]: got %d", i, code_cases[i].in, ok);
		if (ok && strcmp(out, code_cases[i].want) != 0)
			fail_msg("case %zu: got [%s]", i, out);
	}
}

static const struct {
	const char *in;
	const char *want;             /* NULL: refused */
} xff_cases[] = {
	{ "203.0.113.9", "203.0.113.9" },
	{ "10.0.0.1, 203.0.113.9", "203.0.113.9" },
	{ "10.0.0.1,203.0.113.9  ", "203.0.113.9" },
	{ "2001:db8::1", "2001:db8::1" },
	{ "203.0.113.9, evil", NULL },
	{ "203.0.113.9 x", NULL },
	{ "", NULL },
	{ "10.0.0.1, ", NULL },
	{ "999.1.1.1", NULL },
	{ "host.example", NULL },
	{ "1.2.3.4:80", NULL },
};

static void
test_forwarded_ip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof xff_cases / sizeof xff_cases[0]; i++) {
		char out[64] = "unchanged";
		bool ok = form_forwarded_ip(xff_cases[i].in, out, sizeof out);

		if (ok != (xff_cases[i].want != NULL))
			fail_msg("case %zu [%s]: got %d", i, xff_cases[i].in, ok);
		if (ok && strcmp(out, xff_cases[i].want) != 0)
			fail_msg("case %zu: got [%s]", i, out);
		if (!ok && strcmp(out, "unchanged") != 0)
			fail_msg("case %zu: out changed on refusal", i);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_get),
		cmocka_unit_test(test_form_not_nul_terminated),
		cmocka_unit_test(test_form_field_cap),
		cmocka_unit_test(test_cookie_get),
		cmocka_unit_test(test_cookie_header_cap),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_code),
		cmocka_unit_test(test_forwarded_ip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
