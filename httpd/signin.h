/* httpd/signin.h: the sign-in pages: /login, /login/code, /verify and
 * /logout (DESIGN.md, "Magic link login").
 *
 *   GET  /login        the email form
 *   POST /login        enqueues a magic_link job (rate limited per address
 *                      and per IP); the same page whatever the address
 *   GET  /verify?t=T   a page with a "Sign in" button; spends nothing, so
 *                      mail scanners that fetch links do no harm
 *   POST /verify       spends the token, starts a session, 303 home
 *   GET  /login/code   the email + code form
 *   POST /login/code   counts an attempt on the person's newest token
 *                      (LIMIT_LOGIN_CODE_ATTEMPTS), then as POST /verify
 *   POST /logout       revokes the session (CSRF value required)
 *
 * Every failure to sign in shows one vague page; the reason goes to the
 * log (event=login_failed reason=…), never to the client. */
#ifndef POSTERN_HTTPD_SIGNIN_H
#define POSTERN_HTTPD_SIGNIN_H

#include "httpd/http.h"

enum MHD_Result signin_login(struct http_req *r);
enum MHD_Result signin_code(struct http_req *r);
enum MHD_Result signin_verify(struct http_req *r);
enum MHD_Result signin_logout(struct http_req *r);

/* The database for a view: waits a short while for a pooled connection.
 * -1: err set (answer 503 with signin_unavailable()). */
MUST_CHECK int signin_db(struct http_req *r, struct db **db_r,
    struct err *err);
/* Logs where/err once and answers 503 "try again". */
enum MHD_Result signin_unavailable(struct http_req *r, const char *where,
    const struct err *err);

#endif
