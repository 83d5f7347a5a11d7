/* httpd/signin.c: the sign-in pages (see signin.h).
 *
 * Rate limits (POST /login): at most [httpd] login_per_address_hour
 * requests per address and login_per_ip_hour per client IP enqueue a
 * magic_link job in any hour, counted in login_requests (migration 012)
 * in the transaction that enqueues, under a per-address advisory lock.
 * Over a limit the page is the same, nothing is enqueued and the refusal
 * is logged. The code form allows LIMIT_LOGIN_CODE_ATTEMPTS tries per
 * token, counted in the database before the code is compared. */
#include "httpd/signin.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/db_audit.h"
#include "common/db_jobs.h"
#include "common/db_login_requests.h"
#include "common/db_login_tokens.h"
#include "common/email.h"
#include "common/html.h"
#include "common/job_kinds.h"
#include "common/limits.h"
#include "common/log.h"
#include "httpd/form.h"
#include "httpd/session.h"

#define TOKEN_LEN (CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES) - 1)
#define CODE_DIGITS 8
#define POOL_WAIT_MS 2000
#define FORM_EMAIL_MAX (LIMIT_EMAIL * 3)  /* room to reject, not to cut */

static const char login_form[] =
    "<h1>Sign in</h1>"
    "<p>Enter your email address. We will mail you a link that signs you "
    "in, and a code you can type in on another device instead.</p>"
    "<form method=\"post\" action=\"/login\">"
    "<label for=\"email\">Email address</label>"
    "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\""
    " required maxlength=\"254\" autofocus>"
    "<button type=\"submit\">Mail me a sign-in link</button>"
    "</form>"
    "<p><a href=\"/login/code\">I have a code</a></p>";

static const char login_bad_email[] =
    "<h1>Sign in</h1>"
    "<p class=\"error\" role=\"alert\">That does not look like an email "
    "address. Please check it and try again.</p>"
    "<form method=\"post\" action=\"/login\">"
    "<label for=\"email\">Email address</label>"
    "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\""
    " required maxlength=\"254\" autofocus>"
    "<button type=\"submit\">Mail me a sign-in link</button>"
    "</form>"
    "<p><a href=\"/login/code\">I have a code</a></p>";

/* The one answer to POST /login, known address or not, limited or not. */
static const char login_sent[] =
    "<h1>Check your mail</h1>"
    "<p role=\"status\">If this address is registered, a link to sign in "
    "is on its way. It works once, for a short time.</p>"
    "<p>Reading mail on another device? The mail also has a code: "
    "<a href=\"/login/code\">enter the code</a>.</p>"
    "<p>Nothing arrived after a few minutes? Check your spam folder, or "
    "<a href=\"/login\">try again</a>.</p>";

static const char code_form_head[] =
    "<h1>Sign in with a code</h1>";
static const char code_form_error[] =
    "<p class=\"error\" role=\"alert\">That code did not work. It may be "
    "mistyped, expired, already used or tried too often. Check it, or "
    "<a href=\"/login\">request a new one</a>.</p>";
static const char code_form_body[] =
    "<p>Enter your email address and the 8-digit code from the sign-in "
    "mail.</p>"
    "<form method=\"post\" action=\"/login/code\">"
    "<label for=\"email\">Email address</label>"
    "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\""
    " required maxlength=\"254\">"
    "<label for=\"code\">Code</label>"
    "<input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\""
    " autocomplete=\"one-time-code\" required maxlength=\"16\""
    " pattern=\"[0-9 -]*\">"
    "<button type=\"submit\">Sign in</button>"
    "</form>"
    "<p><a href=\"/login\">Get a new link</a></p>";

static const char link_expired[] =
    "<h1>This link has expired or was already used</h1>"
    "<p>Sign-in links work once, for a short time. "
    "<a href=\"/login\">Request a new one</a>.</p>";

static const char refused[] =
    "<h1>Request refused</h1>"
    "<p>This form was sent from another site or from an old page. "
    "<a href=\"/login\">Start again</a>.</p>";

static const char bad_request[] =
    "<h1>Bad request</h1>"
    "<p>The form could not be read. <a href=\"/login\">Start again</a>.</p>";

int
signin_db(struct http_req *r, struct db **db_r, struct err *err)
{
	return db_pool_get(r->app->pool, POOL_WAIT_MS, db_r, err);
}

enum MHD_Result
signin_unavailable(struct http_req *r, const char *where,
    const struct err *err)
{
	char q[300];

	log_warn("event=request_failed path=%s where=%s err=%s", r->url, where,
	    log_quote(q, sizeof q, err->msg));
	return http_page(r->c, 503, "Try again",
	    "<h1>Please try again in a minute</h1>"
	    "<p>The service is busy or being restarted.</p>", NULL);
}

/* POST checks every form of ours shares: same origin, urlencoded.
 * Returns true when r may go on; else *ret is the answer. */
static bool
post_ok(struct http_req *r, enum MHD_Result *ret)
{
	if (!http_same_origin(r)) {
		log_warn("event=cross_origin_refused path=%s ip=%s", r->url,
		    r->ip);
		*ret = http_page(r->c, 403, "Refused", refused, NULL);
		return false;
	}
	if (!http_is_form(r)) {
		*ret = http_page(r->c, 400, "Bad request", bad_request, NULL);
		return false;
	}
	return true;
}

/* "a@b.example" as a JSON string: the address passed email.h's checks
 * (no quote, backslash or control character), but escape anyway. */
static int
json_str(struct buf *b, const char *s)
{
	if (buf_addc(b, '"') < 0)
		return -1;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			if (buf_addc(b, '\\') < 0 || buf_addc(b, (char)c) < 0)
				return -1;
		} else if (c < 0x20) {
			if (buf_printf(b, "\\u%04x", c) < 0)
				return -1;
		} else if (buf_addc(b, (char)c) < 0) {
			return -1;
		}
	}
	return buf_addc(b, '"');
}

struct request_tx {
	const struct http_req *r;
	const char *email;
	const char *payload;
	const char *result;            /* out: for the log line */
	int64_t job_id;
};

static int
request_fn(struct db *db, void *arg, struct err *err)
{
	struct request_tx *t = arg;
	const struct cfg *cfg = &t->r->app->cfg;
	const struct job_kind *k = job_kind_find("magic_link");
	const char *ip = t->r->ip[0] != '\0' ? t->r->ip : NULL;
	int64_t by_email, by_ip;
	struct job_new j = {
		.kind = "magic_link",
		.payload = t->payload,
		.priority = k != NULL ? k->priority : 0,
		.max_attempts = k != NULL ? k->max_attempts : 0,
	};

	t->job_id = 0;
	if (db_login_requests_count(db, t->email, ip, &by_email, &by_ip,
	        err) < 0)
		return -1;
	if (by_email >= cfg->httpd.login_per_address_hour) {
		t->result = "rate_limited_address";
		return 0;
	}
	if (ip != NULL && by_ip >= cfg->httpd.login_per_ip_hour) {
		t->result = "rate_limited_ip";
		return 0;
	}
	if (db_jobs_enqueue(db, &j, &t->job_id, err) < 0 ||
	    db_login_requests_insert(db, t->email, ip, t->job_id, err) < 0)
		return -1;
	t->result = "enqueued";
	return 0;
}

static enum MHD_Result
login_post(struct http_req *r)
{
	char raw[FORM_EMAIL_MAX + 1], email[LIMIT_EMAIL + 1], q[300];
	struct request_tx t = { .r = r, .email = email };
	struct db *db = NULL;
	struct buf payload;
	struct err err;
	enum MHD_Result ret;
	int rc;

	if (!post_ok(r, &ret))
		return ret;
	rc = form_get(r->body, r->body_len, "email", raw, sizeof raw);
	if (rc < 0)
		return http_page(r->c, 400, "Bad request", bad_request, NULL);
	if (rc == 0 || email_normalize_check(raw, email, sizeof email, &err) < 0) {
		log_info("event=login_requested ip=%s result=invalid_address",
		    r->ip);
		return http_page(r->c, 400, "Sign in", login_bad_email, NULL);
	}
	buf_init(&payload, 1024);
	if (buf_adds(&payload, "{\"email\": ") < 0 ||
	    json_str(&payload, email) < 0 ||
	    (r->ip[0] != '\0' && (buf_adds(&payload, ", \"requested_ip\": ") < 0 ||
	        json_str(&payload, r->ip) < 0)) ||
	    buf_addc(&payload, '}') < 0)
		BUG("magic_link payload does not fit");
	t.payload = buf_str(&payload);
	if (signin_db(r, &db, &err) < 0 || db_tx(db, request_fn, &t, &err) < 0) {
		db_pool_put(r->app->pool, &db);
		buf_fini(&payload);
		return signin_unavailable(r, "login_request", &err);
	}
	db_pool_put(r->app->pool, &db);
	buf_fini(&payload);
	/* The domain only: the job id leads to the person for those who may
	 * see it, and the log does not collect addresses. */
	log_quote(q, sizeof q, email_domain(email));
	if (t.job_id > 0)
		log_info("event=login_requested ip=%s domain=%s result=%s job=%lld",
		    r->ip, q, t.result, (long long)t.job_id);
	else
		log_warn("event=login_requested ip=%s domain=%s result=%s",
		    r->ip, q, t.result);
	return http_page(r->c, 200, "Check your mail", login_sent, NULL);
}

enum MHD_Result
signin_login(struct http_req *r)
{
	if (r->get)
		return http_page(r->c, 200, "Sign in", login_form, NULL);
	if (r->post)
		return login_post(r);
	return http_method_not_allowed(r->c, "GET, HEAD, POST");
}

/* --- spending a token: the link and the code ---------------------------- */

enum via { VIA_LINK, VIA_CODE };

struct spend_tx {
	const struct http_req *r;
	enum via via;
	const uint8_t *token_hash;     /* VIA_LINK */
	const char *email;             /* VIA_CODE */
	const char *code;              /* VIA_CODE, CODE_DIGITS digits */
	/* out */
	const char *reason;            /* why not, for the log */
	int64_t staff, patient, session;
	char set_cookie[SESSION_SET_COOKIE_MAX];
};

/* 1: signed in; 0: not (t->reason says why); -1: err. Runs in db_tx, so
 * a refused code attempt is committed (counted) too. */
static int
spend_fn(struct db *db, void *arg, struct err *err)
{
	struct spend_tx *t = arg;
	struct db_login_subject s;
	int rc;

	t->staff = t->patient = 0;
	if (t->via == VIA_LINK) {
		rc = db_login_tokens_consume(db, t->token_hash, &t->staff,
		    &t->patient, err);
		if (rc <= 0) {
			t->reason = "unknown_used_or_expired";
			return rc;
		}
	} else {
		uint8_t stored[CRYPTO_HASH_BYTES], given[CRYPTO_HASH_BYTES];
		int64_t id;
		bool locked, same;

		rc = db_login_tokens_code_attempt(db, t->email,
		    LIMIT_LOGIN_CODE_ATTEMPTS, &id, stored, &locked, err);
		if (rc <= 0) {
			t->reason = locked ? "attempts_used_up" : "no_live_token";
			return rc;
		}
		crypto_keyed_hash(t->r->app->login_code_key, t->code,
		    strlen(t->code), given);
		same = crypto_equal(stored, given, sizeof given);
		sodium_memzero(given, sizeof given);
		if (!same) {
			t->reason = "wrong_code";
			return 0;
		}
		rc = db_login_tokens_consume_id(db, id, &t->staff, &t->patient,
		    err);
		if (rc <= 0) {
			t->reason = "unknown_used_or_expired";
			return rc;
		}
	}
	/* Still someone who may sign in (access can go while a mail waits). */
	rc = db_login_tokens_subject_by_id(db, t->staff, t->patient, &s, err);
	if (rc <= 0) {
		t->reason = "no_longer_allowed";
		return rc;
	}
	if (session_start(t->r, db, t->staff, t->patient, t->set_cookie,
	        &t->session, err) < 0)
		return -1;
	/* The audit row is the transaction's last statement (its lock is
	 * held until commit). */
	{
		char details[32];
		struct audit_entry e = {
			.practice_id = s.practice_id,
			.actor_kind = t->staff > 0 ? "staff" : "patient",
			.actor_id = t->staff > 0 ? t->staff : t->patient,
			.action = "login",
			.object_type = "session",
			.object_id = t->session,
			.ip = t->r->ip[0] != '\0' ? t->r->ip : NULL,
			.details = details,
		};

		snprintf(details, sizeof details, "{\"via\": \"%s\"}",
		    t->via == VIA_LINK ? "link" : "code");
		if (db_audit_append(db, t->r->app->cfg.security.server_key, &e,
		        1, err) < 0)
			return -1;
	}
	return 1;
}

static const char *
via_name(enum via v)
{
	return v == VIA_LINK ? "link" : "code";
}

/* Runs the spend and answers: 303 home with the cookie, or failure_html
 * with fail_status. */
static enum MHD_Result
spend(struct http_req *r, struct spend_tx *t, unsigned fail_status,
    const char *fail_title, const char *failure_html)
{
	struct db *db = NULL;
	struct err err;
	enum MHD_Result ret;
	int rc = -1;

	t->r = r;
	if (signin_db(r, &db, &err) < 0 ||
	    (rc = db_tx(db, spend_fn, t, &err)) < 0) {
		db_pool_put(r->app->pool, &db);
		return signin_unavailable(r, "login_spend", &err);
	}
	db_pool_put(r->app->pool, &db);
	if (rc == 0) {
		log_warn("event=login_failed via=%s reason=%s ip=%s",
		    via_name(t->via), t->reason, r->ip);
		return http_page(r->c, fail_status, fail_title, failure_html,
		    NULL);
	}
	log_info("event=login_ok via=%s session=%lld %s=%lld ip=%s",
	    via_name(t->via), (long long)t->session,
	    t->staff > 0 ? "staff" : "patient",
	    (long long)(t->staff > 0 ? t->staff : t->patient), r->ip);
	ret = http_redirect(r->c, session_home(t->staff), t->set_cookie);
	sodium_memzero(t->set_cookie, sizeof t->set_cookie);
	return ret;
}

/* The token of a link: exactly TOKEN_LEN base64url characters. */
static bool
token_ok(const char *t)
{
	return t != NULL && form_is_b64url(t, TOKEN_LEN);
}

static enum MHD_Result
verify_get(struct http_req *r)
{
	const char *t = MHD_lookup_connection_value(r->c,
	    MHD_GET_ARGUMENT_KIND, "t");
	struct buf b;
	enum MHD_Result ret;

	if (!token_ok(t)) {
		log_warn("event=login_failed via=link reason=malformed ip=%s",
		    r->ip);
		return http_page(r->c, 400, "Link expired", link_expired, NULL);
	}
	/* Nothing is looked up or spent here: a scanner fetching the link
	 * gets this page and nothing happens. */
	buf_init(&b, 4096);
	if (buf_adds(&b, "<h1>Sign in</h1>"
	        "<p>Press the button to finish signing in.</p>"
	        "<form method=\"post\" action=\"/verify\">"
	        "<input type=\"hidden\" name=\"t\" value=\"") < 0 ||
	    html_escapes(&b, t) < 0 ||
	    buf_adds(&b, "\"><button type=\"submit\">Sign in</button>"
	        "</form>") < 0)
		BUG("verify page does not fit");
	ret = http_page(r->c, 200, "Sign in", buf_str(&b), NULL);
	sodium_memzero(b.data, b.len);
	buf_fini(&b);
	return ret;
}

static enum MHD_Result
verify_post(struct http_req *r)
{
	char tok[TOKEN_LEN + 2];
	uint8_t th[CRYPTO_HASH_BYTES];
	struct spend_tx t = { .via = VIA_LINK, .token_hash = th };
	enum MHD_Result ret;

	if (!post_ok(r, &ret))
		return ret;
	if (form_get(r->body, r->body_len, "t", tok, sizeof tok) != 1 ||
	    !token_ok(tok)) {
		sodium_memzero(tok, sizeof tok);
		log_warn("event=login_failed via=link reason=malformed ip=%s",
		    r->ip);
		return http_page(r->c, 400, "Link expired", link_expired, NULL);
	}
	crypto_keyed_hash(r->app->login_token_key, tok, TOKEN_LEN, th);
	sodium_memzero(tok, sizeof tok);
	return spend(r, &t, 410, "Link expired", link_expired);
}

enum MHD_Result
signin_verify(struct http_req *r)
{
	if (r->get)
		return verify_get(r);
	if (r->post)
		return verify_post(r);
	return http_method_not_allowed(r->c, "GET, HEAD, POST");
}

static enum MHD_Result
code_page(struct http_req *r, unsigned status, bool error)
{
	char html[sizeof code_form_head + sizeof code_form_error +
	    sizeof code_form_body];

	snprintf(html, sizeof html, "%s%s%s", code_form_head,
	    error ? code_form_error : "", code_form_body);
	return http_page(r->c, status, "Sign in with a code", html, NULL);
}

static enum MHD_Result
code_post(struct http_req *r)
{
	char raw[FORM_EMAIL_MAX + 1], email[LIMIT_EMAIL + 1];
	char rawcode[64], code[CODE_DIGITS + 1];
	struct spend_tx t = { .via = VIA_CODE, .email = email, .code = code };
	struct err err;
	enum MHD_Result ret;
	char html[sizeof code_form_head + sizeof code_form_error +
	    sizeof code_form_body];

	if (!post_ok(r, &ret))
		return ret;
	if (form_get(r->body, r->body_len, "email", raw, sizeof raw) < 0 ||
	    form_get(r->body, r->body_len, "code", rawcode, sizeof rawcode) < 0)
		return http_page(r->c, 400, "Bad request", bad_request, NULL);
	if (email_normalize_check(raw, email, sizeof email, &err) < 0 ||
	    !form_code(rawcode, code, CODE_DIGITS)) {
		sodium_memzero(rawcode, sizeof rawcode);
		log_warn("event=login_failed via=code reason=malformed ip=%s",
		    r->ip);
		return code_page(r, 400, true);
	}
	sodium_memzero(rawcode, sizeof rawcode);
	snprintf(html, sizeof html, "%s%s%s", code_form_head, code_form_error,
	    code_form_body);
	ret = spend(r, &t, 400, "Sign in with a code", html);
	sodium_memzero(code, sizeof code);
	return ret;
}

enum MHD_Result
signin_code(struct http_req *r)
{
	if (r->get)
		return code_page(r, 200, false);
	if (r->post)
		return code_post(r);
	return http_method_not_allowed(r->c, "GET, HEAD, POST");
}

/* --- signing out --------------------------------------------------------- */

struct logout_tx {
	const struct http_req *r;
	const struct db_session *s;
};

/* Revokes the session and records it in the audit log. */
static int
logout_fn(struct db *db, void *arg, struct err *err)
{
	struct logout_tx *t = arg;
	const struct db_session *s = t->s;
	struct audit_entry e = {
		.practice_id = s->practice_id,
		.actor_kind = s->staff_user_id > 0 ? "staff" : "patient",
		.actor_id = s->staff_user_id > 0 ? s->staff_user_id
		                                 : s->patient_id,
		.action = "logout",
		.object_type = "session",
		.object_id = s->id,
		.ip = t->r->ip[0] != '\0' ? t->r->ip : NULL,
	};
	int rc = db_sessions_revoke(db, s->id, err);

	if (rc <= 0)
		return rc;
	if (db_audit_append(db, t->r->app->cfg.security.server_key, &e, 1,
	        err) < 0)
		return -1;
	return 1;
}

enum MHD_Result
signin_logout(struct http_req *r)
{
	char csrf[SESSION_CSRF_SIZE + 8];
	struct db_session s;
	struct db *db = NULL;
	struct err err;
	enum MHD_Result ret;
	int rc = -1;

	if (!r->post)
		return http_method_not_allowed(r->c, "POST");
	if (!post_ok(r, &ret))
		return ret;
	if (signin_db(r, &db, &err) < 0 ||
	    (rc = session_get(r, db, &s, &err)) < 0) {
		db_pool_put(r->app->pool, &db);
		return signin_unavailable(r, "logout", &err);
	}
	if (rc == 0) {
		db_pool_put(r->app->pool, &db);
		return http_redirect(r->c, "/login", SESSION_CLEAR_COOKIE);
	}
	if (form_get(r->body, r->body_len, SESSION_CSRF_FIELD, csrf,
	        sizeof csrf) != 1 || !session_csrf_ok(r->app, &s, csrf)) {
		db_pool_put(r->app->pool, &db);
		log_warn("event=csrf_refused path=%s session=%lld ip=%s", r->url,
		    (long long)s.id, r->ip);
		sodium_memzero(&s, sizeof s);
		return http_page(r->c, 403, "Refused", refused, NULL);
	}
	{
		struct logout_tx t = { .r = r, .s = &s };

		rc = db_tx(db, logout_fn, &t, &err);
	}
	db_pool_put(r->app->pool, &db);
	if (rc < 0) {
		sodium_memzero(&s, sizeof s);
		return signin_unavailable(r, "logout", &err);
	}
	log_info("event=logout session=%lld %s=%lld ip=%s", (long long)s.id,
	    s.staff_user_id > 0 ? "staff" : "patient",
	    (long long)(s.staff_user_id > 0 ? s.staff_user_id : s.patient_id),
	    r->ip);
	sodium_memzero(&s, sizeof s);
	return http_redirect(r->c, "/login", SESSION_CLEAR_COOKIE);
}
