/* tests/unit/test_buf.c: the capped buffer never passes its cap and stays
 * NUL-terminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void
test_add_within_cap(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_adds(&b, "hello"), 0);
	assert_int_equal(buf_addc(&b, ' '), 0);
	assert_int_equal(buf_printf(&b, "%d", 123), 0);
	assert_string_equal(buf_str(&b), "hello 123");
	assert_int_equal(b.len, 9);
	buf_fini(&b);
}

static void
test_over_cap_changes_nothing(void **state)
{
	static const struct {
		const char *first, *second;
		int want;
		const char *after;
	} cases[] = {
		{ "12345", "67890", 0, "1234567890" },   /* exactly the cap */
		{ "12345", "678901", -1, "12345" },      /* one past */
		{ "", "12345678901", -1, "" },
		{ "1234567890", "", 0, "1234567890" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b;
		buf_init(&b, 10);
		assert_int_equal(buf_adds(&b, cases[i].first), 0);
		assert_int_equal(buf_adds(&b, cases[i].second), cases[i].want);
		assert_string_equal(buf_str(&b), cases[i].after);
		assert_int_equal(buf_printf(&b, "%s", "xxxxxxxxxxx"), -1);
		assert_string_equal(buf_str(&b), cases[i].after);
		buf_fini(&b);
	}
}

static void
test_steal_and_reset(void **state)
{
	struct buf b;
	size_t len;
	char *p;

	(void)state;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_adds(&b, "abc"), 0);   /* grows */
	assert_int_equal(b.len, 30000);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_adds(&b, "x"), 0);
	p = buf_steal(&b, &len);
	assert_string_equal(p, "x");
	assert_int_equal(len, 1);
	assert_null(b.data);
	free(p);
	p = buf_steal(&b, NULL);                     /* empty: "" not NULL */
	assert_string_equal(p, "");
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_within_cap),
		cmocka_unit_test(test_over_cap_changes_nothing),
		cmocka_unit_test(test_steal_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
