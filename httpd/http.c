/* httpd/http.c: the application's keys, client addresses, origin checks
 * and every way of answering (see http.h). */
#include "httpd/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/html.h"
#include "common/mem.h"
#include "httpd/form.h"

#define PAGE_MAX (256 * 1024)

void
http_app_keys(struct app *app)
{
	const uint8_t *k = app->cfg.security.server_key;

	crypto_subkey(k, SUBKEY_LOGIN_TOKEN, app->login_token_key);
	crypto_subkey(k, SUBKEY_LOGIN_CODE, app->login_code_key);
	crypto_subkey(k, SUBKEY_SESSION, app->session_key);
	crypto_subkey(k, SUBKEY_CSRF, app->csrf_key);
}

void
http_app_keys_wipe(struct app *app)
{
	sodium_memzero(app->login_token_key, sizeof app->login_token_key);
	sodium_memzero(app->login_code_key, sizeof app->login_code_key);
	sodium_memzero(app->session_key, sizeof app->session_key);
	sodium_memzero(app->csrf_key, sizeof app->csrf_key);
}

const char *
http_header(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

static bool
peer_ip(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa;

	if (ci == NULL || ci->client_addr == NULL)
		return false;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    out, (socklen_t)size) != NULL;
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    out, (socklen_t)size) != NULL;
	return false;
}

void
http_client_ip(struct http_req *r)
{
	const char *proxy = r->app->cfg.httpd.trusted_proxy, *xff;

	if (!peer_ip(r->c, r->ip, sizeof r->ip)) {
		r->ip[0] = '\0';
		return;
	}
	if (proxy[0] == '\0' || strcmp(proxy, r->ip) != 0)
		return;
	xff = http_header(r, "X-Forwarded-For");
	if (xff != NULL)
		form_forwarded_ip(xff, r->ip, sizeof r->ip);
}

bool
http_same_origin(const struct http_req *r)
{
	const char *base = r->app->cfg.httpd.base_url;
	const char *origin = http_header(r, "Origin");
	const char *site = http_header(r, "Sec-Fetch-Site");
	const char *host;
	size_t n;

	if (site != NULL && strcasecmp(site, "cross-site") == 0)
		return false;
	if (origin == NULL)
		return true;
	/* base_url's origin: scheme://host[:port], without the path. */
	host = strstr(base, "://");
	if (host == NULL)
		return false;
	n = (size_t)(host + 3 - base) + strcspn(host + 3, "/?#");
	return strlen(origin) == n && strncasecmp(origin, base, n) == 0;
}

bool
http_is_form(const struct http_req *r)
{
	const char *ct = http_header(r, "Content-Type");
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof want - 1;

	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

enum MHD_Result
http_reply(struct MHD_Connection *c, unsigned status, const char *type,
    const char *body, size_t len, const char *const *extra)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len,
	    (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
	    " frame-ancestors 'none'; base-uri 'none'");
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
		MHD_add_response_header(r, extra[i], extra[i + 1]);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
http_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return http_reply(c, status, "text/plain; charset=utf-8", text,
	    strlen(text), NULL);
}

enum MHD_Result
http_page(struct MHD_Connection *c, unsigned status, const char *title,
    const char *body_html, const char *const *extra)
{
	struct buf b;
	enum MHD_Result ret;

	buf_init(&b, PAGE_MAX);
	if (buf_adds(&b, "<!doctype html><html lang=\"en\"><head>"
	        "<meta charset=\"utf-8\"><meta name=\"viewport\" "
	        "content=\"width=device-width,initial-scale=1\"><title>") < 0 ||
	    html_escapes(&b, title) < 0 ||
	    buf_adds(&b, "</title><style>body{font:16px/1.5 system-ui,sans-serif;"
	        "max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}"
	        "label{display:block;margin:1rem 0 .25rem;font-weight:600}"
	        "input{font:inherit;padding:.4rem;width:100%;max-width:24rem;"
	        "box-sizing:border-box}"
	        "button{font:inherit;margin-top:1rem;padding:.5rem 1rem}"
	        ".error{color:#a00}"
	        "</style></head><body><main>") < 0 ||
	    buf_adds(&b, body_html) < 0 ||
	    buf_adds(&b, "</main></body></html>\n") < 0) {
		buf_fini(&b);
		return http_text(c, 500, "page too large\n");
	}
	ret = http_reply(c, status, "text/html; charset=utf-8", b.data, b.len,
	    extra);
	buf_fini(&b);
	return ret;
}

enum MHD_Result
http_redirect(struct MHD_Connection *c, const char *location,
    const char *set_cookie)
{
	const char *extra[] = { "Location", location,
		                set_cookie != NULL ? "Set-Cookie" : NULL,
		                set_cookie, NULL };

	return http_reply(c, 303, "text/plain; charset=utf-8", "", 0, extra);
}

enum MHD_Result
http_method_not_allowed(struct MHD_Connection *c, const char *allow)
{
	const char *extra[] = { "Allow", allow, NULL };

	return http_reply(c, 405, "text/plain; charset=utf-8",
	    "method not allowed\n", 19, extra);
}
