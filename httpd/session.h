/* httpd/session.h: sign-in sessions for every view: the cookie, the lookup
 * a view calls before it shows anything private, starting one after a
 * login, and the CSRF value forms carry.
 *
 * Cookie: SESSION_COOKIE=<43 base64url chars of a random 256-bit token>;
 * HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=[httpd] session_hours.
 * The database holds only the token's keyed hash (SUBKEY_SESSION). A form
 * that changes something carries SESSION_CSRF_FIELD = hex of the keyed hash
 * (SUBKEY_CSRF) of the session's random csrf_secret, checked in constant
 * time. */
#ifndef POSTERN_HTTPD_SESSION_H
#define POSTERN_HTTPD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db_sessions.h"
#include "httpd/http.h"

#define SESSION_COOKIE "postern_session"
#define SESSION_CSRF_FIELD "csrf"
#define SESSION_CSRF_SIZE (CRYPTO_HASH_BYTES * 2 + 1)
/* A Set-Cookie value that removes the cookie. */
#define SESSION_CLEAR_COOKIE SESSION_COOKIE "=; Path=/; HttpOnly; Secure;" \
	" SameSite=Lax; Max-Age=0"
#define SESSION_SET_COOKIE_MAX 160

/* The request's live session. 1: *s_r filled; 0: none (no or malformed
 * cookie, unknown, revoked, expired, the person may no longer sign in);
 * -1: err (the database). Views answer 0 with a redirect to /login. */
MUST_CHECK int session_get(const struct http_req *r, struct db *db,
    struct db_session *s_r, struct err *err);

/* Starts a session for one person (staff_user_id or patient_id > 0) in
 * the caller's transaction, recording the sign-in on the person. Writes
 * the Set-Cookie value to set_cookie[SESSION_SET_COOKIE_MAX] (it holds the
 * token: send it, never log it); *id_r is the session's id. */
MUST_CHECK int session_start(const struct http_req *r, struct db *db,
    int64_t staff_user_id, int64_t patient_id, char *set_cookie,
    int64_t *id_r, struct err *err);

/* The CSRF value of the session, hex, into out[SESSION_CSRF_SIZE]. */
void session_csrf(const struct app *app, const struct db_session *s,
    char *out);
/* Whether given (from a form; may be NULL) is the session's CSRF value. */
bool session_csrf_ok(const struct app *app, const struct db_session *s,
    const char *given);

/* "/staff" for staff, "/me" for patients. */
const char *session_home(int64_t staff_user_id);

#endif
