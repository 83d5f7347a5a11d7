/* mailer/smtp.c: SMTP client on one libcurl easy handle per connection.
 *
 * Owns the easy handle and copies of the options (the password is wiped on
 * close). libcurl does the protocol, TLS, dot-stuffing and connection reuse;
 * this file adds the checks of what goes in (addresses, sizes, counts), the
 * reading of what came back, and the 4xx/5xx split that drives retries.
 *
 * libcurl reports only the last reply code, so the reply text and the stage
 * come from its debug callback (active with CURLOPT_VERBOSE). That callback
 * looks at nothing but the first word of each command we send and the
 * server's reply lines: AUTH payloads and the message are never copied. */
#include "mailer/smtp.h"

#include "common/cfg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"


struct smtp_conn {
	CURL *curl;
	char *url;
	char *username;
	char *password;            /* wiped in smtp_close() */
	char *bearer;              /* XOAUTH2 token; wiped in smtp_close() */
	char *ca_file;
	enum smtp_tls tls;
	long connect_timeout_s;
	long timeout_s;
	char curl_err[CURL_ERROR_SIZE];
};

/* What the debug callback saw during one send. */
struct capture {
	long code;                 /* last final reply code (not for QUIT) */
	enum smtp_stage stage;     /* stage of the last command sent */
	bool quitting;             /* last command was QUIT: ignore its reply */
	bool any_reply;            /* some reply arrived in this attempt */
	size_t rcpt_rejected;
	char reply[SMTP_REPLY_MAX];
};

struct reader {
	const unsigned char *p;
	size_t left;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool
smtp_address_ok(const char *addr, bool allow_empty)
{
	size_t n, at = 0, ats = 0;

	if (addr == NULL)
		return false;
	n = strlen(addr);
	if (n == 0)
		return allow_empty;
	if (n > LIMIT_EMAIL)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)addr[i];

		/* Controls (CR/LF would inject commands), space and the
		 * characters that delimit or quote an SMTP path. UTF-8 bytes
		 * (>= 0x80) pass: SMTPUTF8 addresses. */
		if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>' ||
		    ch == '"' || ch == '\\')
			return false;
		if (ch == '@') {
			ats++;
			at = i;
		}
	}
	return ats == 1 && at > 0 && at < n - 1;
}

enum smtp_class
smtp_classify(int curl_code, long reply_code)
{
	/* A 4xx/5xx reply is the server's own verdict. */
	if (reply_code >= 400 && reply_code < 500)
		return SMTP_CLASS_TEMP;
	if (reply_code >= 500 && reply_code < 600)
		return SMTP_CLASS_PERM;
	switch ((CURLcode)curl_code) {
	case CURLE_OK:
		return SMTP_CLASS_OK;
	/* Our settings or the peer's identity: the same call fails again
	 * until someone changes the configuration. */
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_USE_SSL_FAILED:         /* no STARTTLS offered */
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_LDAP_INVALID_URL:
		return SMTP_CLASS_PERM;
	/* Everything else (resolve, connect, timeouts, lost connection, a
	 * handshake cut short, a reply we could not read) may pass. */
	default:
		return SMTP_CLASS_TEMP;
	}
}

static const char *
stage_name(enum smtp_stage s)
{
	switch (s) {
	case SMTP_STAGE_CONNECT: return "connect";
	case SMTP_STAGE_HELO: return "EHLO";
	case SMTP_STAGE_AUTH: return "AUTH";
	case SMTP_STAGE_MAIL: return "MAIL FROM";
	case SMTP_STAGE_RCPT: return "RCPT TO";
	case SMTP_STAGE_DATA: return "DATA";
	}
	return "?";
}

static bool
starts(const char *p, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && strncasecmp(p, word, w) == 0;
}

/* A command we sent: note its stage from its first word only. While in AUTH,
 * lines are SASL payloads (base64, credentials): only a new command ends it;
 * base64 has no space or colon, so these prefixes cannot match a payload. */
static void
saw_command(struct capture *cap, const char *p, size_t n)
{
	cap->quitting = false;
	if (starts(p, n, "MAIL FROM:"))
		cap->stage = SMTP_STAGE_MAIL;
	else if (starts(p, n, "RCPT TO:"))
		cap->stage = SMTP_STAGE_RCPT;
	else if (starts(p, n, "EHLO ") || starts(p, n, "HELO ") ||
	    starts(p, n, "STARTTLS\r"))
		cap->stage = SMTP_STAGE_HELO;
	else if (starts(p, n, "AUTH "))
		cap->stage = SMTP_STAGE_AUTH;
	else if (starts(p, n, "QUIT\r"))
		cap->quitting = true;
	else if (cap->stage != SMTP_STAGE_AUTH && starts(p, n, "DATA\r"))
		cap->stage = SMTP_STAGE_DATA;
}

/* One reply line from the server ("250-..." or "250 ..."). */
static void
saw_reply(struct capture *cap, const char *p, size_t n)
{
	size_t o = 0;
	long code;

	if (cap->quitting)
		return;
	cap->any_reply = true;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n && o < sizeof cap->reply - 1; i++) {
		unsigned char ch = (unsigned char)p[i];
		cap->reply[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	cap->reply[o] = '\0';
	if (n < 4 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || p[3] == '-')
		return;                   /* not a final reply line */
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	cap->code = code;
	if (cap->stage == SMTP_STAGE_RCPT && code / 100 != 2)
		cap->rcpt_rejected++;
}

static int
debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct capture *cap = arg;

	(void)h;
	if (type == CURLINFO_HEADER_OUT)
		saw_command(cap, data, size);
	else if (type == CURLINFO_HEADER_IN)
		saw_reply(cap, data, size);
	/* CURLINFO_TEXT, DATA_*, SSL_DATA_*: not looked at. */
	return 0;
}

static size_t
read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct reader *r = arg;
	size_t n = size * nmemb;          /* @UNSAFE: libcurl keeps it small */

	if (n > r->left)
		n = r->left;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return n;
}

#define SETOPT(h, opt, val)                                                  \
	do {                                                                 \
		CURLcode rc_ = curl_easy_setopt((h), (opt), (val));          \
		if (rc_ != CURLE_OK) {                                       \
			err_set(err, false, "smtp: curl option %s: %s", #opt, \
			    curl_easy_strerror(rc_));                        \
			goto out;                                            \
		}                                                            \
	} while (0)

int
smtp_open(const struct smtp_opts *opts, struct smtp_conn **c_r,
    struct err *err)
{
	struct smtp_conn *c = NULL;
	bool smtps;
	long total;
	int ret = -1;

	*c_r = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return err_set(err, false, "smtp: curl_global_init: %s",
		    curl_easy_strerror(curl_init_rc));
	if (opts->url == NULL)
		return err_set(err, false, "smtp: no url");
	if (str_has_prefix(opts->url, "smtps://"))
		smtps = true;
	else if (str_has_prefix(opts->url, "smtp://"))
		smtps = false;
	else
		return err_set(err, false,
		    "smtp: url must start with smtp:// or smtps://");
	if (smtps && opts->tls == SMTP_TLS_NONE)
		return err_set(err, false,
		    "smtp: smtps:// url with TLS turned off");
	if (opts->username != NULL && opts->password == NULL &&
	    opts->bearer == NULL)
		return err_set(err, false, "smtp: username without password "
		    "or bearer token");

	c = xcalloc(1, sizeof *c);
	c->url = xstrdup(opts->url);
	c->username = opts->username ? xstrdup(opts->username) : NULL;
	c->password = opts->password ? xstrdup(opts->password) : NULL;
	c->bearer = opts->bearer ? xstrdup(opts->bearer) : NULL;
	c->ca_file = opts->ca_file ? xstrdup(opts->ca_file) : NULL;
	c->tls = opts->tls;
	c->connect_timeout_s = opts->connect_timeout_s > 0 ?
	    opts->connect_timeout_s : LIMIT_SMTP_TIMEOUT_S;
	c->timeout_s = opts->timeout_s > 0 ? opts->timeout_s :
	    LIMIT_SMTP_TIMEOUT_S;
	total = c->timeout_s * LIMIT_SMTP_TOTAL_FACTOR;

	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		err_set(err, true, "smtp: curl_easy_init failed");
		goto out;
	}
	SETOPT(c->curl, CURLOPT_URL, c->url);
	SETOPT(c->curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SETOPT(c->curl, CURLOPT_NOSIGNAL, 1L);
	SETOPT(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
	SETOPT(c->curl, CURLOPT_UPLOAD, 1L);
	SETOPT(c->curl, CURLOPT_READFUNCTION, read_cb);
	SETOPT(c->curl, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	SETOPT(c->curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, c->timeout_s);
	SETOPT(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(c->curl, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
	SETOPT(c->curl, CURLOPT_TIMEOUT, total);
	SETOPT(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(c->curl, CURLOPT_MAXAGE_CONN, (long)LIMIT_SMTP_IDLE_S);
	/* The debug callback is the only way to the reply text; with it set,
	 * VERBOSE prints nothing on its own. */
	SETOPT(c->curl, CURLOPT_DEBUGFUNCTION, debug_cb);
	SETOPT(c->curl, CURLOPT_VERBOSE, 1L);
	if (c->tls == SMTP_TLS_REQUIRED) {
		SETOPT(c->curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		SETOPT(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		SETOPT(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->ca_file != NULL)
			SETOPT(c->curl, CURLOPT_CAINFO, c->ca_file);
	} else {
		SETOPT(c->curl, CURLOPT_USE_SSL, (long)CURLUSESSL_NONE);
	}
	if (c->username != NULL) {
		SETOPT(c->curl, CURLOPT_USERNAME, c->username);
		if (c->bearer != NULL) {
			SETOPT(c->curl, CURLOPT_XOAUTH2_BEARER, c->bearer);
			SETOPT(c->curl, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
		} else {
			SETOPT(c->curl, CURLOPT_PASSWORD, c->password);
		}
	}
	*c_r = c;
	c = NULL;
	ret = 0;
out:
	smtp_close(&c);
	return ret;
}

/* Transport failures that a dead reused connection produces. */
static bool
stale_failure(CURLcode rc)
{
	return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
	    rc == CURLE_GOT_NOTHING;
}

/* One attempt; libcurl's result, with cap telling what the server said
 * and *new_conns_r how many connections it opened (0: it reused one). */
static CURLcode
perform(struct smtp_conn *c, const void *msg, size_t len,
    struct capture *cap, long *new_conns_r)
{
	struct reader rd = { .p = msg, .left = len };
	CURLcode rc;
	long conns = 0;

	memset(cap, 0, sizeof *cap);
	c->curl_err[0] = '\0';
	rc = curl_easy_setopt(c->curl, CURLOPT_READDATA, &rd);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->curl, CURLOPT_DEBUGDATA, cap);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)len);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(c->curl);
	/* Do not keep pointers to this call's stack frame. */
	(void)curl_easy_setopt(c->curl, CURLOPT_READDATA, NULL);
	(void)curl_easy_setopt(c->curl, CURLOPT_DEBUGDATA, NULL);
	(void)curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &conns);
	*new_conns_r = conns;
	return rc;
}

int
smtp_send(struct smtp_conn *c, const char *from, const char *const *rcpt,
    size_t n_rcpt, const void *msg, size_t len, struct smtp_result *res,
    struct err *err)
{
	struct curl_slist *list = NULL, *tmp;
	struct capture cap;
	CURLcode rc;
	long new_conns = 0, code = 0;
	enum smtp_class cls;
	int ret = -1;

	memset(&cap, 0, sizeof cap);
	if (res != NULL)
		memset(res, 0, sizeof *res);
	if (n_rcpt == 0 || n_rcpt > LIMIT_SMTP_RCPT) {
		err_set(err, false, "smtp: %zu recipients (1..%d allowed)",
		    n_rcpt, LIMIT_SMTP_RCPT);
		goto out;
	}
	if (!smtp_address_ok(from, true)) {
		err_set(err, false, "smtp: bad envelope sender");
		goto out;
	}
	if (len > LIMIT_MAIL_SIZE) {
		err_set(err, false, "smtp: message of %zu bytes is over %d",
		    len, LIMIT_MAIL_SIZE);
		goto out;
	}
	for (size_t i = 0; i < n_rcpt; i++) {
		if (!smtp_address_ok(rcpt[i], false)) {
			err_set(err, false, "smtp: bad recipient #%zu", i + 1);
			goto out;
		}
		tmp = curl_slist_append(list, rcpt[i]);
		if (tmp == NULL) {
			err_set(err, true, "smtp: out of memory");
			goto out;
		}
		list = tmp;
	}
	if (curl_easy_setopt(c->curl, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_MAIL_RCPT, list) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_MAIL_RCPT_ALLLOWFAILS,
		n_rcpt > 1 ? 1L : 0L) != CURLE_OK) {
		err_set(err, false, "smtp: cannot set the envelope");
		goto out;
	}

	rc = perform(c, msg, len, &cap, &new_conns);
	if (rc != CURLE_OK && new_conns == 0 && !cap.any_reply &&
	    stale_failure(rc)) {
		/* The reused connection was dead and the server saw no
		 * command of ours complete: safe to try once more, fresh. */
		log_info("event=smtp_reconnect reason=stale_connection curl=%d",
		    (int)rc);
		(void)curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
		rc = perform(c, msg, len, &cap, &new_conns);
		(void)curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 0L);
	}
	(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (cap.code != 0)
		code = cap.code;
	if (res != NULL) {
		res->code = code;
		res->stage = cap.stage;
		res->rcpt_rejected = cap.rcpt_rejected;
		memcpy(res->reply, cap.reply, sizeof res->reply);
	}

	cls = smtp_classify((int)rc, rc == CURLE_OK ? 0 : code);
	if (cls == SMTP_CLASS_OK) {
		ret = 0;
		goto out;
	}
	if (cap.stage == SMTP_STAGE_AUTH &&
	    (code >= 400 || rc == CURLE_LOGIN_DENIED))
		/* Our credentials, not the mail: say which and where from.
		 * An XOAUTH2 server may answer a bad token with a "334" error
		 * challenge (base64 JSON, e.g. status 401) that libcurl does
		 * not answer: that line is the server's verdict then. */
		err_set(err, cls == SMTP_CLASS_TEMP, "smtp: AUTH %s %s: %s",
		    c->bearer != NULL ? "XOAUTH2" : "(password)",
		    cls == SMTP_CLASS_TEMP ? "failed temporarily" :
		    c->bearer != NULL ? "refused, check the bearer token "
		    "(smtp.password_file or smtp.password)" : "refused, check "
		    "smtp.username and the password (smtp.password_file or "
		    "smtp.password)",
		    cap.reply[0] != '\0' ? cap.reply : curl_easy_strerror(rc));
	else if (code >= 400 && cap.reply[0] != '\0')
		err_set(err, cls == SMTP_CLASS_TEMP, "smtp: %ld at %s: %s",
		    code, stage_name(cap.stage), cap.reply);
	else
		err_set(err, cls == SMTP_CLASS_TEMP, "smtp: %s at %s: %s",
		    curl_easy_strerror(rc), stage_name(cap.stage),
		    c->curl_err[0] != '\0' ? c->curl_err : "-");
out:
	/* The handle must not keep a pointer to the freed list. */
	(void)curl_easy_setopt(c->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(list);
	return ret;
}

void
smtp_close(struct smtp_conn **cp)
{
	struct smtp_conn *c = *cp;

	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);       /* QUIT, close */
	if (c->bearer != NULL) {
		explicit_bzero(c->bearer, strlen(c->bearer));
		free(c->bearer);
	}
	if (c->password != NULL) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->url);
	free(c->username);
	free(c->ca_file);
	free(c);
	*cp = NULL;
}

int
smtp_opts_from_cfg(struct smtp_opts *o, const struct cfg *cfg, char *secret,
    struct err *err)
{
	bool oauth = strcmp(cfg->smtp.auth, "xoauth2") == 0;
	const char *pw = cfg->smtp.password;

	memset(o, 0, sizeof *o);
	if (cfg->smtp.password_file[0] != '\0') {
		if (cfg_read_secret("smtp.password_file",
		    cfg->smtp.password_file, secret, SMTP_SECRET_MAX, err) < 0)
			return -1;
		pw = secret;
	}
	o->url = cfg->smtp.url;
	o->username = cfg->smtp.username[0] != '\0' ? cfg->smtp.username : NULL;
	o->password = oauth ? NULL : pw;
	o->bearer = oauth ? pw : NULL;
	o->tls = strcmp(cfg->smtp.tls, "none") == 0 ? SMTP_TLS_NONE
	                                            : SMTP_TLS_REQUIRED;
	o->ca_file = cfg->smtp.ca_file[0] != '\0' ? cfg->smtp.ca_file : NULL;
	o->connect_timeout_s = cfg->smtp.timeout_s;
	o->timeout_s = cfg->smtp.timeout_s;
	return 0;
}
