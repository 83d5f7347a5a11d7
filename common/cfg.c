/* common/cfg.c: the typed key table and the INI reader around inih.
 *
 * Every key postern knows is one line of `keys[]` below; nothing else is
 * accepted. config/postern.conf.example documents each (make cfg-check).
 * Limits: file LIMIT_CFG_FILE bytes, lines LIMIT_CFG_LINE bytes (inih r55
 * would silently cut longer lines and parse the rest as a new key). */
#include "common/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"

enum key_type { K_INT, K_STR, K_ENUM, K_KEY32 };

enum {
	F_SECRET = 1,           /* never logged; file must be private */
	F_URL_SECRET = 2,       /* secret when it carries a password */
};

struct key {
	const char *section, *name;
	enum key_type type;
	size_t off;
	const char *sdef;       /* K_STR, K_ENUM default */
	long long idef, min, max; /* K_INT range; K_STR: max length */
	const char *choices;    /* K_ENUM: "a|b|c" */
	unsigned flags;
};

#define OFF(field) offsetof(struct cfg, field)
#define CFG_INT(s, k, f, d, lo, hi) { s, k, K_INT, OFF(f), NULL, d, lo, hi, NULL, 0 }
#define CFG_STR(s, k, f, d, maxlen, fl) { s, k, K_STR, OFF(f), d, 0, 0, maxlen, NULL, fl }
#define CFG_ENUM(s, k, f, d, ch) { s, k, K_ENUM, OFF(f), d, 0, 0, 0, ch, 0 }
#define CFG_KEY(s, k, f) { s, k, K_KEY32, OFF(f), NULL, 0, 0, 0, NULL, F_SECRET }

static const struct key keys[] = {
	CFG_STR("database", "url", database.url, "postgresql:///postern", 1024, F_URL_SECRET),
	CFG_INT("database", "pool_size", database.pool_size, 8, 1, LIMIT_DB_POOL),
	CFG_INT("database", "connect_timeout_s", database.connect_timeout_s, 5, 1, 60),
	CFG_INT("database", "statement_timeout_ms", database.statement_timeout_ms, 30000, 0, 600000),
	CFG_KEY("security", "server_key", security.server_key),
	CFG_ENUM("log", "level", log.level, "info", "debug|info|warn|error"),
	CFG_STR("httpd", "listen", httpd.listen, "127.0.0.1", 64, 0),
	CFG_INT("httpd", "port", httpd.port, 8080, 1, 65535),
	CFG_STR("httpd", "base_url", httpd.base_url, "http://127.0.0.1:8080", 200, 0),
	CFG_INT("httpd", "threads", httpd.threads, 2, 1, 64),
	CFG_INT("httpd", "connection_limit", httpd.connection_limit, 256, 1, LIMIT_HTTP_CONNECTIONS),
	CFG_INT("httpd", "per_ip_connection_limit", httpd.per_ip_connection_limit, 16, 1, LIMIT_HTTP_PER_IP),
	CFG_INT("httpd", "connection_timeout_s", httpd.connection_timeout_s, 15, 1, LIMIT_HTTP_TIMEOUT_S),
	CFG_INT("httpd", "session_hours", httpd.session_hours, 12, 1, 720),
	CFG_INT("httpd", "login_per_address_hour", httpd.login_per_address_hour, 5, 1, 1000),
	CFG_INT("httpd", "login_per_ip_hour", httpd.login_per_ip_hour, 30, 1, 100000),
	CFG_STR("httpd", "trusted_proxy", httpd.trusted_proxy, "", 64, 0),
	CFG_INT("worker", "threads", worker.threads, 2, 1, 64),
	CFG_INT("worker", "batch", worker.batch, 32, 1, 500),
	CFG_INT("worker", "poll_ms", worker.poll_ms, 1000, 50, 5000),
	CFG_INT("worker", "lease_s", worker.lease_s, 60, 2, 3600),
	CFG_INT("worker", "retry_base_ms", worker.retry_base_ms, 5000, 10, 600000),
	CFG_INT("worker", "retry_max_s", worker.retry_max_s, 3600, 1, 86400),
	CFG_INT("worker", "grace_s", worker.grace_s, 20, 0, LIMIT_GRACE_S),
	CFG_INT("worker", "maintenance_s", worker.maintenance_s, 10, 1, 3600),
	CFG_INT("worker", "keep_done_s", worker.keep_done_s, 0, 0, 400 * 86400),
	CFG_INT("worker", "keep_dead_s", worker.keep_dead_s, 30 * 86400, 3600, 400 * 86400),
	CFG_STR("worker", "metrics_listen", worker.metrics_listen, "127.0.0.1", 64, 0),
	CFG_INT("worker", "metrics_port", worker.metrics_port, 0, 0, 65535),
	CFG_STR("smtp", "url", smtp.url, "smtp://127.0.0.1:25", 200, 0),
	CFG_STR("smtp", "username", smtp.username, "", 200, 0),
	CFG_STR("smtp", "password", smtp.password, "", 200, F_SECRET),
	CFG_STR("smtp", "password_file", smtp.password_file, "", 1024, 0),
	CFG_ENUM("smtp", "auth", smtp.auth, "password", "password|xoauth2"),
	CFG_ENUM("smtp", "tls", smtp.tls, "required", "required|none"),
	CFG_STR("smtp", "ca_file", smtp.ca_file, "", 1024, 0),
	CFG_INT("smtp", "timeout_s", smtp.timeout_s, 30, 1, LIMIT_SMTP_TIMEOUT_S),
	CFG_STR("imap", "host", imap.host, "127.0.0.1", 200, 0),
	CFG_INT("imap", "port", imap.port, 993, 1, 65535),
	CFG_ENUM("imap", "tls", imap.tls, "implicit", "implicit|starttls|none"),
	CFG_STR("imap", "username", imap.username, "", 200, 0),
	CFG_STR("imap", "password", imap.password, "", 200, F_SECRET),
	CFG_STR("imap", "ca_file", imap.ca_file, "", 1024, 0),
	CFG_STR("imap", "mailbox", imap.mailbox, "INBOX", 200, 0),
	CFG_INT("imap", "timeout_s", imap.timeout_s, 30, 1, LIMIT_IMAP_TIMEOUT_S),
	CFG_STR("imap", "password_file", imap.password_file, "", 1024, 0),
	CFG_ENUM("imap", "auth", imap.auth, "login", "login|plain|xoauth2"),
	CFG_STR("imap", "processed_folder", imap.processed_folder, "", 200, 0),
	CFG_INT("imap", "batch", imap.batch, 100, 1, LIMIT_IMAP_BATCH),
	CFG_ENUM("imap", "idle", imap.idle, "yes", "yes|no"),
	CFG_INT("imap", "poll_s", imap.poll_s, 60, 5, 3600),
	CFG_STR("ingest", "red_flags_file", ingest.red_flags_file, "", 1024, 0),
	CFG_STR("ingest", "attachment_types", ingest.attachment_types,
	    "application/pdf,image/jpeg,image/png,image/gif,image/heic,text/plain",
	    180, 0),
	CFG_INT("ingest", "keep_raw_days", ingest.keep_raw_days, 30, 1, 3650),
	CFG_INT("ingest", "keep_review_days", ingest.keep_review_days, 180, 1,
	    3650),
	CFG_INT("ingest", "attachment_max_kb", ingest.attachment_max_kb, 10240, 0,
	    LIMIT_MAIL_SIZE / 1024),
	CFG_STR("mail", "from_address", mail.from_address, "postern@localhost", 254, 0),
	CFG_STR("mail", "reply_domain", mail.reply_domain, "localhost", 253, 0),
	CFG_STR("mail", "bounce_domain", mail.bounce_domain, "localhost", 253, 0),
	CFG_INT("mail", "login_token_minutes", mail.login_token_minutes, 15, 2, 1440),
	CFG_INT("mail", "notify_give_up_h", mail.notify_give_up_h, 24, 1, 720),
	CFG_STR("mail", "templates_dir", mail.templates_dir, "", 1024, 0),
};
#define NKEYS (sizeof keys / sizeof keys[0])

struct parse_ctx {
	struct cfg *cfg;
	bool seen[NKEYS];
	bool secret_in_file;
	char msg[ERR_MSG_MAX];   /* the first handler error */
};

static char **
str_at(struct cfg *cfg, const struct key *k)
{
	return (char **)(void *)((char *)cfg + k->off);
}

static int *
int_at(struct cfg *cfg, const struct key *k)
{
	return (int *)(void *)((char *)cfg + k->off);
}

static bool
url_has_password(const char *url)
{
	const char *p, *at, *colon;

	if (strstr(url, "password=") != NULL)
		return true;
	p = strstr(url, "://");
	if (p == NULL)
		return false;
	p += 3;
	at = strchr(p, '@');
	if (at == NULL)
		return false;
	colon = memchr(p, ':', (size_t)(at - p));
	return colon != NULL && colon + 1 < at;
}

static bool
choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; *p != '\0';) {
		const char *e = strchr(p, '|');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == n && memcmp(p, v, n) == 0)
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

static int
key_from_base64(const char *b64, uint8_t out[CFG_KEY_BYTES], struct err *err)
{
	size_t n = 0;

	if (sodium_base642bin(out, CFG_KEY_BYTES, b64, strlen(b64), " \t", &n,
	        NULL, sodium_base64_VARIANT_ORIGINAL) != 0 || n != CFG_KEY_BYTES)
		return err_set(err, false, "server_key must be base64 of exactly "
		    "32 bytes (make one with: head -c32 /dev/urandom | base64)");
	return 0;
}

/* Gives value v to key k. 0, or -1 with a message in msg. */
static int
set_value(struct cfg *cfg, const struct key *k, const char *v, char *msg,
    size_t msize)
{
	struct err e;
	long long n;

	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(msg, msize, "%s.%s: control character in value",
			    k->section, k->name);
			return -1;
		}
	switch (k->type) {
	case K_INT:
		if (parse_i64(v, k->min, k->max, &n, &e) < 0) {
			snprintf(msg, msize, "%s.%s: %.120s (want %lld..%lld)",
			    k->section, k->name, e.msg, k->min, k->max);
			return -1;
		}
		*int_at(cfg, k) = (int)n;
		return 0;
	case K_STR:
		if ((long long)strlen(v) > k->max) {
			snprintf(msg, msize, "%s.%s: longer than %lld bytes",
			    k->section, k->name, k->max);
			return -1;
		}
		break;
	case K_ENUM:
		if (!choice_ok(k->choices, v)) {
			snprintf(msg, msize, "%s.%s: \"%.40s\" is not one of %s",
			    k->section, k->name, v, k->choices);
			return -1;
		}
		break;
	case K_KEY32:
		if (key_from_base64(v, cfg->security.server_key, &e) < 0) {
			snprintf(msg, msize, "%s.%s: %.160s", k->section, k->name,
			    e.msg);
			return -1;
		}
		cfg->security.server_key_set = true;
		return 0;
	}
	free(*str_at(cfg, k));
	*str_at(cfg, k) = xstrdup(v);
	return 0;
}

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	char msg[ERR_MSG_MAX];

	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];

		if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
			continue;
		if (ctx->seen[i]) {
			snprintf(msg, sizeof msg, "%s.%s given twice (or a "
			    "continuation line, which postern does not allow)",
			    section, name);
			goto bad;
		}
		ctx->seen[i] = true;
		if (set_value(ctx->cfg, k, value, msg, sizeof msg) < 0)
			goto bad;
		if ((k->flags & F_SECRET && value[0] != '\0') ||
		    (k->flags & F_URL_SECRET && url_has_password(value)))
			ctx->secret_in_file = true;
		return 1;
	}
	snprintf(msg, sizeof msg, "unknown key \"%.60s\" in section [%.60s]",
	    name, section);
bad:
	if (ctx->msg[0] == '\0')
		str_copy(ctx->msg, sizeof ctx->msg, msg);
	return 0;
}

static void
set_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (k->type == K_INT)
			*int_at(cfg, k) = (int)k->idef;
		else if (k->type == K_STR || k->type == K_ENUM)
			*str_at(cfg, k) = xstrdup(k->sdef);
	}
}

/* Reads the whole file into b, refusing lines over LIMIT_CFG_LINE. */
static int
read_file(const char *path, struct buf *b, struct stat *st, struct err *err)
{
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1, line = 1;
	size_t col = 0;
	ssize_t n;

	if (fd < 0)
		return err_set_errno(err, false, errno, "%s", path);
	if (fstat(fd, st) < 0) {
		err_set_errno(err, false, errno, "%s", path);
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		err_set(err, false, "%s: not a regular file", path);
		goto out;
	}
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n') {
				line++;
				col = 0;
			} else if (chunk[i] == '\0') {
				err_set(err, false, "%s:%d: NUL byte", path, line);
				goto out;
			} else if (++col > LIMIT_CFG_LINE) {
				err_set(err, false, "%s:%d: line longer than %d "
				    "bytes", path, line, LIMIT_CFG_LINE);
				goto out;
			}
		}
		if (buf_add(b, chunk, (size_t)n) < 0) {
			err_set(err, false, "%s: larger than %d bytes", path,
			    LIMIT_CFG_FILE);
			goto out;
		}
	}
	if (n < 0) {
		err_set_errno(err, false, errno, "%s", path);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int
cfg_load(struct cfg *cfg, const char *path, struct err *err)
{
	struct parse_ctx ctx;
	struct buf b;
	struct stat st;
	const char *env;
	int line;

	set_defaults(cfg);
	if (path == NULL)
		path = getenv("POSTERN_CONFIG");
	if (path == NULL || path[0] == '\0')
		path = CFG_DEFAULT_PATH;
	cfg->path = xstrdup(path);
	memset(&ctx, 0, sizeof ctx);
	ctx.cfg = cfg;
	buf_init(&b, LIMIT_CFG_FILE);
	if (read_file(path, &b, &st, err) < 0)
		goto fail;
	line = ini_parse_string(buf_str(&b), on_key, &ctx);
	if (line != 0) {
		err_set(err, false, "%s:%d: %s", path, line, ctx.msg[0] != '\0'
		    ? ctx.msg : "syntax error (want [section] or key = value)");
		goto fail;
	}
	if (ctx.secret_in_file && (st.st_mode & 077) != 0) {
		err_set(err, false, "%s holds secrets but group or others may "
		    "read it (mode %03o): chmod 600 it, or pass secrets in "
		    "POSTERN_DATABASE_URL / POSTERN_SERVER_KEY", path,
		    (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	env = getenv("POSTERN_DATABASE_URL");
	if (env != NULL && env[0] != '\0') {
		if (strlen(env) > 1024) {
			err_set(err, false, "POSTERN_DATABASE_URL: longer than "
			    "1024 bytes");
			goto fail;
		}
		free(cfg->database.url);
		cfg->database.url = xstrdup(env);
	}
	env = getenv("POSTERN_SERVER_KEY");
	if (env != NULL && env[0] != '\0') {
		if (key_from_base64(env, cfg->security.server_key, err) < 0) {
			err_prefix(err, "POSTERN_SERVER_KEY");
			goto fail;
		}
		cfg->security.server_key_set = true;
	}
	buf_fini(&b);
	return 0;
fail:
	buf_fini(&b);
	cfg_fini(cfg);
	return -1;
}

void
cfg_fini(struct cfg *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (k->type == K_STR || k->type == K_ENUM) {
			free(*str_at(cfg, k));
			*str_at(cfg, k) = NULL;
		}
	}
	free(cfg->path);
	cfg->path = NULL;
	sodium_memzero(cfg->security.server_key,
	    sizeof cfg->security.server_key);
	cfg->security.server_key_set = false;
}

int
cfg_require_server_key(const struct cfg *cfg, struct err *err)
{
	if (cfg->security.server_key_set)
		return 0;
	return err_set(err, false, "no server key: set security.server_key "
	    "in %s or POSTERN_SERVER_KEY (base64 of 32 random bytes: "
	    "head -c32 /dev/urandom | base64)", cfg->path);
}

void
cfg_mask_url(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://"), *at, *colon;

	if (strstr(url, "password=") != NULL) {
		/* key=value form: show only that it is there. */
		str_copy(out, size, "(connection string with password=***)");
		return;
	}
	if (p == NULL || (at = strchr(p + 3, '@')) == NULL ||
	    (colon = memchr(p + 3, ':', (size_t)(at - p - 3))) == NULL) {
		str_copy(out, size, url);
		return;
	}
	snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
}

void
cfg_log(const struct cfg *cfg)
{
	struct buf b;
	char q[512];

	buf_init(&b, LOG_LINE_MAX - 128);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		struct cfg *c = (struct cfg *)cfg;
		const char *v;
		char num[32];

		if (k->type == K_INT) {
			snprintf(num, sizeof num, "%d", *int_at(c, k));
			v = num;
		} else if (k->type == K_KEY32) {
			v = cfg->security.server_key_set ? "***" : "-";
		} else if (k->flags & F_SECRET) {
			v = (*str_at(c, k))[0] != '\0' ? "***" : "";
		} else if (k->flags & F_URL_SECRET) {
			cfg_mask_url(*str_at(c, k), q, sizeof q);
			v = q;
		} else {
			v = *str_at(c, k);
		}
		char qv[300];
		if (buf_printf(&b, " %s.%s=%s", k->section, k->name,
		        log_quote(qv, sizeof qv, v)) < 0)
			break;
	}
	log_info("event=config file=%s%s", log_quote(q, sizeof q, cfg->path),
	    buf_str(&b));
	buf_fini(&b);
}

void
cfg_print_keys(FILE *out)
{
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(out, "%s.%s\n", keys[i].section, keys[i].name);
}

int
cfg_read_secret(const char *what, const char *path, char *secret, size_t size,
    struct err *err)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (size < 2)
		return err_set(err, false, "%s: no room", what);
	if (f == NULL)
		return err_set_errno(err, true, errno, "%s %s", what, path);
	n = fread(secret, 1, size - 1, f);
	fclose(f);
	secret[n] = '\0';
	n = strcspn(secret, "\r\n");
	secret[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)secret[i] < 0x20 || secret[i] == 0x7f)
			return err_set(err, false, "%s %s: control character in "
			    "the first line", what, path);
	if (n == 0)
		return err_set(err, false, "%s %s: empty", what, path);
	return 0;
}
