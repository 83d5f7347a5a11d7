/* httpd/http.h: what every view of postern-httpd shares: the application
 * (config, database pool, derived keys), one request as the views see it,
 * and the ways to answer (pages, redirects, plain text), all with the same
 * security headers.
 *
 * Every page goes through http_page(): the frame is ours, the body is
 * HTML the caller built with common/html.h's escaping (the one path). */
#ifndef POSTERN_HTTPD_HTTP_H
#define POSTERN_HTTPD_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/crypto.h"
#include "common/db.h"

struct app {
	struct cfg cfg;
	struct db_pool *pool;
	/* Subkeys of the server key, derived once at startup. */
	uint8_t login_token_key[CRYPTO_KEY_BYTES];
	uint8_t login_code_key[CRYPTO_KEY_BYTES];
	uint8_t session_key[CRYPTO_KEY_BYTES];
	uint8_t csrf_key[CRYPTO_KEY_BYTES];
};

/* Derives the subkeys into app (after the config is loaded). */
void http_app_keys(struct app *app);
/* Wipes them. */
void http_app_keys_wipe(struct app *app);

/* One request, as the views see it; everything borrowed for the call. */
struct http_req {
	struct app *app;
	struct MHD_Connection *c;
	const char *url;
	const char *method;
	const char *body;              /* NUL-terminated, <= LIMIT_FORM_BODY */
	size_t body_len;
	bool get;                      /* GET or HEAD */
	bool post;
	char ip[64];                   /* client address (see http_client_ip) */
};

/* Fills r->ip: the peer's address, or the last X-Forwarded-For entry when
 * the peer is [httpd] trusted_proxy and the entry is an IP address; ""
 * when neither is known. */
void http_client_ip(struct http_req *r);

/* Whether the POST comes from one of our own pages: false when an Origin
 * header names another origin than [httpd] base_url's, or when
 * Sec-Fetch-Site says cross-site. Requests without either (curl, old
 * browsers) pass. */
bool http_same_origin(const struct http_req *r);

/* Whether the body is declared application/x-www-form-urlencoded. */
bool http_is_form(const struct http_req *r);

/* A header value of the request, or NULL. Borrowed from MHD. */
const char *http_header(const struct http_req *r, const char *name);

/* Answers with the common security headers plus extra ones (name, value
 * pairs, ending with NULL; extra may be NULL). */
enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status,
    const char *type, const char *body, size_t len,
    const char *const *extra);
enum MHD_Result http_text(struct MHD_Connection *c, unsigned status,
    const char *text);
/* A whole page: title is text (escaped here), body_html is HTML that the
 * caller escaped. */
enum MHD_Result http_page(struct MHD_Connection *c, unsigned status,
    const char *title, const char *body_html, const char *const *extra);
/* 303 See Other to a path of ours; set_cookie may be NULL. */
enum MHD_Result http_redirect(struct MHD_Connection *c, const char *location,
    const char *set_cookie);
/* 405 with an Allow header. */
enum MHD_Result http_method_not_allowed(struct MHD_Connection *c,
    const char *allow);

#endif
