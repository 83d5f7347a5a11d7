/* httpd/session.c: session cookies, lookup, start and CSRF values (see
 * session.h). */
#include "httpd/session.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/limits.h"
#include "httpd/form.h"

#define TOKEN_LEN (CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES) - 1)

int
session_get(const struct http_req *r, struct db *db, struct db_session *s_r,
    struct err *err)
{
	const char *h = http_header(r, "Cookie");
	char tok[TOKEN_LEN + 2];
	uint8_t th[CRYPTO_HASH_BYTES];
	int rc;

	if (h == NULL)
		return 0;
	rc = form_cookie_get(h, SESSION_COOKIE, tok, sizeof tok);
	if (rc != 1 || !form_is_b64url(tok, TOKEN_LEN)) {
		sodium_memzero(tok, sizeof tok);
		return 0;
	}
	crypto_keyed_hash(r->app->session_key, tok, TOKEN_LEN, th);
	sodium_memzero(tok, sizeof tok);
	return db_sessions_find(db, th, s_r, err);
}

/* The User-Agent as kept: printable ASCII (anything else becomes '?', so
 * the text is valid UTF-8 whatever came in), cut at LIMIT_USER_AGENT bytes:
 * it is a hint for people reviewing sessions, not evidence. */
static void
user_agent(const struct http_req *r, char *out, size_t size)
{
	const char *ua = http_header(r, "User-Agent");
	size_t i;

	if (ua == NULL)
		ua = "";
	for (i = 0; ua[i] != '\0' && i + 1 < size; i++)
		out[i] = ua[i] >= 0x20 && ua[i] < 0x7f ? ua[i] : '?';
	out[i] = '\0';
}

int
session_start(const struct http_req *r, struct db *db,
    int64_t staff_user_id, int64_t patient_id, char *set_cookie,
    int64_t *id_r, struct err *err)
{
	char tok[CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES)];
	char ua[LIMIT_USER_AGENT + 1];
	uint8_t th[CRYPTO_HASH_BYTES], csrf[DB_SESSION_CSRF_BYTES];
	int hours = r->app->cfg.httpd.session_hours;
	struct db_session_new s = {
		.staff_user_id = staff_user_id,
		.patient_id = patient_id,
		.token_hash = th,
		.csrf_secret = csrf,
		.ip = r->ip[0] != '\0' ? r->ip : NULL,
		.user_agent = ua,
		.hours = hours,
	};
	int ret = -1;

	crypto_token_new(CRYPTO_TOKEN_BYTES, tok, sizeof tok);
	crypto_keyed_hash(r->app->session_key, tok, strlen(tok), th);
	randombytes_buf(csrf, sizeof csrf);
	user_agent(r, ua, sizeof ua);
	if (db_sessions_insert(db, &s, id_r, err) < 0)
		goto out;
	if ((size_t)snprintf(set_cookie, SESSION_SET_COOKIE_MAX,
	        SESSION_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Lax;"
	        " Max-Age=%lld", tok, (long long)hours * 3600) >=
	    SESSION_SET_COOKIE_MAX)
		BUG("Set-Cookie does not fit");
	ret = 0;
out:
	sodium_memzero(tok, sizeof tok);
	sodium_memzero(csrf, sizeof csrf);
	return ret;
}

void
session_csrf(const struct app *app, const struct db_session *s, char *out)
{
	uint8_t h[CRYPTO_HASH_BYTES];

	crypto_keyed_hash(app->csrf_key, s->csrf_secret,
	    sizeof s->csrf_secret, h);
	crypto_hex(h, sizeof h, out);
}

bool
session_csrf_ok(const struct app *app, const struct db_session *s,
    const char *given)
{
	char want[SESSION_CSRF_SIZE];
	bool ok;

	if (given == NULL || strlen(given) != SESSION_CSRF_SIZE - 1)
		return false;
	session_csrf(app, s, want);
	ok = crypto_equal(want, given, SESSION_CSRF_SIZE - 1);
	sodium_memzero(want, sizeof want);
	return ok;
}

const char *
session_home(int64_t staff_user_id)
{
	return staff_user_id > 0 ? "/staff" : "/me";
}
