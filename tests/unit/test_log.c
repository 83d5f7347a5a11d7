/* tests/unit/test_log.c: log_quote() turns untrusted text into one safe
 * logfmt value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"

static const struct {
	const char *in;
	size_t size;
	const char *want;
} cases[] = {
	{ "plain", 64, "plain" },
	{ "a@b.example:25/x+y-z,1", 64, "a@b.example:25/x+y-z,1" },
	{ "", 64, "\"\"" },
	{ NULL, 64, "-" },
	{ "two words", 64, "\"two words\"" },
	{ "say \"hi\"", 64, "\"say \\\"hi\\\"\"" },
	{ "back\\slash", 64, "\"back\\\\slash\"" },
	{ "line\nbreak", 64, "\"line\\nbreak\"" },
	{ "tab\there", 64, "\"tab\\there\"" },
	{ "bell\x07", 64, "\"bell\\x07\"" },
	{ "key=value", 64, "\"key=value\"" },
	{ "Ann\n <a@x.org>", 64, "\"Ann\\n <a@x.org>\"" },
	/* Cut to fit, marked with "...", still quoted and terminated. */
	{ "a long value with spaces", 16, "\"a long val...\"" },
	{ "abcdefghijklmnopqrstuvwxyz", 10, "\"abcd...\"" },
	{ "x", 4, "" },           /* too small for anything: empty */
	{ "caf\xc3\xa9", 64, "\"caf\xc3\xa9\"" },   /* UTF-8 kept as is */
};

static void
test_quote_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[128];
		memset(out, 'Z', sizeof out);
		log_quote(out, cases[i].size, cases[i].in);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got [%s], want [%s]", i, out,
			    cases[i].want);
		assert_true(strlen(out) < cases[i].size);
	}
}

static void
test_level_parse(void **state)
{
	enum log_level l;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("loud", &l), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_cases),
		cmocka_unit_test(test_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
