/* httpd/confirm.c: the "was this you?" page (see confirm.h).
 *
 * Reuses the sign-in helpers (httpd/signin.h for the pooled connection and
 * the 503 page, httpd/form.h for the form and token checks); the POST
 * checks (same origin, urlencoded) are the ones /verify makes. */
#include "httpd/confirm.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/db_jobs.h"
#include "common/db_login_tokens.h"
#include "common/html.h"
#include "common/job_kinds.h"
#include "common/log.h"
#include "httpd/form.h"
#include "httpd/signin.h"

#define TOKEN_LEN (CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES) - 1)
#define DECISION_MAX 16              /* "confirm", "decline": room to refuse */
#define RELEASE_KIND "release_held"

static const char link_gone[] =
    "<h1>This link no longer works</h1>"
    "<p>It has expired, was already used, or the message it was about has "
    "been dealt with. Nothing was changed.</p>"
    "<p>If you want to write to your practice, "
    "<a href=\"/login\">sign in</a> and send your message there.</p>";

static const char bad_link[] =
    "<h1>This link is not complete</h1>"
    "<p>Please open the link from the email again, or copy the whole "
    "address into your browser.</p>";

static const char bad_form[] =
    "<h1>Bad request</h1>"
    "<p>The form could not be read. Please open the link from the email "
    "again.</p>";

static const char refused[] =
    "<h1>Request refused</h1>"
    "<p>This form was sent from another site or from an old page. Please "
    "open the link from the email again.</p>";

static const char confirmed[] =
    "<h1>Thank you</h1>"
    "<p role=\"status\">Thank you \xe2\x80\x94 your message has been added "
    "to your conversation.</p>";

static const char declined[] =
    "<h1>Thank you</h1>"
    "<p role=\"status\">Thank you \xe2\x80\x94 we will not add it.</p>"
    "<p>If someone is writing in your name, you may want to tell your "
    "practice.</p>";

static bool
token_ok(const char *t)
{
	return t != NULL && strlen(t) == TOKEN_LEN &&
	    form_is_b64url(t, TOKEN_LEN);
}

static enum MHD_Result
confirm_get(struct http_req *r)
{
	const char *t = MHD_lookup_connection_value(r->c,
	    MHD_GET_ARGUMENT_KIND, "t");
	uint8_t th[CRYPTO_HASH_BYTES];
	struct db_confirm_view v;
	struct db *db = NULL;
	struct err err;
	struct buf b;
	enum MHD_Result ret;
	int rc;

	if (!token_ok(t)) {
		log_warn("event=confirm_sender_failed step=view reason=malformed "
		    "ip=%s", r->ip);
		return http_page(r->c, 400, "Link not complete", bad_link, NULL);
	}
	crypto_keyed_hash(r->app->login_token_key, t, TOKEN_LEN, th);
	if (signin_db(r, &db, &err) < 0 ||
	    (rc = db_login_tokens_confirm_peek(db, th, &v, &err)) < 0) {
		db_pool_put(r->app->pool, &db);
		return signin_unavailable(r, "confirm_view", &err);
	}
	db_pool_put(r->app->pool, &db);
	if (rc == 0) {
		log_warn("event=confirm_sender_failed step=view "
		    "reason=unknown_used_or_expired ip=%s", r->ip);
		return http_page(r->c, 410, "Link no longer works", link_gone,
		    NULL);
	}
	/* Nothing is spent here: a scanner fetching the link gets this page
	 * and nothing happens. */
	buf_init(&b, 16384);
	if (buf_adds(&b, "<h1>Was this you?</h1><p>A message from <strong>") < 0 ||
	    html_escapes(&b, v.sender) < 0 ||
	    buf_adds(&b, "</strong>, received ") < 0 ||
	    html_escapes(&b, v.received) < 0 ||
	    buf_adds(&b, ", says it is from you. Was it you?</p>"
	        "<form method=\"post\" action=\"/confirm\">"
	        "<input type=\"hidden\" name=\"t\" value=\"") < 0 ||
	    html_escapes(&b, t) < 0 ||
	    buf_adds(&b, "\"><button type=\"submit\" name=\"decision\" "
	        "value=\"confirm\">Yes, I sent it</button> "
	        "<button type=\"submit\" name=\"decision\" value=\"decline\">"
	        "No, it was not me</button></form>"
	        "<p>If you say yes, the message is added to your conversation "
	        "with ") < 0 ||
	    html_escapes(&b, v.practice_name) < 0 ||
	    buf_adds(&b, ". If you say no, it is not.</p>") < 0)
		BUG("confirm page does not fit");
	ret = http_page(r->c, 200, "Was this you?", buf_str(&b), NULL);
	sodium_memzero(b.data, b.len);
	buf_fini(&b);
	return ret;
}

struct decide_tx {
	const uint8_t *token_hash;
	bool confirm;
	/* out */
	int64_t mail_id, patient_id, job_id;
};

/* 1: spent and release_held enqueued; 0: the token is not live; -1. */
static int
decide_fn(struct db *db, void *arg, struct err *err)
{
	struct decide_tx *t = arg;
	const struct job_kind *k = job_kind_find(RELEASE_KIND);
	char payload[96], key[48];
	struct job_new j = {
		.kind = RELEASE_KIND,
		.payload = payload,
		.unique_key = key,
		/* the lead's kind table entry when there is one */
		.priority = k != NULL ? k->priority : 0,
		.max_attempts = k != NULL ? k->max_attempts : 0,
	};
	int rc;

	rc = db_login_tokens_confirm_consume(db, t->token_hash, &t->mail_id,
	    &t->patient_id, err);
	if (rc <= 0)
		return rc;
	snprintf(payload, sizeof payload, "{\"inbound_mail_id\": %lld, "
	    "\"decision\": \"%s\"}", (long long)t->mail_id,
	    t->confirm ? "confirm" : "decline");
	snprintf(key, sizeof key, RELEASE_KIND ":%lld", (long long)t->mail_id);
	if (db_jobs_enqueue(db, &j, &t->job_id, err) < 0)
		return -1;
	return 1;
}

static enum MHD_Result
confirm_post(struct http_req *r)
{
	char tok[TOKEN_LEN + 2], decision[DECISION_MAX];
	uint8_t th[CRYPTO_HASH_BYTES];
	struct decide_tx t = { .token_hash = th };
	struct db *db = NULL;
	struct err err;
	int rc = -1, rt, rd;

	if (!http_same_origin(r)) {
		log_warn("event=cross_origin_refused path=%s ip=%s", r->url,
		    r->ip);
		return http_page(r->c, 403, "Refused", refused, NULL);
	}
	if (!http_is_form(r))
		return http_page(r->c, 400, "Bad request", bad_form, NULL);
	rt = form_get(r->body, r->body_len, "t", tok, sizeof tok);
	rd = form_get(r->body, r->body_len, "decision", decision,
	    sizeof decision);
	if (rt != 1 || !token_ok(tok) || rd != 1 ||
	    (strcmp(decision, "confirm") != 0 &&
	    strcmp(decision, "decline") != 0)) {
		sodium_memzero(tok, sizeof tok);
		log_warn("event=confirm_sender_failed step=decide "
		    "reason=malformed ip=%s", r->ip);
		return http_page(r->c, 400, "Bad request", bad_form, NULL);
	}
	t.confirm = strcmp(decision, "confirm") == 0;
	crypto_keyed_hash(r->app->login_token_key, tok, TOKEN_LEN, th);
	sodium_memzero(tok, sizeof tok);
	if (signin_db(r, &db, &err) < 0 ||
	    (rc = db_tx(db, decide_fn, &t, &err)) < 0) {
		db_pool_put(r->app->pool, &db);
		return signin_unavailable(r, "confirm_decide", &err);
	}
	db_pool_put(r->app->pool, &db);
	if (rc == 0) {
		log_warn("event=confirm_sender_failed step=decide "
		    "reason=unknown_used_or_expired ip=%s", r->ip);
		return http_page(r->c, 410, "Link no longer works", link_gone,
		    NULL);
	}
	log_info("event=confirm_sender_decided inbound_mail=%lld patient=%lld "
	    "decision=%s job=%lld ip=%s", (long long)t.mail_id,
	    (long long)t.patient_id, t.confirm ? "confirm" : "decline",
	    (long long)t.job_id, r->ip);
	return http_page(r->c, 200, "Thank you", t.confirm ? confirmed :
	    declined, NULL);
}

enum MHD_Result
confirm_page(struct http_req *r)
{
	if (r->get)
		return confirm_get(r);
	if (r->post)
		return confirm_post(r);
	return http_method_not_allowed(r->c, "GET, HEAD, POST");
}
