/* tests/unit/test_crypto.c: tokens, subkeys, keyed hashes, backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/backoff.h"
#include "common/crypto.h"

static void
test_tokens_are_random_base64url(void **state)
{
	char a[CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES)];
	char b[sizeof a];

	(void)state;
	crypto_token_new(CRYPTO_TOKEN_BYTES, a, sizeof a);
	crypto_token_new(CRYPTO_TOKEN_BYTES, b, sizeof b);
	assert_int_equal(strlen(a), 43);       /* 256 bits, no padding */
	assert_string_not_equal(a, b);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789-_"), strlen(a));
}

static void
test_subkeys_differ_and_repeat(void **state)
{
	uint8_t master[CRYPTO_KEY_BYTES], k1[32], k2[32], k1b[32];

	(void)state;
	memset(master, 7, sizeof master);
	crypto_subkey(master, SUBKEY_LOGIN_TOKEN, k1);
	crypto_subkey(master, SUBKEY_SESSION, k2);
	crypto_subkey(master, SUBKEY_LOGIN_TOKEN, k1b);
	assert_memory_not_equal(k1, k2, 32);
	assert_memory_equal(k1, k1b, 32);
	assert_memory_not_equal(k1, master, 32);
}

static void
test_keyed_hash(void **state)
{
	uint8_t key1[32], key2[32], h1[32], h2[32], h3[32];

	(void)state;
	memset(key1, 1, sizeof key1);
	memset(key2, 2, sizeof key2);
	crypto_keyed_hash(key1, "token", 5, h1);
	crypto_keyed_hash(key2, "token", 5, h2);
	crypto_keyed_hash(key1, "token", 5, h3);
	assert_false(crypto_equal(h1, h2, 32));
	assert_true(crypto_equal(h1, h3, 32));
}

static void
test_hex_and_sha256(void **state)
{
	uint8_t sum[32];
	char hex[65];

	(void)state;
	crypto_sha256("abc", 3, sum);
	crypto_hex(sum, sizeof sum, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_backoff_bounds(void **state)
{
	static const struct {
		unsigned attempt;
		int64_t base, max, ceiling;
	} cases[] = {
		{ 0, 200, 5000, 200 },
		{ 1, 200, 5000, 400 },
		{ 4, 200, 5000, 3200 },
		{ 5, 200, 5000, 5000 },
		{ 60, 200, 5000, 5000 },      /* no overflow for big attempts */
		{ 3, 1000, 1000, 1000 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t c = backoff_ceiling_ms(cases[i].attempt, cases[i].base,
		    cases[i].max);
		assert_int_equal(c, cases[i].ceiling);
		for (int k = 0; k < 200; k++) {
			int64_t d = backoff_delay_ms(cases[i].attempt,
			    cases[i].base, cases[i].max);
			assert_true(d >= c / 2 && d <= c);
		}
	}
}

static void
test_backoff_spreads(void **state)
{
	int64_t lo = INT64_MAX, hi = 0;

	(void)state;
	for (int k = 0; k < 1000; k++) {
		int64_t d = backoff_delay_ms(10, 1000, 60000);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(hi - lo > 20000);    /* 1,000 draws over [30 s, 60 s] */
}

static int
setup(void **state)
{
	struct err err;
	(void)state;
	return crypto_init(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens_are_random_base64url),
		cmocka_unit_test(test_subkeys_differ_and_repeat),
		cmocka_unit_test(test_keyed_hash),
		cmocka_unit_test(test_hex_and_sha256),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_backoff_spreads),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
