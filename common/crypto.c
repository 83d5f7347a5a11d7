/* common/crypto.c: thin, checked wrappers over libsodium. */
#include "common/crypto.h"

#include <sodium.h>
#include <string.h>

static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {
	'p', 'o', 's', 't', 'e', 'r', 'n', '1'
};

int
crypto_init(struct err *err)
{
	if (sodium_init() < 0)
		return err_set(err, false, "libsodium failed to initialise");
	return 0;
}

void
crypto_subkey(const uint8_t server_key[CRYPTO_KEY_BYTES],
    enum crypto_subkey_id id, uint8_t out[CRYPTO_KEY_BYTES])
{
	if (crypto_kdf_derive_from_key(out, CRYPTO_KEY_BYTES, (uint64_t)id,
	        kdf_context, server_key) != 0)
		BUG("crypto_kdf_derive_from_key failed");
}

void
crypto_token_new(size_t nbytes, char *out, size_t size)
{
	uint8_t raw[64];

	if (nbytes > sizeof raw || size < CRYPTO_B64URL_LEN(nbytes))
		BUG("token of %zu bytes into %zu", nbytes, size);
	randombytes_buf(raw, nbytes);
	sodium_bin2base64(out, size, raw, nbytes,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
}

void
crypto_keyed_hash(const uint8_t key[CRYPTO_KEY_BYTES], const void *msg,
    size_t len, uint8_t out[CRYPTO_HASH_BYTES])
{
	crypto_generichash(out, CRYPTO_HASH_BYTES, msg, len, key,
	    CRYPTO_KEY_BYTES);
}

bool
crypto_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void
crypto_hex(const uint8_t *p, size_t n, char *out)
{
	sodium_bin2hex(out, n * 2 + 1, p, n);
}

void
crypto_sha256(const void *msg, size_t len, uint8_t out[32])
{
	crypto_hash_sha256(out, msg, len);
}

uint32_t
crypto_random_below(uint32_t upper)
{
	return randombytes_uniform(upper);
}
