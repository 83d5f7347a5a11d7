/* mailer/smtp.h: sending a finished message over SMTP (libcurl).
 *
 * A struct smtp_conn wraps one libcurl easy handle. Sends on the same conn
 * reuse the server connection (and its TLS session) while the server keeps
 * it open; a send that finds the reused connection dead before the server
 * answered anything is retried once on a fresh connection, so nothing is
 * ever sent twice. A conn is used by one thread at a time.
 *
 * TLS: by default smtp:// must upgrade with STARTTLS (a server that does not
 * offer it is an error) and smtps:// is TLS from the first byte; the server
 * certificate is verified, host name included, against ca_file (or the
 * system store when ca_file is NULL). SMTP_TLS_NONE allows plaintext
 * smtp:// for tests only.
 *
 * Nothing here logs: the message text, the password and AUTH exchanges never
 * reach a log or an err->msg. err->msg carries the server's reply line (it
 * may name the recipient). */
#ifndef POSTERN_MAILER_SMTP_H
#define POSTERN_MAILER_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"

enum smtp_tls {
	SMTP_TLS_REQUIRED,  /* STARTTLS on smtp://, implicit on smtps:// */
	SMTP_TLS_NONE,      /* plaintext smtp:// (tests); smtps:// refused */
};

/* Settings; smtp_open() copies every string, so they may be freed after. */
struct smtp_opts {
	const char *url;        /* smtp://host:port[/ehlo-name] or smtps://... */
	const char *username;   /* NULL: no AUTH */
	const char *password;   /* with username (AUTH PLAIN/LOGIN) */
	const char *bearer;     /* with username instead of a password: an
	                         * OAuth 2.0 access token (AUTH XOAUTH2) */
	enum smtp_tls tls;
	const char *ca_file;    /* PEM file of trusted CAs; NULL: system store */
	long connect_timeout_s; /* TCP + TLS connect; <= 0: LIMIT_SMTP_TIMEOUT_S */
	long timeout_s;         /* longest wait for a reply or for progress
	                         * while sending; <= 0: LIMIT_SMTP_TIMEOUT_S.
	                         * A whole send is also capped at 10 times it. */
};

struct cfg;
#define SMTP_SECRET_MAX 4096
/* Fills o from the [smtp] section (strings borrowed from cfg). With
 * smtp.password_file set, the password or token is read from that file
 * into secret[SMTP_SECRET_MAX] now (so a rotated token is picked up at the
 * next connection); the caller wipes secret after smtp_open(). */
MUST_CHECK int smtp_opts_from_cfg(struct smtp_opts *o, const struct cfg *cfg,
    char *secret, struct err *err);

/* Which command the last reply answered: tells a refused recipient (RCPT,
 * a bounce for that address) from a refused sender, message or login. */
enum smtp_stage {
	SMTP_STAGE_CONNECT,   /* connect, greeting, TLS handshake */
	SMTP_STAGE_HELO,      /* EHLO/HELO, STARTTLS */
	SMTP_STAGE_AUTH,
	SMTP_STAGE_MAIL,      /* MAIL FROM */
	SMTP_STAGE_RCPT,      /* RCPT TO */
	SMTP_STAGE_DATA,      /* DATA, or the reply after the message */
};

#define SMTP_REPLY_MAX 256

struct smtp_result {
	long code;                   /* last reply code of the send; 0: none */
	enum smtp_stage stage;       /* what that reply answered */
	char reply[SMTP_REPLY_MAX];  /* its last line ("250 2.0.0 Ok: queued
	                              * as ..."), printable ASCII, maybe cut */
	size_t rcpt_rejected;        /* recipients the server refused */
};

/* 2xx and the rest, as smtp_send() decides them. */
enum smtp_class { SMTP_CLASS_OK, SMTP_CLASS_TEMP, SMTP_CLASS_PERM };

struct smtp_conn;                  /* opaque: fields live in smtp.c */

/* Checks the options and makes the handle; does not connect yet (the first
 * send does). 0 and *c_r set, or -1 with err set (temp = false). */
MUST_CHECK int smtp_open(const struct smtp_opts *opts, struct smtp_conn **c_r,
    struct err *err);

/* Sends msg (a whole RFC 5322 message with CRLF line ends, at most
 * LIMIT_MAIL_SIZE bytes; dot-stuffing is done here) from envelope sender
 * `from` ("" for the null sender <>) to n_rcpt recipients (1..LIMIT_SMTP_RCPT,
 * bare addresses without <>). Reads msg and rcpt during the call and keeps
 * no pointers. res may be NULL; when given it is always filled in.
 *
 * 0: the server took the message. With several recipients some may have
 * been refused (res->rcpt_rejected); with one, 0 means it was accepted.
 * -1: err set. err->temp: retry later (4xx, timeout, connection lost,
 * server unreachable). !err->temp: retrying will not help (5xx, bad
 * address, certificate or login refused, message too big); only
 * res->stage == SMTP_STAGE_RCPT with a 5xx code is a bounce for that
 * recipient. */
MUST_CHECK int smtp_send(struct smtp_conn *c, const char *from,
    const char *const *rcpt, size_t n_rcpt, const void *msg, size_t len,
    struct smtp_result *res, struct err *err);

/* Closes the connection (QUIT) and frees c. NULL-safe; sets *cp = NULL. */
void smtp_close(struct smtp_conn **cp);

/* Pure helpers, exposed for tests. */

/* curl_code is a CURLcode, reply_code the last SMTP reply code (0: none). */
enum smtp_class smtp_classify(int curl_code, long reply_code);
/* An envelope address we are willing to put in MAIL FROM / RCPT TO: at most
 * LIMIT_EMAIL bytes, no controls, spaces, <, > or quotes; "" only when
 * allow_empty (the null sender). */
bool smtp_address_ok(const char *addr, bool allow_empty);

#endif
