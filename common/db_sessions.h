/* common/db_sessions.h: every statement on the sessions table.
 *
 * A session is what a spent login token turns into: the browser holds a
 * random 256-bit token in a cookie; the table holds only its keyed hash
 * (common/crypto.h SUBKEY_SESSION), so a copy of the table signs nobody in.
 * csrf_secret is random per session; forms carry a value derived from it
 * (httpd/session.c). Lookups also check that the person may still sign in
 * (staff active, patient with portal access, practice active): taking
 * someone's access away ends their sessions at the next request. */
#ifndef POSTERN_COMMON_DB_SESSIONS_H
#define POSTERN_COMMON_DB_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/db.h"
#include "common/err.h"
#include "common/limits.h"

#define DB_SESSION_CSRF_BYTES 32       /* the schema's csrf_secret size */

/* A new session; pointers borrowed for the call. */
struct db_session_new {
	int64_t staff_user_id;         /* exactly one of the two is > 0 */
	int64_t patient_id;
	const uint8_t *token_hash;     /* CRYPTO_HASH_BYTES */
	const uint8_t *csrf_secret;    /* DB_SESSION_CSRF_BYTES */
	const char *ip;                /* NULL: unknown */
	const char *user_agent;        /* NULL or <= LIMIT_USER_AGENT bytes, valid UTF-8 */
	int hours;                     /* lifetime, >= 1 */
};

/* Inserts the session and records the sign-in on the person
 * (staff_users.last_login_at or patients.last_portal_login), in one
 * statement. *id_r: the session's id. */
MUST_CHECK int db_sessions_insert(struct db *db, const struct db_session_new *s,
    int64_t *id_r, struct err *err);

/* A live session with its person, copied into the struct. */
struct db_session {
	int64_t id;
	int64_t staff_user_id;         /* exactly one of the two is > 0 */
	int64_t patient_id;
	int64_t practice_id;
	char name[LIMIT_NAME * 8 + 2]; /* staff name, or patient first + last */
	char practice_name[LIMIT_NAME * 4 + 1];
	char role[16];                 /* staff role; "patient" for patients */
	uint8_t csrf_secret[DB_SESSION_CSRF_BYTES];
};

/* The session whose token has this hash, if it is not revoked, not expired
 * and its person may still sign in; touches last_seen_at (at most once a
 * minute, so most lookups write nothing). 1: *s_r filled; 0: none (one
 * answer for every reason); -1: err. */
MUST_CHECK int db_sessions_find(struct db *db,
    const uint8_t token_hash[CRYPTO_HASH_BYTES], struct db_session *s_r,
    struct err *err);

/* Revokes one session. 1: revoked now; 0: already revoked or gone. */
MUST_CHECK int db_sessions_revoke(struct db *db, int64_t id, struct err *err);

#endif
