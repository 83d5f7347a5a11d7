/* mailer/token.h: reply and bounce address tokens, verified offline.
 *
 * A reply address is reply+TOKEN@<reply domain> (the token names a
 * thread), a VERP envelope sender bounce+TOKEN@<bounce domain> (it names a
 * delivery). Checking one needs no database: a forged or stale token costs
 * a MAC and nothing else.
 *
 * Token: 25 bytes, base32 (RFC 4648 alphabet, lower case, no padding) as
 * exactly TOKEN_LEN = 40 characters, so it survives MTAs that fold case and
 * is a valid dot-atom local part ("bounce+" + 40 = 47 <= 64):
 *
 *   byte  0      version (high 4 bits, = 1) | kind (low 4 bits)
 *   byte  1      key id (which key made the MAC; keys rotate)
 *   bytes 2-9    id, big-endian int64 > 0 (thread or delivery)
 *   bytes 10-11  expiry, big-endian UTC day number since 1970-01-01: the
 *                token is good until 00:00 UTC of that day
 *   bytes 12-24  MAC: the first 13 bytes (104 bits) of keyed BLAKE2b over
 *                bytes 0-11, keyed with the key's subkey for that kind
 *                (SUBKEY_REPLY_ADDR or SUBKEY_BOUNCE_ADDR)
 *
 * Decoding ignores case; every 40-character base32 string decodes to one
 * 25-byte value and back, so a valid token has exactly one spelling (its
 * lower-case form). */
#ifndef POSTERN_MAILER_TOKEN_H
#define POSTERN_MAILER_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/err.h"

#define TOKEN_LEN 40                 /* characters */
#define TOKEN_SIZE (TOKEN_LEN + 1)   /* with the NUL */
#define TOKEN_VERSION 1
/* "bounce+" + TOKEN + "@" + a domain of EMAIL_DOMAIN_MAX, plus NUL. */
#define TOKEN_ADDRESS_SIZE (7 + TOKEN_LEN + 1 + 253 + 1)

enum token_kind {
	TOKEN_REPLY = 1,        /* reply+…: id is a thread */
	TOKEN_BOUNCE = 2,       /* bounce+…: id is a delivery */
};

enum token_status {
	TOKEN_VALID,            /* made by us with a key we hold, not expired */
	TOKEN_INVALID,          /* bad format, version, kind, key id or MAC */
	TOKEN_EXPIRED,          /* authentic, but past its expiry */
	TOKEN_MISSING,          /* no token where one was looked for */
};

/* One key: what the MAC is keyed with, for one kind. Plain data the
 * caller owns; wipe it with sodium_memzero() when done. */
struct token_key {
	uint8_t id;                          /* written into each token */
	enum token_kind kind;
	uint8_t key[CRYPTO_KEY_BYTES];       /* the subkey */
};

/* What a token says. Filled for TOKEN_VALID and TOKEN_EXPIRED. */
struct token_info {
	enum token_kind kind;
	uint8_t key_id;
	int64_t id;
	int64_t expires_at;     /* unix seconds: 00:00 UTC of the expiry day */
};

/* Derives the key for kind from a server key (its subkey for that kind)
 * and labels it key_id. The caller keeps one per kind per server key it
 * still accepts: the current one first, older ones while their tokens may
 * be in the wild. */
void token_key_init(struct token_key *k, uint8_t key_id, enum token_kind kind,
    const uint8_t server_key[CRYPTO_KEY_BYTES]);

/* Makes the token for (kind, id) good until expires_at (unix seconds,
 * rounded up to the next 00:00 UTC, so never shorter than asked) into
 * out[TOKEN_SIZE]. key->kind must be kind. -1 with err set for id <= 0,
 * an expiry in 1970 or past the year 2149, or a key of the other kind. */
MUST_CHECK int token_make(enum token_kind kind, int64_t id,
    int64_t expires_at, const struct token_key *key, char out[TOKEN_SIZE],
    struct err *err);

/* Parses and verifies s (any case). now: unix seconds. keys[nkeys]: every
 * key still accepted (both kinds may be mixed; the token's kind and key id
 * pick one). TOKEN_MISSING when s is NULL or "". On TOKEN_INVALID and
 * TOKEN_EXPIRED err (may be NULL) says why, for logs; *info_r is filled
 * for TOKEN_VALID and TOKEN_EXPIRED. MACs are compared in constant time. */
enum token_status token_parse_verify(const char *s, int64_t now,
    const struct token_key *keys, size_t nkeys, struct token_info *info_r,
    struct err *err);

/* kind+TOKEN@domain for a fresh token: token_make() then the address
 * (domain checked and lower-cased) into out[size] (TOKEN_ADDRESS_SIZE is
 * enough). 0, or -1 with err set and out "". */
MUST_CHECK int token_address_make(enum token_kind kind, int64_t id,
    int64_t expires_at, const struct token_key *key, const char *domain,
    char *out, size_t size, struct err *err);

/* Finds a token in an address as found in To, Delivered-To or Reply-To:
 * "reply+TOKEN@domain", "Reply+TOKEN@Practice.Test", "<bounce+…@…>",
 * "\"Name, <x>\" <reply+…@…>" (quoted display names are skipped; the
 * mailbox is the last <…> outside quotes, else the whole trimmed string).
 * The local part must be "reply+" or "bounce+" (any case) and then the
 * token. domain: when not NULL the address's domain must equal it (any
 * case). 1: *kind_r and tok[TOKEN_SIZE] (lower case) set. 0: not a reply+
 * or bounce+ address (of that domain). -1: it is one, *kind_r set, but
 * what follows the + is not TOKEN_LEN base32 characters (cut or mangled).
 * Reads at most 4096 bytes of addr (longer: 0). */
int token_from_address(const char *addr, const char *domain,
    enum token_kind *kind_r, char tok[TOKEN_SIZE]);

/* token_from_address() then token_parse_verify(): TOKEN_MISSING without a
 * token, TOKEN_INVALID when the address's prefix names the other kind. */
enum token_status token_verify_address(const char *addr, const char *domain,
    int64_t now, const struct token_key *keys, size_t nkeys,
    struct token_info *info_r, struct err *err);

#endif
