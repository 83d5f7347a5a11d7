/* httpd/main.c: postern-httpd, the web service (libmicrohttpd).
 *
 * A thread pool with epoll, every connection bounded (count, per-IP count,
 * memory, idle time, request body size). Each request gets a struct req on
 * the first call of the access handler and is answered on a later call
 * (answering on the first call makes MHD 0.9.75 close keep-alive
 * connections). The request state is freed in one completion callback.
 * httpd never sends mail: anything slow becomes a job. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/crypto.h"
#include "common/db.h"
#include "common/html.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "httpd/confirm.h"
#include "httpd/home.h"
#include "httpd/http.h"
#include "httpd/signin.h"

struct req {
	struct buf body;           /* request body, capped at LIMIT_FORM_BODY */
	bool too_large;
	struct timespec start;
};

static const char help_text[] =
"NAME\n"
"    postern-httpd - postern's web service: sign-in links and web views\n"
"\n"
"SYNOPSIS\n"
"    postern-httpd [--config FILE]\n"
"\n"
"DESCRIPTION\n"
"    Serves HTTP on [httpd] listen:port with a pool of [httpd] threads and\n"
"    a pool of [database] pool_size connections. Logs one logfmt line per\n"
"    event on stderr. Put a TLS-terminating proxy in front of it; set\n"
"    [httpd] base_url to the public https:// address, and [httpd]\n"
"    trusted_proxy to the proxy's address so that X-Forwarded-For names\n"
"    the client.\n"
"\n"
"    It never sends mail: a sign-in request becomes a magic_link job that\n"
"    postern-worker mails (a link and an 8-digit code).\n"
"\n"
"PAGES\n"
"    GET  /healthz       200 when the database answers, 503 otherwise\n"
"    GET  /login         the sign-in form (email address)\n"
"    POST /login         enqueues the sign-in mail; the same page whether\n"
"                        the address is known or not. At most [httpd]\n"
"                        login_per_address_hour mails per address and\n"
"                        login_per_ip_hour per client IP an hour; over\n"
"                        that, the same page, no mail, a log line\n"
"    GET  /verify?t=T    a page with a Sign in button; spends nothing\n"
"                        (mail scanners that fetch links do no harm)\n"
"    POST /verify        spends the link (once, before it expires), starts\n"
"                        a session and redirects (303) to /staff or /me;\n"
"                        a used, expired or unknown link: 410\n"
"    GET  /login/code    the form for the code from the mail\n"
"    POST /login/code    the same with email + code; 5 wrong codes lock\n"
"                        that sign-in mail's code\n"
"    GET  /staff, /me    the staff and patient homes (need a session;\n"
"                        else 303 to /login)\n"
"    POST /logout        ends the session (needs the form's CSRF value)\n"
"    GET  /confirm?t=T   \"was this reply yours?\" for a held reply (sender,\n"
"                        date); spends nothing\n"
"    POST /confirm       spends the link and queues the decision\n"
"                        (confirm: the reply joins the conversation;\n"
"                        decline: it stays out)\n"
"\n"
"    The session cookie is postern_session (HttpOnly; Secure;\n"
"    SameSite=Lax; Path=/), valid [httpd] session_hours; the database\n"
"    keeps only keyed hashes of it and of every link and code. Bodies over\n"
"    64 KiB get 413; malformed forms 400; POSTs from another origin 403.\n"
"\n"
"    SIGTERM or SIGINT: stop accepting, finish open requests, exit 0.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE   config file (default: $POSTERN_CONFIG, else\n"
"                        " CFG_DEFAULT_PATH ")\n"
"    -h, --help          this text\n"
"\n"
"EXIT STATUS\n"
"    0 after a clean stop; 1 bad config, the port could not be bound or the\n"
"    database could not be reached at startup.\n";

static enum MHD_Result
healthz(struct app *app, struct MHD_Connection *c)
{
	struct db *db = NULL;
	struct err err;
	char q[300];
	int ok;

	ok = db_pool_get(app->pool, 2000, &db, &err) == 0 &&
	    db_query(db, "SELECT 1", 0, NULL, PGRES_TUPLES_OK, NULL, &err) == 0;
	db_pool_put(app->pool, &db);
	if (!ok) {
		log_warn("event=healthz_failed err=%s",
		    log_quote(q, sizeof q, err.msg));
		return http_text(c, 503, "database unavailable\n");
	}
	return http_text(c, 200, "ok\n");
}

/* Every path we serve; anything else is 404. */
static enum MHD_Result
route(struct app *app, struct MHD_Connection *c, const char *url,
    const char *method, const struct buf *body)
{
	struct http_req r = {
		.app = app,
		.c = c,
		.url = url,
		.method = method,
		.body = buf_str(body),
		.body_len = body->len,
		.get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0,
		.post = strcmp(method, "POST") == 0,
	};

	http_client_ip(&r);
	if (strcmp(url, "/healthz") == 0)
		return r.get ? healthz(app, c) : http_method_not_allowed(c, "GET, HEAD");
	if (strcmp(url, "/") == 0)
		return r.get ? http_redirect(c, "/login", NULL)
		             : http_method_not_allowed(c, "GET, HEAD");
	if (strcmp(url, "/login") == 0)
		return signin_login(&r);
	if (strcmp(url, "/login/code") == 0)
		return signin_code(&r);
	if (strcmp(url, "/verify") == 0)
		return signin_verify(&r);
	if (strcmp(url, "/confirm") == 0)
		return confirm_page(&r);
	if (strcmp(url, "/logout") == 0)
		return signin_logout(&r);
	if (strcmp(url, "/staff") == 0)
		return home_staff(&r);
	if (strcmp(url, "/me") == 0)
		return home_patient(&r);
	return http_page(c, 404, "Not found",
	    "<h1>Not found</h1><p>There is no page at this address.</p>", NULL);
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L +
	    (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct app *app = cls;
	struct req *rq = *con_cls;

	(void)version;
	if (rq == NULL) {
		/* First call: headers only. Set up, answer on a later call. */
		rq = xcalloc(1, sizeof *rq);
		buf_init(&rq->body, LIMIT_FORM_BODY);
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!rq->too_large &&
		    buf_add(&rq->body, upload, *upload_size) < 0)
			rq->too_large = true;      /* keep reading, then 413 */
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return http_text(c, 413, "request body too large\n");
	return route(app, c, url, method, &rq->body);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	const union MHD_ConnectionInfo *ci;

	(void)cls;
	if (rq == NULL)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	log_debug("event=http_request status=%u ms=%ld toe=%d",
	    ci != NULL ? ci->http_status : 0, ms_since(&rq->start), (int)toe);
	buf_fini(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* MHD's format strings are its own, not ours to check. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], q[600];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("event=mhd msg=%s", log_quote(q, sizeof q, msg));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	struct app app = { 0 };
	struct MHD_Daemon *d;
	struct sockaddr_in sin;
	struct in_addr proxy;
	struct err err;
	sigset_t set;
	enum log_level lvl;
	int c, sig;

	log_init("postern-httpd");
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'h': fputs(help_text, stdout); return 0;
		default:
			fputs("Try 'postern-httpd --help'.\n", stderr);
			return 1;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (try --help)", argv[optind]);
	if (crypto_init(&err) < 0)
		die("%s", err.msg);
	if (cfg_load(&app.cfg, config_path, &err) < 0)
		die("%s", err.msg);
	if (cfg_require_server_key(&app.cfg, &err) < 0)
		die("%s", err.msg);
	http_app_keys(&app);
	if (log_level_parse(app.cfg.log.level, &lvl) == 0)
		log_set_level(lvl);
	cfg_log(&app.cfg);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)app.cfg.httpd.port);
	if (inet_pton(AF_INET, app.cfg.httpd.listen, &sin.sin_addr) != 1)
		die("%s: httpd.listen \"%s\" is not an IPv4 address",
		    app.cfg.path, app.cfg.httpd.listen);

	if (app.cfg.httpd.trusted_proxy[0] != '\0' &&
	    inet_pton(AF_INET, app.cfg.httpd.trusted_proxy, &proxy) != 1)
		die("%s: httpd.trusted_proxy \"%s\" is not an IPv4 address",
		    app.cfg.path, app.cfg.httpd.trusted_proxy);

	/* Signals go to sigwait() below, never to MHD's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct db_opts dbo = {
		.url = app.cfg.database.url,
		.app_name = "postern-httpd",
		.connect_timeout_s = app.cfg.database.connect_timeout_s,
		.statement_timeout_ms = app.cfg.database.statement_timeout_ms,
		.tries = LIMIT_DB_CONNECT_TRIES,
	};
	if (db_pool_open(&dbo, app.cfg.database.pool_size, &app.pool, &err) < 0)
		die("%s", err.msg);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	        MHD_USE_ERROR_LOG, (uint16_t)app.cfg.httpd.port, NULL, NULL,
	    on_request, &app,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)app.cfg.httpd.threads,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)app.cfg.httpd.connection_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)app.cfg.httpd.per_ip_connection_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)app.cfg.httpd.connection_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LIMIT_HTTP_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, &app,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_END);
	if (d == NULL) {
		db_pool_close(&app.pool);
		die("cannot listen on %s:%d (in use, or not allowed)",
		    app.cfg.httpd.listen, app.cfg.httpd.port);
	}
	log_info("event=httpd_started listen=%s port=%d threads=%d base_url=%s",
	    app.cfg.httpd.listen, app.cfg.httpd.port, app.cfg.httpd.threads,
	    app.cfg.httpd.base_url);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("event=sighup_ignored msg=\"restart postern-httpd "
			    "to apply config changes\"");
			continue;
		}
		break;
	}
	log_info("event=httpd_stopping signal=%d", sig);
	MHD_stop_daemon(d);
	db_pool_close(&app.pool);
	http_app_keys_wipe(&app);
	cfg_fini(&app.cfg);
	log_info("event=httpd_stopped");
	return 0;
}
