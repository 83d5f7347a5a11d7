/* common/crypto.h: tokens, keyed hashes and subkeys (libsodium).
 *
 * The server key (32 bytes, config) never signs anything itself: each use
 * gets its own subkey from crypto_subkey(), so rotating or leaking one use
 * does not touch the others. Tokens are stored only as keyed hashes and
 * compared in constant time. */
#ifndef POSTERN_COMMON_CRYPTO_H
#define POSTERN_COMMON_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CRYPTO_KEY_BYTES 32
#define CRYPTO_HASH_BYTES 32
#define CRYPTO_TOKEN_BYTES 32          /* 256-bit login and session tokens */
/* base64url without padding of n bytes, plus NUL. */
#define CRYPTO_B64URL_LEN(n) (((n) * 4 + 2) / 3 + 1)

/* One id per use of the server key; never renumber (stored hashes and
 * tokens in the wild depend on them). */
enum crypto_subkey_id {
	SUBKEY_LOGIN_TOKEN = 1,
	SUBKEY_SESSION = 2,
	SUBKEY_REPLY_ADDR = 3,
	SUBKEY_BOUNCE_ADDR = 4,
	SUBKEY_CSRF = 5,
	SUBKEY_LOGIN_CODE = 6,
	SUBKEY_AUDIT = 7,
	SUBKEY_REPORT_SIGN = 8,
};

/* sodium_init(); -1 and err set if libsodium cannot start. */
MUST_CHECK int crypto_init(struct err *err);

/* Derives the subkey for one use from the server key. */
void crypto_subkey(const uint8_t server_key[CRYPTO_KEY_BYTES],
    enum crypto_subkey_id id, uint8_t out[CRYPTO_KEY_BYTES]);

/* nbytes random bytes as base64url without padding into out[size];
 * size must be at least CRYPTO_B64URL_LEN(nbytes) (else BUG). */
void crypto_token_new(size_t nbytes, char *out, size_t size);

/* BLAKE2b-256 keyed with key over msg: what we store for a token. */
void crypto_keyed_hash(const uint8_t key[CRYPTO_KEY_BYTES], const void *msg,
    size_t len, uint8_t out[CRYPTO_HASH_BYTES]);

/* Constant-time equality of two n-byte strings. */
bool crypto_equal(const void *a, const void *b, size_t n);

/* Lower-case hex of n bytes into out[2n + 1]. */
void crypto_hex(const uint8_t *p, size_t n, char *out);

/* SHA-256 of msg (for file checksums and content hashes). */
void crypto_sha256(const void *msg, size_t len, uint8_t out[32]);

/* Random integer in [0, upper) (upper > 0), uniform. */
uint32_t crypto_random_below(uint32_t upper);

#endif
