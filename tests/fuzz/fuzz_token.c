/* tests/fuzz/fuzz_token.c: token parsing and verification on arbitrary
 * strings and addresses. Never crashes, and never says VALID (or EXPIRED,
 * which also means "authentic") for anything token_make() did not make:
 * whatever verifies must re-make, from what it says, to exactly its own
 * (lower-cased) spelling. The seeds in corpus/token/ are tokens made with
 * the keys below, so mutations start next to real ones. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailer/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1790000000LL

static struct token_key keys[4];

static void
init_keys(void)
{
	static bool done;
	uint8_t a[CRYPTO_KEY_BYTES], b[CRYPTO_KEY_BYTES];

	if (done)
		return;
	memset(a, 0x42, sizeof a);             /* key id 1 */
	memset(b, 0x43, sizeof b);             /* key id 7 */
	token_key_init(&keys[0], 1, TOKEN_REPLY, a);
	token_key_init(&keys[1], 1, TOKEN_BOUNCE, a);
	token_key_init(&keys[2], 7, TOKEN_REPLY, b);
	token_key_init(&keys[3], 7, TOKEN_BOUNCE, b);
	done = true;
}

/* info must describe exactly the token tok (any case). */
static void
remake_must_equal(const struct token_info *info, const char *tok)
{
	const struct token_key *k = NULL;
	char again[TOKEN_SIZE];

	for (size_t i = 0; i < 4; i++)
		if (keys[i].id == info->key_id && keys[i].kind == info->kind)
			k = &keys[i];
	if (k == NULL || info->id <= 0 || info->expires_at % 86400 != 0)
		abort();
	if (token_make(info->kind, info->id, info->expires_at, k, again,
	    NULL) < 0)
		abort();
	if (strlen(tok) != TOKEN_LEN)
		abort();
	for (size_t i = 0; i < TOKEN_LEN; i++) {
		char c = tok[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != again[i])
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[8192], tok[TOKEN_SIZE];
	struct token_info info;
	struct err err;
	enum token_kind kind;
	enum token_status st;
	int found;

	init_keys();
	if (size >= sizeof in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	st = token_parse_verify(in, NOW, keys, 4, &info, &err);
	if (st == TOKEN_VALID || st == TOKEN_EXPIRED) {
		remake_must_equal(&info, in);
		if ((st == TOKEN_VALID) != (NOW < info.expires_at))
			abort();
	} else if (st == TOKEN_MISSING && in[0] != '\0') {
		abort();
	}

	found = token_from_address(in, NULL, &kind, tok);
	if (found < -1 || found > 1)
		abort();
	if (found == 1 && (strlen(tok) != TOKEN_LEN ||
	    strspn(tok, "abcdefghijklmnopqrstuvwxyz234567") != TOKEN_LEN))
		abort();
	st = token_verify_address(in, NULL, NOW, keys, 4, &info, &err);
	if (st == TOKEN_VALID || st == TOKEN_EXPIRED) {
		if (found != 1 || info.kind != kind)
			abort();
		remake_must_equal(&info, tok);
	}
	if ((st == TOKEN_MISSING) != (found == 0))
		abort();
	return 0;
}
