/* common/db_audit.h: appending to audit_log, the keyed hash chain of
 * migrations/006_audit.sql (whose header defines the canonical encoding,
 * version 1, that audit_hash() implements).
 *
 * Appends take a transaction-scoped advisory lock, so they serialise: call
 * db_audit_append() as the LAST statements of a transaction, with every
 * entry of that transaction at once. */
#ifndef POSTERN_COMMON_DB_AUDIT_H
#define POSTERN_COMMON_DB_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/db.h"
#include "common/err.h"

#define AUDIT_KEY_VERSION 1
#define AUDIT_BATCH_MAX 500          /* entries per append */

/* One row to append. 0 ids and NULL strings are SQL NULL. */
struct audit_entry {
	int64_t practice_id;
	const char *actor_kind;      /* "staff", "patient", "system" */
	int64_t actor_id;            /* 0 for system */
	const char *action;          /* "message.received", "login", … */
	const char *object_type;
	int64_t object_id;
	const char *ip;              /* textual IPv4/IPv6 address */
	const char *details;         /* a JSON object's text */
};

/* The row's hash: HMAC-SHA-256 keyed with the audit key of key_version
 * over the canonical encoding. prev is NULL for row 1. created_us:
 * microseconds since the epoch. -1 when ip does not parse. */
MUST_CHECK int audit_hash(const uint8_t server_key[CRYPTO_KEY_BYTES],
    int key_version, int64_t id, int64_t created_us, const uint8_t *prev,
    const struct audit_entry *e, uint8_t out[CRYPTO_HASH_BYTES]);

/* Appends e[n] (n <= AUDIT_BATCH_MAX) in order, inside the caller's open
 * transaction. 0 or -1 with err set. */
MUST_CHECK int db_audit_append(struct db *db,
    const uint8_t server_key[CRYPTO_KEY_BYTES], const struct audit_entry *e,
    size_t n, struct err *err);

#endif
