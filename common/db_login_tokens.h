/* common/db_login_tokens.h: every statement on login_tokens, and the
 * lookup of who may log in with an address (the magic_link job's input).
 *
 * Only keyed hashes are stored (common/crypto.h: SUBKEY_LOGIN_TOKEN for the
 * link's token, SUBKEY_LOGIN_CODE for the short code); the token itself
 * exists only in the mail. */
#ifndef POSTERN_COMMON_DB_LOGIN_TOKENS_H
#define POSTERN_COMMON_DB_LOGIN_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/db.h"
#include "common/err.h"
#include "common/limits.h"

/* Someone who may log in, with the mail identity of their practice.
 * Copied into the struct. */
struct db_login_subject {
	int64_t staff_user_id;        /* exactly one of the two is > 0 */
	int64_t patient_id;
	int64_t practice_id;
	char email[LIMIT_EMAIL + 1];
	char practice_name[LIMIT_NAME * 4 + 1];
	char from_name[LIMIT_NAME * 4 + 1];    /* "" when NULL */
	char from_address[LIMIT_EMAIL + 1];
};

/* The login subject for email (any case): an active staff user first,
 * then a patient with portal access; practice_id > 0 limits the search to
 * that practice, else the lowest id wins. 1: *s_r filled; 0: nobody (the
 * caller says nothing different to the requester); -1: err. */
MUST_CHECK int db_login_tokens_find_subject(struct db *db, const char *email,
    int64_t practice_id, struct db_login_subject *s_r, struct err *err);

/* One live subject by id (for a payload naming it): 1 / 0 / -1. */
MUST_CHECK int db_login_tokens_subject_by_id(struct db *db,
    int64_t staff_user_id, int64_t patient_id, struct db_login_subject *s_r,
    struct err *err);

/* Stores a login token: hashes of the token and of the code, expiring
 * lifetime_s seconds from now (database clock). requested_ip may be NULL.
 * *id_r: the row's id. */
MUST_CHECK int db_login_tokens_insert(struct db *db,
    const struct db_login_subject *s,
    const uint8_t token_hash[CRYPTO_HASH_BYTES],
    const uint8_t code_hash[CRYPTO_HASH_BYTES], int64_t lifetime_s,
    const char *requested_ip, int64_t *id_r, struct err *err);

/* Spends a login link: the purpose-login token with this hash, unused and
 * unexpired, is marked used in the same statement that checks it (two
 * racing requests cannot both win). 1: spent, *staff_r or *patient_r is
 * the subject (the other is 0); 0: unknown, used or expired (one answer on
 * purpose); -1: err. */
MUST_CHECK int db_login_tokens_consume(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], int64_t *staff_r,
    int64_t *patient_r, struct err *err);

/* The same by row id, for the short code once it matched. */
MUST_CHECK int db_login_tokens_consume_id(struct db *db, int64_t id,
    int64_t *staff_r, int64_t *patient_r, struct err *err);

/* Code sign-in: takes the newest unused, unexpired login token with a code
 * of anyone with this email (any case) and counts one attempt on it, but
 * only while fewer than max_attempts were made. 1: counted, *id_r and
 * code_hash_r set (compare in constant time); 0: none counted, *locked_r
 * tells whether that is because the newest token's attempts are used up
 * (else there is no such token); -1: err. Commit even when the code turns
 * out wrong: the attempt must stay counted. */
MUST_CHECK int db_login_tokens_code_attempt(struct db *db, const char *email,
    int max_attempts, int64_t *id_r,
    uint8_t code_hash_r[CRYPTO_HASH_BYTES], bool *locked_r, struct err *err);

/* --- confirm_sender: "was this reply yours?" (a held inbound mail) ------ */

/* Stores a confirm_sender token (its keyed hash, SUBKEY_LOGIN_TOKEN, like
 * a login link's) for patient_id and the held inbound_mail_id, expiring
 * lifetime_s seconds from now. *id_r: the row's id. */
MUST_CHECK int db_login_tokens_insert_confirm(struct db *db,
    int64_t patient_id, int64_t inbound_mail_id,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], int64_t lifetime_s,
    int64_t *id_r, struct err *err);

/* What a live confirm_sender token is about, for the page that asks
 * (GET /confirm): it reads, never spends. Copied into the struct. */
struct db_confirm_view {
	char sender[LIMIT_EMAIL * 4 + 1];     /* inbound_mail.from_addr */
	/* received_at in the patient's zone (else the practice's), e.g.
	 * "21 Nov 2026, 15:04 (Europe/Berlin)" */
	char received[96];
	char practice_name[LIMIT_NAME * 4 + 1];
};
/* 1: *v_r filled; 0: unknown, used or expired token, or the mail is no
 * longer held (one answer on purpose); -1: err. */
MUST_CHECK int db_login_tokens_confirm_peek(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], struct db_confirm_view *v_r,
    struct err *err);

/* Spends a confirm_sender token (POST /confirm), in the caller's
 * transaction: the token with this hash, unused, unexpired, whose mail is
 * still held and pending, is marked used in the statement that checks it,
 * and so is every other live token for the same mail (one decision per
 * held mail, whichever of its mails the patient opens). 1: spent,
 * *inbound_mail_id_r and *patient_id_r set; 0: unknown, used, expired or
 * already decided; -1: err. */
MUST_CHECK int db_login_tokens_confirm_consume(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], int64_t *inbound_mail_id_r,
    int64_t *patient_id_r, struct err *err);

#endif
