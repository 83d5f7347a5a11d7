/* tests/unit/test_db_deliveries.c: the pure part of common/db_deliveries.c:
 * the enhanced status code (RFC 3463) taken from an SMTP reply line for
 * deliveries.enhanced_status, whose CHECK it must always satisfy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/db_deliveries.h"

static void
test_enhanced_status(void **state)
{
	static const struct {
		const char *reply;
		const char *want;
	} cases[] = {
		{ "250 2.0.0 Ok: queued as D87CCAA4053", "2.0.0" },
		{ "550 5.1.1 <x@y>: Recipient address rejected", "5.1.1" },
		{ "451 4.7.1 Greylisted", "4.7.1" },
		{ "552-5.3.4 Message too big", "5.3.4" },
		{ "554 5.123.456 long but valid", "5.123.456" },
		{ "250 2.0.0", "2.0.0" },
		{ "250 Ok", "" },                        /* none given */
		{ "250 2.0.0Ok", "" },                   /* not followed by space */
		{ "550 5.1.1234 too many digits", "" },
		{ "550 5.1 too short", "" },
		{ "550 3.1.1 bad class", "" },
		{ "550 55.1.1 two-digit class", "" },
		{ "550 5..1 empty part", "" },
		{ "5.1.1 no code", "" },
		{ "", "" },
		{ NULL, "" },
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		db_deliveries_enhanced_status(cases[i].reply, out, sizeof out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: \"%s\": got \"%s\", want \"%s\"", i,
			    cases[i].reply ? cases[i].reply : "(null)", out,
			    cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enhanced_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
