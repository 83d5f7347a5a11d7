/* mailer/imap.h: reading a mailbox over IMAP (libetpan's mailimap parser on
 * our own TLS transport).
 *
 * One struct imap_conn is one logged-in IMAP session. Calls block, and every
 * network wait (connect, TLS handshake, each read and write) gives up after
 * timeout_s. A conn is used by one thread at a time.
 *
 * TLS is GnuTLS driven from here, not libetpan's (whose GnuTLS build checks
 * no certificate): the server's chain is verified against ca_file (or the
 * system store when ca_file is NULL) and its name against host (DNS name or
 * IP address SAN) before any password is sent. IMAP_TLS_STARTTLS refuses a
 * server that does not upgrade, and plaintext the server sends before the
 * handshake is an error (no STARTTLS injection). IMAP_TLS_NONE is for tests.
 *
 * Bounds: each reply is read against a byte budget (the message size cap
 * for a fetch, LIMIT_IMAP_REPLY otherwise); going over breaks the connection
 * with an error instead of growing memory. getaddrinfo() is not under
 * timeout_s: use an IP address or a name /etc/hosts or a near resolver knows.
 *
 * Errors: err->temp for timeouts, lost or broken connections and replies
 * marked [UNAVAILABLE]/[INUSE]/[SERVERBUG]/[LIMIT]; !err->temp for NO/BAD
 * replies, a refused login or certificate, an oversized message. After a
 * transport or parse error the conn is broken: later calls fail at once
 * (temp) and the caller reconnects. The password is never logged or kept. */
#ifndef POSTERN_MAILER_IMAP_H
#define POSTERN_MAILER_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"

enum imap_tls {
	IMAP_TLS_IMPLICIT,      /* TLS from the first byte (IMAPS, 993) */
	IMAP_TLS_STARTTLS,      /* plaintext greeting, then STARTTLS (143) */
	IMAP_TLS_NONE,          /* plaintext LOGIN: tests only */
};

enum imap_auth {
	IMAP_AUTH_LOGIN,        /* LOGIN user password */
	IMAP_AUTH_PLAIN,        /* AUTHENTICATE PLAIN (SASL) */
	IMAP_AUTH_XOAUTH2,      /* AUTHENTICATE XOAUTH2: password is a bearer
	                         * token (Gmail, Microsoft 365) */
};

/* Settings; imap_open() copies what it keeps, so they may be freed after. */
struct imap_opts {
	const char *host;       /* DNS name or IP literal; the certificate must
	                         * name it */
	unsigned port;          /* 0: 993 for IMAP_TLS_IMPLICIT, else 143 */
	enum imap_tls tls;
	const char *ca_file;    /* PEM file of trusted CAs; NULL: system store */
	const char *username;
	const char *password;
	enum imap_auth auth;
	long timeout_s;         /* each network wait; <= 0: LIMIT_IMAP_TIMEOUT_S */
};

#define IMAP_SECRET_MAX 4096

struct cfg;
/* [imap] of cfg as options; a password_file is read now into
 * secret[IMAP_SECRET_MAX] (so a rotated token is picked up at the next
 * connection). 0 or -1 with err set. */
MUST_CHECK int imap_opts_from_cfg(struct imap_opts *o, const struct cfg *cfg,
    char *secret, struct err *err);


struct imap_conn;                  /* opaque: fields live in imap.c */

/* Connects, does TLS as asked, reads the greeting and logs in.
 * 0 and *c_r set (a conn for imap_close()), or -1 with err set. */
MUST_CHECK int imap_open(const struct imap_opts *opts, struct imap_conn **c_r,
    struct err *err);

/* SELECTs mailbox (a modified UTF-7 name, as IMAP wants it; "INBOX").
 * 0 and *uidvalidity_r, *uidnext_r set (uidnext 0 when the server sent
 * none), or -1. A failed SELECT leaves no mailbox selected. */
MUST_CHECK int imap_select(struct imap_conn *c, const char *mailbox,
    uint32_t *uidvalidity_r, uint32_t *uidnext_r, struct err *err);

/* UID SEARCH of the selected mailbox for UIDs above last_uid. 0 with
 * *uids_r the lowest of them in ascending order, at most max_count (> 0),
 * and *n_r their number; *uids_r is NULL when none, else heap memory the
 * caller free()s. Ask again after the last one for more. -1 on error. */
MUST_CHECK int imap_uids_after(struct imap_conn *c, uint32_t last_uid,
    size_t max_count, uint32_t **uids_r, size_t *n_r, struct err *err);

/* UID SEARCH for UIDs 1..last_uid (only unseen ones when unseen): what a
 * crash between our commit and imap_mark_done() left behind. Same
 * contract as imap_uids_after(). */
MUST_CHECK int imap_uids_upto(struct imap_conn *c, uint32_t last_uid,
    bool unseen, size_t max_count, uint32_t **uids_r, size_t *n_r,
    struct err *err);

/* Appends message uid's raw bytes (BODY.PEEK[]: \Seen is not set) to out.
 * The size (RFC822.SIZE) is asked first: over max_size, or past out's cap,
 * is an error (!temp) and nothing is fetched; nothing is ever cut.
 * 1: appended. 0: no message with that UID (expunged). -1: err set, out as
 * it was. */
MUST_CHECK int imap_fetch(struct imap_conn *c, uint32_t uid, size_t max_size,
    struct buf *out, struct err *err);

/* One message of the selected mailbox, as listed by imap_list(). */
struct imap_msg {
	uint32_t uid;
	uint32_t size;            /* RFC822.SIZE as the server reports it */
	int64_t internal_date;    /* unix seconds; 0 when the server sent none */
};

/* UID FETCH (UID RFC822.SIZE INTERNALDATE) of uids[n] (ascending, n <=
 * LIMIT_IMAP_BATCH) into out[n]: *nout_r entries, ascending, for the UIDs
 * that still exist (expunged ones are left out). 0 or -1. */
MUST_CHECK int imap_list(struct imap_conn *c, const uint32_t *uids, size_t n,
    struct imap_msg *out, size_t *nout_r, struct err *err);

/* Called by imap_fetch_many() for each message, in the order of uids:
 * raw[len] is valid during the call only. Non-zero return: stop, that
 * value (with err set) is returned. */
typedef int (*imap_body_fn)(void *arg, uint32_t uid, const char *raw,
    size_t len, struct err *err);

/* One UID FETCH BODY.PEEK[] for uids[n] (ascending, n <= LIMIT_IMAP_BATCH)
 * whose RFC822.SIZEs add up to total (<= LIMIT_IMAP_REPLY): the reply is
 * read against a budget of total plus LIMIT_IMAP_FETCH_LINE per message,
 * so a server sending more than it announced breaks the connection
 * instead of growing memory. fn is called for each message that still
 * exists. 0, or -1 with err set. */
MUST_CHECK int imap_fetch_many(struct imap_conn *c, const uint32_t *uids,
    size_t n, size_t total, imap_body_fn fn, void *arg, struct err *err);

/* Appends message uid's header block (BODY.PEEK[HEADER], at most
 * LIMIT_PARSE_HEADER bytes) to out: the record of a message too large to
 * fetch. 1 appended, 0 no such message, -1 error. */
MUST_CHECK int imap_fetch_header(struct imap_conn *c, uint32_t uid,
    struct buf *out, struct err *err);

/* Marks uids[n] (n <= LIMIT_IMAP_BATCH) as processed: UID MOVE to move_to
 * when it is a folder name (the server must offer MOVE), else UID STORE
 * +FLAGS.SILENT (\Seen). 0 or -1. */
MUST_CHECK int imap_mark_done(struct imap_conn *c, const uint32_t *uids,
    size_t n, const char *move_to, struct err *err);

/* Does the server offer IDLE (RFC 2177)? */
bool imap_can_idle(struct imap_conn *c);

/* IDLE on the selected mailbox until the server says anything (new mail,
 * expunges, flag changes), max_ms pass or wake_fd (-1: none) becomes
 * readable; then DONE. 1: the server spoke, 0: timeout or woken, -1: err
 * set. Callers re-IDLE well before servers drop an idle client (RFC 2177:
 * 29 minutes). */
MUST_CHECK int imap_idle(struct imap_conn *c, int max_ms, int wake_fd,
    struct err *err);

/* LOGOUT (unless broken; waits at most 5 s), closes and frees c.
 * NULL-safe; sets *cp = NULL. */
void imap_close(struct imap_conn **cp);

#endif
