/* tests/unit/test_email.c: email_normalize_check(), one table of cases. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/email.h"
#include "common/limits.h"

struct email_case {
	bool domain;          /* email_domain_normalize_check() */
	const char *in;
	const char *out;      /* NULL: must be rejected */
	const char *why;      /* rejected: a substring of err.msg */
};

#define OK(in, out) { false, in, out, NULL }
#define BAD(in, why) { false, in, NULL, why }
#define DOK(in, out) { true, in, out, NULL }
#define DBAD(in, why) { true, in, NULL, why }

static const struct email_case cases[] = {
	OK("ann@example.com", "ann@example.com"),
	OK("  ann@example.com\t\r\n", "ann@example.com"),
	OK("Ann.Lee@Example.COM", "Ann.Lee@example.com"),
	OK("owner@practice.test", "owner@practice.test"),
	OK("a+tag@mail.patients.test", "a+tag@mail.patients.test"),
	OK("o'brien@example.ie", "o'brien@example.ie"),
	OK("x_y-z!#$%&*/=?^`{|}~@ex-ample.org", "x_y-z!#$%&*/=?^`{|}~@ex-ample.org"),
	OK("a@b.co", "a@b.co"),
	OK("a@xn--bcher-kva.xn--p1ai", "a@xn--bcher-kva.xn--p1ai"),
	OK("a@1.2.example", "a@1.2.example"),
	BAD("", "empty"),
	BAD("   ", "empty"),
	BAD("ann", "no @"),
	BAD("ann@", "nothing after"),
	BAD("@example.com", "nothing before"),
	BAD("a@b@example.com", "more than one @"),
	BAD("ann@localhost", "no dot"),
	BAD("ann@test", "no dot"),
	BAD("ann@example.c", "top-level"),
	BAD("ann@10.0.0.1", "top-level"),
	BAD("ann@[10.0.0.1]", "not allowed"),
	BAD("ann lee@example.com", "a space"),
	BAD("\"ann\"@example.com", "double quote"),
	BAD("<ann@example.com>", "angle brackets"),
	BAD("Ann <ann@example.com>", "a space"),
	BAD("ann@exa\nmple.com", "line break"),
	BAD("ann@exa\rmple.com", "line break"),
	BAD("ann\x01@example.com", "control"),
	BAD("ann\x7f@example.com", "control"),
	BAD("jos\xc3\xa9@example.com", "non-ASCII"),
	BAD("ann@b\xc3\xbc" "cher.de", "non-ASCII"),
	BAD(".ann@example.com", "starts or ends with a dot"),
	BAD("ann.@example.com", "starts or ends with a dot"),
	BAD("an..n@example.com", "two dots"),
	BAD("ann@example..com", "empty label"),
	BAD("ann@.example.com", "empty label"),
	BAD("ann@example.com.", "empty label"),
	BAD("ann@-example.com", "hyphen"),
	BAD("ann@example-.com", "hyphen"),
	BAD("ann@exa_mple.com", "not allowed in a domain"),
	BAD("a\\b@example.com", "backslash"),
	BAD("a,b@example.com", "not allowed"),
	/* 65-byte local part */
	BAD("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@example.com", "longer than 64"),
	/* 64 is fine */
	OK("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	   "@example.com",
	   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	   "@example.com"),
	DOK("practice.test", "practice.test"),
	DOK(" Reply.Clinic.EXAMPLE\n", "reply.clinic.example"),
	DOK("xn--bcher-kva.example", "xn--bcher-kva.example"),
	DBAD("", "empty"),
	DBAD("localhost", "no dot"),
	DBAD("a@b.test", "not allowed"),
	DBAD("exa mple.com", "not allowed"),
	DBAD("-x.com", "hyphen"),
	DBAD("x..com", "empty label"),
	DBAD("b\xc3\xbc" "cher.de", "not allowed"),
	/* a 64-byte label */
	BAD("a@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    ".com", "label longer"),
};

/* Addresses built at run time: total length limits. */
static void
test_lengths(void)
{
	char in[600], out[LIMIT_EMAIL + 1], small[8];
	struct err err = { 0 };
	size_t n;

	/* 64 + 1 + 189 = 254 bytes: a.b.c…com */
	memset(in, 'a', 64);
	in[64] = '@';
	n = 65;
	while (n < LIMIT_EMAIL - 4) {
		in[n++] = 'd';
		in[n++] = '.';
	}
	while (n < LIMIT_EMAIL)
		in[n++] = 'c';
	in[n] = '\0';
	assert_int_equal(strlen(in), LIMIT_EMAIL);
	assert_int_equal(email_normalize_check(in, out, sizeof out, &err), 0);
	assert_string_equal(out, in);
	/* one more byte is too long */
	in[n++] = 'c';
	in[n] = '\0';
	assert_int_equal(email_normalize_check(in, out, sizeof out, &err), -1);
	assert_non_null(strstr(err.msg, "longer than 254"));
	assert_string_equal(out, "");
	/* an out buffer too small is an error, not a cut */
	assert_int_equal(email_normalize_check("ann@example.com", small,
	    sizeof small, &err), -1);
	assert_string_equal(small, "");
	/* in == out */
	snprintf(in, sizeof in, "  Bo@EXAMPLE.org ");
	assert_int_equal(email_normalize_check(in, in, sizeof in, &err), 0);
	assert_string_equal(in, "Bo@example.org");
	/* NULL */
	assert_int_equal(email_normalize_check(NULL, out, sizeof out, &err), -1);
}

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct email_case *c = &cases[i];
		char out[LIMIT_EMAIL + 1];
		struct err err = { 0 };
		int rc = c->domain
		    ? email_domain_normalize_check(c->in, out, sizeof out, &err)
		    : email_normalize_check(c->in, out, sizeof out, &err);

		if (c->out != NULL) {
			if (rc != 0)
				fail_msg("case %zu \"%s\": rejected: %s", i,
				    c->in, err.msg);
			if (strcmp(out, c->out) != 0)
				fail_msg("case %zu \"%s\": got \"%s\", want "
				    "\"%s\"", i, c->in, out, c->out);
		} else {
			if (rc != -1)
				fail_msg("case %zu \"%s\": accepted as \"%s\"",
				    i, c->in, out);
			if (strstr(err.msg, c->why) == NULL)
				fail_msg("case %zu \"%s\": error \"%s\" lacks "
				    "\"%s\"", i, c->in, err.msg, c->why);
		}
	}
	test_lengths();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
