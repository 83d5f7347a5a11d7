/* tests/unit/test_html.c: the one HTML escaping path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/html.h"

static const struct {
	const char *in;
	const char *want;
} cases[] = {
	{ "plain text", "plain text" },
	{ "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;" },
	{ "a & b", "a &amp; b" },
	{ "\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;" },
	{ "x\" onmouseover=\"y", "x&quot; onmouseover=&quot;y" },
	{ "line\nnext\ttab", "line\nnext\ttab" },
	{ "nul\x01" "ctl", "nul\xef\xbf\xbd" "ctl" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "bad \xc3 end", "bad \xef\xbf\xbd end" },            /* cut sequence */
	{ "over \xc0\xaf long", "over \xef\xbf\xbd\xef\xbf\xbd long" }, /* overlong */
	{ "surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "", "" },
};

static void
test_escape_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b;
		buf_init(&b, 4096);
		assert_int_equal(html_escapes(&b, cases[i].in), 0);
		if (strcmp(buf_str(&b), cases[i].want) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, buf_str(&b),
			    cases[i].want);
		buf_fini(&b);
	}
}

static void
test_escape_respects_cap(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(html_escapes(&b, "<<<"), -1);   /* 12 bytes needed */
	assert_true(b.len <= 8);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_cases),
		cmocka_unit_test(test_escape_respects_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
