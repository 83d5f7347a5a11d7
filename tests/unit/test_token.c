/* tests/unit/test_token.c: reply and bounce address tokens. Tokens are
 * made at run time (the MAC depends on the key), so each table row names
 * how to make one, what to do to it, and what verification must say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/email.h"
#include "common/limits.h"
#include "mailer/token.h"

#define DAY 86400
#define T0 1790000000LL                 /* "now" of the table: Sep 2026 */
#define EXP (T0 + 30 * DAY)             /* expiry asked for */
#define EXP_DAY_END (((EXP + DAY - 1) / DAY) * DAY)

static struct token_key keys_all[5];    /* see setup_keys() */

/* Key sets handed to verification. */
enum keyset {
	KS_CURRENT,      /* reply id 2, bounce id 2 */
	KS_ROTATED,      /* id 2 (new) and id 1 (old), both kinds */
	KS_OTHER,        /* id 2 but a different server key */
	KS_NONE,
};

static void
setup_keys(void)
{
	uint8_t sk_old[CRYPTO_KEY_BYTES], sk_new[CRYPTO_KEY_BYTES],
	    sk_other[CRYPTO_KEY_BYTES];

	memset(sk_old, 0x11, sizeof sk_old);
	memset(sk_new, 0x22, sizeof sk_new);
	memset(sk_other, 0x33, sizeof sk_other);
	token_key_init(&keys_all[0], 2, TOKEN_REPLY, sk_new);
	token_key_init(&keys_all[1], 2, TOKEN_BOUNCE, sk_new);
	token_key_init(&keys_all[2], 1, TOKEN_REPLY, sk_old);
	token_key_init(&keys_all[3], 1, TOKEN_BOUNCE, sk_old);
	token_key_init(&keys_all[4], 2, TOKEN_REPLY, sk_other);
}

static const struct token_key *
keyset(enum keyset ks, size_t *n_r)
{
	switch (ks) {
	case KS_CURRENT: *n_r = 2; return &keys_all[0];
	case KS_ROTATED: *n_r = 4; return &keys_all[0];
	case KS_OTHER: *n_r = 1; return &keys_all[4];
	case KS_NONE: break;
	}
	*n_r = 0;
	return NULL;
}

/* Which key makes the token. */
enum maker { MK_NEW_REPLY, MK_NEW_BOUNCE, MK_OLD_REPLY, MK_OLD_BOUNCE };

enum mutation {
	MU_NONE,
	MU_UPPER,        /* all upper case */
	MU_MIXED,        /* every other character upper case */
	MU_CUT,          /* drop the last `arg` characters */
	MU_APPEND,       /* one more character */
	MU_BAD_CHAR,     /* character `arg` becomes '1' (not base32) */
	MU_EMPTY,
	MU_NULL,
};

struct vcase {
	const char *what;
	enum maker maker;
	int64_t id;
	enum mutation mu;
	int arg;
	enum keyset ks;
	int64_t now;
	enum token_status want;
};

static const struct vcase vcases[] = {
	{ "fresh reply", MK_NEW_REPLY, 42, MU_NONE, 0, KS_CURRENT, T0, TOKEN_VALID },
	{ "fresh bounce", MK_NEW_BOUNCE, 7, MU_NONE, 0, KS_CURRENT, T0, TOKEN_VALID },
	{ "big id", MK_NEW_REPLY, INT64_MAX, MU_NONE, 0, KS_CURRENT, T0, TOKEN_VALID },
	{ "upper-cased", MK_NEW_REPLY, 42, MU_UPPER, 0, KS_CURRENT, T0, TOKEN_VALID },
	{ "mixed case", MK_NEW_BOUNCE, 42, MU_MIXED, 0, KS_CURRENT, T0, TOKEN_VALID },
	{ "last second", MK_NEW_REPLY, 42, MU_NONE, 0, KS_CURRENT, EXP_DAY_END - 1, TOKEN_VALID },
	{ "expired", MK_NEW_REPLY, 42, MU_NONE, 0, KS_CURRENT, EXP_DAY_END, TOKEN_EXPIRED },
	{ "long expired", MK_NEW_BOUNCE, 42, MU_NONE, 0, KS_CURRENT, EXP + 400 * DAY, TOKEN_EXPIRED },
	{ "expired upper", MK_NEW_REPLY, 42, MU_UPPER, 0, KS_CURRENT, EXP_DAY_END, TOKEN_EXPIRED },
	{ "rotated: old key still listed", MK_OLD_REPLY, 42, MU_NONE, 0, KS_ROTATED, T0, TOKEN_VALID },
	{ "rotated bounce", MK_OLD_BOUNCE, 9, MU_NONE, 0, KS_ROTATED, T0, TOKEN_VALID },
	{ "rotated: old key dropped", MK_OLD_REPLY, 42, MU_NONE, 0, KS_CURRENT, T0, TOKEN_INVALID },
	{ "same key id, other key", MK_NEW_REPLY, 42, MU_NONE, 0, KS_OTHER, T0, TOKEN_INVALID },
	{ "no keys", MK_NEW_REPLY, 42, MU_NONE, 0, KS_NONE, T0, TOKEN_INVALID },
	{ "bounce with reply keys only", MK_NEW_BOUNCE, 42, MU_NONE, 0, KS_OTHER, T0, TOKEN_INVALID },
	{ "cut by one", MK_NEW_REPLY, 42, MU_CUT, 1, KS_CURRENT, T0, TOKEN_INVALID },
	{ "cut by eight", MK_NEW_REPLY, 42, MU_CUT, 8, KS_CURRENT, T0, TOKEN_INVALID },
	{ "cut to one", MK_NEW_REPLY, 42, MU_CUT, TOKEN_LEN - 1, KS_CURRENT, T0, TOKEN_INVALID },
	{ "one more", MK_NEW_REPLY, 42, MU_APPEND, 0, KS_CURRENT, T0, TOKEN_INVALID },
	{ "not base32", MK_NEW_REPLY, 42, MU_BAD_CHAR, 17, KS_CURRENT, T0, TOKEN_INVALID },
	{ "empty", MK_NEW_REPLY, 42, MU_EMPTY, 0, KS_CURRENT, T0, TOKEN_MISSING },
	{ "NULL", MK_NEW_REPLY, 42, MU_NULL, 0, KS_CURRENT, T0, TOKEN_MISSING },
};

static void
make(enum maker mk, int64_t id, char tok[TOKEN_SIZE])
{
	static const int key_of[] = { 0, 1, 2, 3 };
	const struct token_key *k = &keys_all[key_of[mk]];
	struct err err = { 0 };

	if (token_make(k->kind, id, EXP, k, tok, &err) < 0)
		fail_msg("token_make: %s", err.msg);
	assert_int_equal(strlen(tok), TOKEN_LEN);
	for (const char *p = tok; *p; p++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *p));
}

static void
test_verify_table(void **state)
{
	(void)state;
	setup_keys();
	for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
		const struct vcase *c = &vcases[i];
		char tok[TOKEN_SIZE + 8];
		const char *in = tok;
		struct token_info info;
		struct err err = { 0 };
		const struct token_key *keys;
		size_t nkeys, n;
		enum token_status st;

		make(c->maker, c->id, tok);
		n = strlen(tok);
		switch (c->mu) {
		case MU_NONE: break;
		case MU_UPPER:
			for (size_t k = 0; k < n; k++)
				if (tok[k] >= 'a' && tok[k] <= 'z')
					tok[k] = (char)(tok[k] - 32);
			break;
		case MU_MIXED:
			for (size_t k = 0; k < n; k += 2)
				if (tok[k] >= 'a' && tok[k] <= 'z')
					tok[k] = (char)(tok[k] - 32);
			break;
		case MU_CUT: tok[n - (size_t)c->arg] = '\0'; break;
		case MU_APPEND: memcpy(tok + n, "a", 2); break;
		case MU_BAD_CHAR: tok[c->arg] = '1'; break;
		case MU_EMPTY: tok[0] = '\0'; break;
		case MU_NULL: in = NULL; break;
		}
		keys = keyset(c->ks, &nkeys);
		memset(&info, 0, sizeof info);
		st = token_parse_verify(in, c->now, keys, nkeys, &info, &err);
		if (st != c->want)
			fail_msg("case %zu (%s): got %d, want %d (%s)", i,
			    c->what, (int)st, (int)c->want, err.msg);
		if (st == TOKEN_VALID || st == TOKEN_EXPIRED) {
			assert_int_equal(info.id, c->id);
			assert_int_equal(info.kind, keys_all[c->maker].kind);
			assert_int_equal(info.key_id, keys_all[c->maker].id);
			assert_int_equal(info.expires_at, EXP_DAY_END);
		}
		if (st != TOKEN_VALID && err.msg[0] == '\0')
			fail_msg("case %zu (%s): no reason given", i, c->what);
	}
}

/* Every character of a token replaced by every other base32 character:
 * nothing verifies (the bits behind it go to the version, kind, key id,
 * id, expiry or MAC, and all of them are under the MAC or checked). */
static void
test_every_character_tampered(void **state)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	const struct token_key *keys;
	size_t nkeys;
	char tok[TOKEN_SIZE], bad[TOKEN_SIZE];
	int tried = 0;

	(void)state;
	setup_keys();
	keys = keyset(KS_ROTATED, &nkeys);
	make(MK_NEW_REPLY, 123456789, tok);
	for (size_t i = 0; i < TOKEN_LEN; i++) {
		for (const char *a = alpha; *a; a++) {
			enum token_status st;

			if (*a == tok[i])
				continue;
			memcpy(bad, tok, sizeof bad);
			bad[i] = *a;
			st = token_parse_verify(bad, T0, keys, nkeys, NULL, NULL);
			if (st != TOKEN_INVALID)
				fail_msg("char %zu -> %c: status %d", i, *a,
				    (int)st);
			tried++;
		}
	}
	assert_int_equal(tried, TOKEN_LEN * 31);
	/* and the untouched one still verifies, with no info pointer */
	assert_int_equal(token_parse_verify(tok, T0, keys, nkeys, NULL, NULL),
	    TOKEN_VALID);
}

static void
test_make_errors(void **state)
{
	static const struct {
		enum token_kind kind;
		int key;
		int64_t id, exp;
		const char *why;
	} cases[] = {
		{ TOKEN_REPLY, 0, 0, EXP, "not positive" },
		{ TOKEN_REPLY, 0, -5, EXP, "not positive" },
		{ TOKEN_REPLY, 0, INT64_MIN, EXP, "not positive" },
		{ TOKEN_REPLY, 0, 1, 0, "out of range" },
		{ TOKEN_REPLY, 0, 1, -1, "out of range" },
		{ TOKEN_REPLY, 0, 1, 65536LL * DAY, "out of range" },
		{ TOKEN_BOUNCE, 0, 1, EXP, "no key" },     /* reply key */
		{ TOKEN_REPLY, 1, 1, EXP, "no key" },      /* bounce key */
		{ (enum token_kind)3, 0, 1, EXP, "no key" },
	};
	char tok[TOKEN_SIZE], addr[TOKEN_ADDRESS_SIZE];
	struct err err = { 0 };

	(void)state;
	setup_keys();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(tok, 'x', sizeof tok);
		if (token_make(cases[i].kind, cases[i].id, cases[i].exp,
		    &keys_all[cases[i].key], tok, &err) != -1)
			fail_msg("case %zu: made a token", i);
		assert_string_equal(tok, "");
		if (strstr(err.msg, cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg,
			    cases[i].why);
	}
	/* the last representable day still works */
	assert_int_equal(token_make(TOKEN_REPLY, 1, 65535LL * DAY,
	    &keys_all[0], tok, &err), 0);
	/* addresses */
	assert_int_equal(token_address_make(TOKEN_REPLY, 1, EXP, &keys_all[0],
	    "practice.test\r\nBcc: x@y.test", addr, sizeof addr, &err), -1);
	assert_string_equal(addr, "");
	assert_int_equal(token_address_make(TOKEN_REPLY, 1, EXP, &keys_all[0],
	    "not a domain", addr, sizeof addr, &err), -1);
	assert_int_equal(token_address_make(TOKEN_REPLY, 1, EXP, &keys_all[0],
	    "practice.test", addr, 20, &err), -1);
	assert_string_equal(addr, "");
}

/* Addresses as they arrive in headers. */
struct acase {
	const char *fmt;          /* {T} is the token (upper-cased if upper) */
	bool upper;
	enum maker maker;
	const char *domain;       /* filter for token_from_address */
	int want_found;           /* token_from_address's answer */
	enum token_status want;   /* token_verify_address's */
};

static const struct acase acases[] = {
	{ "reply+{T}@practice.test", false, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "Reply+{T}@Practice.Test", true, MK_NEW_REPLY, "practice.test", 1, TOKEN_VALID },
	{ "REPLY+{T}@PRACTICE.TEST", true, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "<reply+{T}@practice.test>", false, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "  \"Ann Lee\" <reply+{T}@practice.test>  ", false, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "\"Lee, Ann <ann@x.test>\" <reply+{T}@practice.test>", false, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "\"a \\\" <b@c.test>\" <reply+{T}@practice.test>", false, MK_NEW_REPLY, NULL, 1, TOKEN_VALID },
	{ "Ann <bounce+{T}@bounce.practice.test>", false, MK_NEW_BOUNCE, "bounce.practice.test", 1, TOKEN_VALID },
	{ "reply+{T}@practice.test", false, MK_NEW_REPLY, "other.test", 0, TOKEN_MISSING },
	{ "reply+{T}@practice.test", false, MK_NEW_REPLY, "practice.tes", 0, TOKEN_MISSING },
	{ "reply+{T}@practice.test", false, MK_NEW_REPLY, "practice.testx", 0, TOKEN_MISSING },
	{ "other+{T}@practice.test", false, MK_NEW_REPLY, NULL, 0, TOKEN_MISSING },
	{ "reply-{T}@practice.test", false, MK_NEW_REPLY, NULL, 0, TOKEN_MISSING },
	{ "reply@practice.test", false, MK_NEW_REPLY, NULL, 0, TOKEN_MISSING },
	{ "", false, MK_NEW_REPLY, NULL, 0, TOKEN_MISSING },
	{ "no at sign {T}", false, MK_NEW_REPLY, NULL, 0, TOKEN_MISSING },
	{ "reply+{T}x@practice.test", false, MK_NEW_REPLY, NULL, -1, TOKEN_INVALID },
	{ "reply+abc@practice.test", false, MK_NEW_REPLY, NULL, -1, TOKEN_INVALID },
	{ "reply+@practice.test", false, MK_NEW_REPLY, NULL, -1, TOKEN_INVALID },
	/* a bounce token in a reply address, and the other way round */
	{ "reply+{T}@practice.test", false, MK_NEW_BOUNCE, NULL, 1, TOKEN_INVALID },
	{ "bounce+{T}@practice.test", false, MK_NEW_REPLY, NULL, 1, TOKEN_INVALID },
	/* an old key still accepted: verified with KS_ROTATED below */
	{ "reply+{T}@practice.test", false, MK_OLD_REPLY, NULL, 1, TOKEN_VALID },
};

/* fmt with "{T}" replaced by tok, into out[size]. */
static void
subst(char *out, size_t size, const char *fmt, const char *tok)
{
	const char *t = strstr(fmt, "{T}");

	if (t == NULL)
		snprintf(out, size, "%s", fmt);
	else
		snprintf(out, size, "%.*s%s%s", (int)(t - fmt), fmt, tok, t + 3);
}

static void
test_address_table(void **state)
{
	const struct token_key *keys;
	size_t nkeys;

	(void)state;
	setup_keys();
	keys = keyset(KS_ROTATED, &nkeys);
	for (size_t i = 0; i < sizeof acases / sizeof acases[0]; i++) {
		const struct acase *c = &acases[i];
		char tok[TOKEN_SIZE], in[256], got[TOKEN_SIZE];
		enum token_kind kind = 0;
		struct token_info info;
		struct err err = { 0 };
		enum token_status st;
		int found;

		make(c->maker, 1000 + (int64_t)i, tok);
		if (c->upper)
			for (char *p = tok; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 32);
		subst(in, sizeof in, c->fmt, tok);
		found = token_from_address(in, c->domain, &kind, got);
		if (found != c->want_found)
			fail_msg("case %zu [%s]: found %d, want %d", i, in,
			    found, c->want_found);
		if (found == 1) {
			char lower[TOKEN_SIZE];
			for (size_t k = 0; k <= TOKEN_LEN; k++)
				lower[k] = (char)(tok[k] >= 'A' && tok[k] <= 'Z'
				    ? tok[k] + 32 : tok[k]);
			assert_string_equal(got, lower);
		}
		st = token_verify_address(in, c->domain, T0, keys, nkeys, &info,
		    &err);
		if (st != c->want)
			fail_msg("case %zu [%s]: status %d, want %d (%s)", i,
			    in, (int)st, (int)c->want, err.msg);
		if (st == TOKEN_VALID)
			assert_int_equal(info.id, 1000 + (int64_t)i);
	}
	/* NULL and over-long input */
	{
		char tok[TOKEN_SIZE], big[5000];
		enum token_kind kind;

		assert_int_equal(token_from_address(NULL, NULL, &kind, tok), 0);
		memset(big, ' ', sizeof big);
		make(MK_NEW_REPLY, 5, tok);
		snprintf(big + sizeof big - 80, 80, "reply+%s@practice.test",
		    tok);
		assert_int_equal(token_from_address(big, NULL, &kind, tok), 0);
	}
}

/* The address is one a mail system accepts: our own address check, a
 * local part of at most 64 bytes. */
static void
test_address_shape(void **state)
{
	char addr[TOKEN_ADDRESS_SIZE], norm[LIMIT_EMAIL + 1];
	struct err err = { 0 };
	struct token_info info;

	(void)state;
	setup_keys();
	if (token_address_make(TOKEN_BOUNCE, INT64_MAX, EXP, &keys_all[1],
	    "Bounce.Practice.TEST", addr, sizeof addr, &err) < 0)
		fail_msg("token_address_make: %s", err.msg);
	assert_true(strncmp(addr, "bounce+", 7) == 0);
	assert_int_equal(strchr(addr, '@') - addr, 7 + TOKEN_LEN);
	assert_true(strchr(addr, '@') - addr <= EMAIL_LOCAL_MAX);
	assert_non_null(strstr(addr, "@bounce.practice.test"));
	if (email_normalize_check(addr, norm, sizeof norm, &err) < 0)
		fail_msg("email_normalize_check(%s): %s", addr, err.msg);
	assert_string_equal(norm, addr);
	assert_int_equal(token_verify_address(addr, "bounce.practice.test", T0,
	    keys_all, 4, &info, &err), TOKEN_VALID);
	assert_int_equal(info.kind, TOKEN_BOUNCE);
	assert_int_equal(info.id, INT64_MAX);
	/* deterministic: the same inputs make the same token */
	{
		char a[TOKEN_SIZE], b[TOKEN_SIZE];
		assert_int_equal(token_make(TOKEN_REPLY, 9, EXP, &keys_all[0], a,
		    &err), 0);
		assert_int_equal(token_make(TOKEN_REPLY, 9, EXP, &keys_all[0], b,
		    &err), 0);
		assert_string_equal(a, b);
		assert_int_equal(token_make(TOKEN_REPLY, 10, EXP, &keys_all[0],
		    b, &err), 0);
		assert_string_not_equal(a, b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_table),
		cmocka_unit_test(test_every_character_tampered),
		cmocka_unit_test(test_make_errors),
		cmocka_unit_test(test_address_table),
		cmocka_unit_test(test_address_shape),
	};
	struct err err = { 0 };

	if (crypto_init(&err) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
