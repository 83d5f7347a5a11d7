/* mailer/token.c: reply and bounce address tokens (format in token.h).
 *
 * Owns nothing: keys are the caller's, results go into caller buffers.
 * Untrusted input (addresses from mail headers) is read up to
 * LIMIT_MAIL_ADDRESS_SCAN bytes and never copied past TOKEN_LEN. */
#include "mailer/token.h"

#include "common/limits.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/email.h"

#define RAW_LEN 25              /* bytes behind the 40 characters */
#define BODY_LEN 12             /* bytes under the MAC */
#define MAC_LEN (RAW_LEN - BODY_LEN)
#define DAY_S 86400

_Static_assert(RAW_LEN * 8 == TOKEN_LEN * 5, "base32 without padding");
_Static_assert(MAC_LEN * 8 >= 80, "the MAC keeps at least 80 bits");

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static void
b32_encode(const uint8_t raw[RAW_LEN], char out[TOKEN_SIZE])
{
	/* 5 bytes -> 8 characters, 5 times. */
	for (size_t g = 0; g < RAW_LEN / 5; g++) {
		uint64_t v = 0;

		for (size_t i = 0; i < 5; i++)
			v = v << 8 | raw[5 * g + i];
		for (size_t i = 0; i < 8; i++)
			out[8 * g + i] = b32[(v >> (35 - 5 * i)) & 31];
	}
	out[TOKEN_LEN] = '\0';
}

static int
b32_value(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/* Exactly TOKEN_LEN base32 characters (any case) at s, then n ends. */
static bool
b32_decode(const char *s, size_t n, uint8_t raw[RAW_LEN])
{
	if (n != TOKEN_LEN)
		return false;
	for (size_t g = 0; g < RAW_LEN / 5; g++) {
		uint64_t v = 0;

		for (size_t i = 0; i < 8; i++) {
			int d = b32_value((unsigned char)s[8 * g + i]);
			if (d < 0)
				return false;
			v = v << 5 | (uint64_t)d;
		}
		for (size_t i = 0; i < 5; i++)
			raw[5 * g + i] = (uint8_t)(v >> (32 - 8 * i));
	}
	return true;
}

static void
mac(const struct token_key *k, const uint8_t body[BODY_LEN],
    uint8_t out[MAC_LEN])
{
	uint8_t full[crypto_generichash_BYTES_MIN];

	_Static_assert(MAC_LEN <= crypto_generichash_BYTES_MIN, "MAC length");
	crypto_generichash(full, sizeof full, body, BODY_LEN, k->key,
	    sizeof k->key);
	memcpy(out, full, MAC_LEN);
	sodium_memzero(full, sizeof full);
}

static enum crypto_subkey_id
subkey_of(enum token_kind kind)
{
	return kind == TOKEN_REPLY ? SUBKEY_REPLY_ADDR : SUBKEY_BOUNCE_ADDR;
}

static bool
kind_ok(int kind)
{
	return kind == TOKEN_REPLY || kind == TOKEN_BOUNCE;
}

void
token_key_init(struct token_key *k, uint8_t key_id, enum token_kind kind,
    const uint8_t server_key[CRYPTO_KEY_BYTES])
{
	if (!kind_ok(kind))
		BUG("token kind %d", (int)kind);
	k->id = key_id;
	k->kind = kind;
	crypto_subkey(server_key, subkey_of(kind), k->key);
}

int
token_make(enum token_kind kind, int64_t id, int64_t expires_at,
    const struct token_key *key, char out[TOKEN_SIZE], struct err *err)
{
	uint8_t raw[RAW_LEN];
	int64_t day;

	out[0] = '\0';
	if (!kind_ok(kind) || key == NULL || key->kind != kind)
		return err_set(err, false, "token: no key of kind %d", (int)kind);
	if (id <= 0)
		return err_set(err, false, "token: id %lld is not positive",
		    (long long)id);
	if (expires_at <= 0 || expires_at > (int64_t)UINT16_MAX * DAY_S)
		return err_set(err, false, "token: expiry %lld out of range",
		    (long long)expires_at);
	day = (expires_at + DAY_S - 1) / DAY_S;   /* round up: never shorter */
	raw[0] = (uint8_t)(TOKEN_VERSION << 4 | kind);
	raw[1] = key->id;
	for (int i = 0; i < 8; i++)
		raw[2 + i] = (uint8_t)((uint64_t)id >> (56 - 8 * i));
	raw[10] = (uint8_t)(day >> 8);
	raw[11] = (uint8_t)day;
	mac(key, raw, raw + BODY_LEN);
	b32_encode(raw, out);
	return 0;
}

static enum token_status
verify_raw(const char *s, size_t n, int64_t now, const struct token_key *keys,
    size_t nkeys, struct token_info *info_r, struct err *err)
{
	uint8_t raw[RAW_LEN], want[MAC_LEN];
	const struct token_key *k = NULL;
	struct token_info info;
	uint64_t id = 0;
	int kind;
	bool ok;

	if (!b32_decode(s, n, raw)) {
		err_set(err, false, "token: not %d base32 characters", TOKEN_LEN);
		return TOKEN_INVALID;
	}
	if (raw[0] >> 4 != TOKEN_VERSION) {
		err_set(err, false, "token: unknown version %d", raw[0] >> 4);
		return TOKEN_INVALID;
	}
	kind = raw[0] & 15;
	if (!kind_ok(kind)) {
		err_set(err, false, "token: unknown kind %d", kind);
		return TOKEN_INVALID;
	}
	for (size_t i = 0; i < nkeys && k == NULL; i++)
		if (keys[i].id == raw[1] && (int)keys[i].kind == kind)
			k = &keys[i];
	if (k == NULL) {
		err_set(err, false, "token: unknown key id %d", raw[1]);
		return TOKEN_INVALID;
	}
	mac(k, raw, want);
	ok = sodium_memcmp(want, raw + BODY_LEN, MAC_LEN) == 0;
	sodium_memzero(want, sizeof want);
	if (!ok) {
		err_set(err, false, "token: bad MAC");
		return TOKEN_INVALID;
	}
	for (int i = 0; i < 8; i++)
		id = id << 8 | raw[2 + i];
	if (id == 0 || id > (uint64_t)INT64_MAX) {
		/* authentic but never made by token_make(): a key leak or a bug */
		err_set(err, false, "token: id out of range");
		return TOKEN_INVALID;
	}
	info.kind = (enum token_kind)kind;
	info.key_id = raw[1];
	info.id = (int64_t)id;
	info.expires_at = ((int64_t)raw[10] << 8 | raw[11]) * DAY_S;
	if (info_r != NULL)
		*info_r = info;
	if (now >= info.expires_at) {
		err_set(err, false, "token: expired");
		return TOKEN_EXPIRED;
	}
	return TOKEN_VALID;
}

enum token_status
token_parse_verify(const char *s, int64_t now, const struct token_key *keys,
    size_t nkeys, struct token_info *info_r, struct err *err)
{
	if (s == NULL || s[0] == '\0') {
		err_set(err, false, "token: missing");
		return TOKEN_MISSING;
	}
	return verify_raw(s, strnlen(s, TOKEN_LEN + 1), now, keys, nkeys,
	    info_r, err);
}

int
token_address_make(enum token_kind kind, int64_t id, int64_t expires_at,
    const struct token_key *key, const char *domain, char *out, size_t size,
    struct err *err)
{
	char tok[TOKEN_SIZE], dom[EMAIL_DOMAIN_MAX + 1];
	int n;

	if (size > 0)
		out[0] = '\0';
	if (domain == NULL || strpbrk(domain, "\r\n") != NULL)
		return err_set(err, false, "token address: bad domain");
	if (email_domain_normalize_check(domain, dom, sizeof dom, err) < 0) {
		err_prefix(err, "token address domain");
		return -1;
	}
	if (token_make(kind, id, expires_at, key, tok, err) < 0)
		return -1;
	n = snprintf(out, size, "%s+%s@%s",
	    kind == TOKEN_REPLY ? "reply" : "bounce", tok, dom);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			out[0] = '\0';
		return err_set(err, false, "token address: buffer of %zu "
		    "bytes too small", size);
	}
	return 0;
}

/* The addr-spec inside s[0..n): the last <…> outside double quotes, else
 * all of s; white space trimmed. */
static void
mailbox_of(const char *s, size_t n, const char **p_r, size_t *n_r)
{
	const char *open = NULL, *close = NULL;
	bool quoted = false;

	for (size_t i = 0; i < n; i++) {
		if (quoted) {
			if (s[i] == '\\' && i + 1 < n)
				i++;
			else if (s[i] == '"')
				quoted = false;
		} else if (s[i] == '"') {
			quoted = true;
		} else if (s[i] == '<') {
			open = s + i;
			close = NULL;
		} else if (s[i] == '>' && open != NULL && close == NULL) {
			close = s + i;
		}
	}
	if (open != NULL && close != NULL) {
		s = open + 1;
		n = (size_t)(close - s);
	}
	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	*p_r = s;
	*n_r = n;
}

int
token_from_address(const char *addr, const char *domain,
    enum token_kind *kind_r, char tok[TOKEN_SIZE])
{
	const char *p, *at, *t;
	size_t n, tn;
	enum token_kind kind;

	tok[0] = '\0';
	if (addr == NULL)
		return 0;
	n = strnlen(addr, LIMIT_MAIL_ADDRESS_SCAN + 1);
	if (n > LIMIT_MAIL_ADDRESS_SCAN)
		return 0;
	mailbox_of(addr, n, &p, &n);
	at = NULL;
	for (size_t i = 0; i < n; i++)          /* the last @ */
		if (p[i] == '@')
			at = p + i;
	if (at == NULL)
		return 0;
	if (domain != NULL && (strlen(domain) != (size_t)(p + n - at - 1) ||
	    strncasecmp(at + 1, domain, strlen(domain)) != 0))
		return 0;
	if (at - p >= 6 && strncasecmp(p, "reply+", 6) == 0) {
		kind = TOKEN_REPLY;
		t = p + 6;
	} else if (at - p >= 7 && strncasecmp(p, "bounce+", 7) == 0) {
		kind = TOKEN_BOUNCE;
		t = p + 7;
	} else {
		return 0;
	}
	*kind_r = kind;
	tn = (size_t)(at - t);
	if (tn != TOKEN_LEN)
		return -1;
	for (size_t i = 0; i < tn; i++) {
		int d = b32_value((unsigned char)t[i]);
		if (d < 0) {
			tok[0] = '\0';
			return -1;
		}
		tok[i] = b32[d];
	}
	tok[TOKEN_LEN] = '\0';
	return 1;
}

enum token_status
token_verify_address(const char *addr, const char *domain, int64_t now,
    const struct token_key *keys, size_t nkeys, struct token_info *info_r,
    struct err *err)
{
	char tok[TOKEN_SIZE];
	enum token_kind kind;
	struct token_info info;
	enum token_status st;

	switch (token_from_address(addr, domain, &kind, tok)) {
	case 0:
		err_set(err, false, "token: no reply+ or bounce+ address");
		return TOKEN_MISSING;
	case -1:
		err_set(err, false, "token: not %d base32 characters after "
		    "the +", TOKEN_LEN);
		return TOKEN_INVALID;
	}
	st = token_parse_verify(tok, now, keys, nkeys, &info, err);
	if ((st == TOKEN_VALID || st == TOKEN_EXPIRED) && info.kind != kind) {
		err_set(err, false, "token: a %s token in a %s address",
		    info.kind == TOKEN_REPLY ? "reply" : "bounce",
		    kind == TOKEN_REPLY ? "reply" : "bounce");
		return TOKEN_INVALID;
	}
	if ((st == TOKEN_VALID || st == TOKEN_EXPIRED) && info_r != NULL)
		*info_r = info;
	return st;
}
