/* common/cfg.h: postern's configuration, one INI file read at startup.
 *
 * inih tokenises; the typed table in cfg.c gives each key its meaning,
 * default and range. Unknown, repeated, malformed or out-of-range keys and
 * over-long lines are errors naming file:line. Secrets (a database URL with
 * a password, the server key, SMTP/IMAP passwords) may come from the file
 * or the environment; a file holding any is refused when group or others
 * can read it. Environment: POSTERN_CONFIG names the file,
 * POSTERN_DATABASE_URL and POSTERN_SERVER_KEY override the file. */
#ifndef POSTERN_COMMON_CFG_H
#define POSTERN_COMMON_CFG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

#define CFG_DEFAULT_PATH "/etc/postern/postern.conf"
#define CFG_KEY_BYTES 32

/* Plain data; strings are owned by the struct and freed by cfg_fini(). */
struct cfg {
	char *path;                    /* the file read */
	struct {
		char *url;             /* libpq URI or key=value string */
		int pool_size;         /* httpd connections */
		int connect_timeout_s;
		int statement_timeout_ms;
	} database;
	struct {
		uint8_t server_key[CFG_KEY_BYTES];
		bool server_key_set;
	} security;
	struct {
		char *level;           /* debug, info, warn, error */
	} log;
	struct {
		char *listen;          /* address to bind */
		int port;
		char *base_url;        /* how patients and staff reach us */
		int threads;
		int connection_limit;
		int per_ip_connection_limit;
		int connection_timeout_s;
		int session_hours;     /* a sign-in lasts this long */
		int login_per_address_hour; /* sign-in mails per address and hour */
		int login_per_ip_hour; /* sign-in requests per client IP and hour */
		char *trusted_proxy;   /* believe its X-Forwarded-For; "": none */
	} httpd;
	struct {
		int threads;
		int batch;             /* jobs one claim takes */
		int poll_ms;
		int lease_s;           /* a claim's lease; heartbeats renew it */
		int retry_base_ms;     /* first retry after about this long */
		int retry_max_s;       /* retries never wait longer */
		int grace_s;
		int maintenance_s;     /* reaper + pruning interval */
		int keep_done_s;       /* 0: done jobs without once_key deleted */
		int keep_dead_s;
		char *metrics_listen;
		int metrics_port;      /* 0: no /metrics listener */
	} worker;
	struct {
		char *url;             /* smtp://host:port or smtps://host:port */
		char *username;
		char *password;        /* or the OAuth 2.0 token with xoauth2 */
		char *password_file;   /* read at each connect instead */
		char *auth;            /* password, xoauth2 */
		char *tls;             /* required, none */
		char *ca_file;         /* empty: system CAs */
		int timeout_s;
	} smtp;
	struct {
		char *host;
		int port;
		char *tls;             /* implicit, starttls, none */
		char *username;
		char *password;
		char *ca_file;
		char *mailbox;
		int timeout_s;
		char *password_file;   /* first line: the password or token */
		char *auth;            /* login, plain, xoauth2 */
		char *processed_folder; /* "": flag \Seen; else UID MOVE there */
		int batch;             /* messages per ingest transaction */
		char *idle;            /* yes, no */
		int poll_s;            /* look for new mail at least this often */
	} imap;
	struct {
		char *red_flags_file;  /* one phrase per line; "": built-in list */
		char *attachment_types; /* comma-separated allowlist */
		int attachment_max_kb; /* larger attachments are refused */
		int keep_raw_days;     /* raw bytes of ingested mail kept */
		int keep_review_days;  /* … of quarantined, held, rejected mail */
	} ingest;
	struct {
		char *from_address;    /* default sender when a practice has none */
		char *reply_domain;    /* reply+TOKEN@reply_domain */
		char *bounce_domain;   /* bounce+TOKEN@bounce_domain (VERP) */
		int login_token_minutes; /* magic link lifetime = its give-up */
		int notify_give_up_h;  /* notify mail not out by then: dead */
		char *templates_dir;   /* overrides of mailer/template.c; "": none */
	} mail;
};

/* Fills cfg with defaults, then reads path (NULL: $POSTERN_CONFIG, else
 * CFG_DEFAULT_PATH), then applies the environment. -1 and err set (message
 * names file:line) on any problem; cfg is then fini'ed already. */
MUST_CHECK int cfg_load(struct cfg *cfg, const char *path, struct err *err);
void cfg_fini(struct cfg *cfg);

/* The first line of path (a password_file: a secret another program may
 * rotate) into secret[size]: no control characters, not empty, shorter
 * than size. what names the key in messages ("smtp.password_file"). */
MUST_CHECK int cfg_read_secret(const char *what, const char *path,
    char *secret, size_t size, struct err *err);

/* -1 and err set unless the server key is configured (file or env). */
MUST_CHECK int cfg_require_server_key(const struct cfg *cfg, struct err *err);

/* One event=config logfmt line with every key; secrets masked. */
void cfg_log(const struct cfg *cfg);

/* Lists "section.key" of every known key, one a line (for make cfg-check). */
void cfg_print_keys(FILE *out);

/* The database URL with any password replaced by "***", for messages. */
void cfg_mask_url(const char *url, char *out, size_t size);

#endif
