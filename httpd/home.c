/* httpd/home.c: /staff and /me (see home.h). Without a live session:
 * 303 to /login. A patient at /staff (or staff at /me) is sent home. */
#include "httpd/home.h"

#include <sodium.h>

#include "common/html.h"
#include "httpd/session.h"
#include "httpd/signin.h"

static enum MHD_Result
home(struct http_req *r, bool staff)
{
	char csrf[SESSION_CSRF_SIZE];
	struct db_session s;
	struct db *db = NULL;
	struct err err;
	struct buf b;
	enum MHD_Result ret;
	int rc = -1;

	if (!r->get)
		return http_method_not_allowed(r->c, "GET, HEAD");
	if (signin_db(r, &db, &err) < 0 ||
	    (rc = session_get(r, db, &s, &err)) < 0) {
		db_pool_put(r->app->pool, &db);
		return signin_unavailable(r, "home", &err);
	}
	db_pool_put(r->app->pool, &db);
	if (rc == 0)
		return http_redirect(r->c, "/login", NULL);
	if ((s.staff_user_id > 0) != staff) {
		const char *to = session_home(s.staff_user_id);

		sodium_memzero(&s, sizeof s);
		return http_redirect(r->c, to, NULL);
	}
	session_csrf(r->app, &s, csrf);
	buf_init(&b, 16 * 1024);
	if (buf_adds(&b, staff ? "<h1>Staff home</h1>" : "<h1>Your portal</h1>") < 0 ||
	    buf_adds(&b, "<p>Signed in as <strong>") < 0 ||
	    html_escapes(&b, s.name) < 0 ||
	    buf_adds(&b, "</strong> (") < 0 ||
	    html_escapes(&b, s.practice_name) < 0 ||
	    buf_adds(&b, ").</p>") < 0 ||
	    buf_adds(&b, "<form method=\"post\" action=\"/logout\">"
	        "<input type=\"hidden\" name=\"" SESSION_CSRF_FIELD "\" value=\"") < 0 ||
	    html_escapes(&b, csrf) < 0 ||
	    buf_adds(&b, "\"><button type=\"submit\">Sign out</button></form>") < 0)
		BUG("home page does not fit");
	ret = http_page(r->c, 200, staff ? "Staff home" : "Your portal",
	    buf_str(&b), NULL);
	buf_fini(&b);
	sodium_memzero(csrf, sizeof csrf);
	sodium_memzero(&s, sizeof s);
	return ret;
}

enum MHD_Result
home_staff(struct http_req *r)
{
	return home(r, true);
}

enum MHD_Result
home_patient(struct http_req *r)
{
	return home(r, false);
}
