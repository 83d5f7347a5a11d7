/* common/limits.h: every size, count, depth and wait that bounds input from
 * outside (HTTP, mail, config, CSV, job payloads). Going over one is a clean,
 * recorded error, never a silent truncation. */
#ifndef POSTERN_COMMON_LIMITS_H
#define POSTERN_COMMON_LIMITS_H

/* Config file (inih r55 cuts lines at 199 bytes; we refuse longer ones). */
#define LIMIT_CFG_LINE 190
#define LIMIT_CFG_FILE (256 * 1024)

/* Database. */
#define LIMIT_DB_CONNECT_TRIES 8            /* then give up: startup error */
#define LIMIT_DB_BACKOFF_MAX_MS 5000
#define LIMIT_DB_POOL 64
#define LIMIT_SQL_FILE (4 * 1024 * 1024)    /* one migration file */
#define LIMIT_MIGRATIONS 999

/* People and practices. */
#define LIMIT_EMAIL 254                      /* RFC 5321 path limit */
#define LIMIT_NAME 200                       /* a person's or practice's name */
#define LIMIT_SLUG 63
#define LIMIT_TIMEZONE 64

/* CSV import. */
#define LIMIT_CSV_FILE (64 * 1024 * 1024)
#define LIMIT_CSV_LINE 4096                  /* bytes of one record */
#define LIMIT_CSV_FIELDS 32
#define LIMIT_CSV_ROWS 200000
#define LIMIT_CSV_ERRORS_SHOWN 100           /* then "… and N more" */

/* Mail. */
#define LIMIT_MAIL_SIZE (25 * 1024 * 1024)  /* one raw message in or out */
#define LIMIT_SMTP_TIMEOUT_S 60
#define LIMIT_IMAP_TIMEOUT_S 60
/* Recipients of one SMTP send (RFC 5321 servers must take 100). */
#define LIMIT_SMTP_RCPT 100
/* A whole send may take this many stall timeouts, so a server that
 * trickles bytes cannot hold a worker forever. */
#define LIMIT_SMTP_TOTAL_FACTOR 10
/* A pooled SMTP connection idle longer than this is not reused: servers
 * drop idle sessions (Postfix after 300 s) and a fresh connect is cheap. */
#define LIMIT_SMTP_IDLE_S 60
/* One IMAP reply other than a message fetch (a UID SEARCH of a mailbox
 * with a million messages is ~8 MB). */
#define LIMIT_IMAP_REPLY (16 * 1024 * 1024)
/* Reply bytes allowed around a fetched message (FETCH line, untagged
 * updates, the tagged OK). */
#define LIMIT_IMAP_FETCH_SLACK (64 * 1024)
/* LOGOUT on close waits at most this long: the caller is leaving anyway. */
#define LIMIT_IMAP_LOGOUT_MS 5000
/* A mailbox name longer than this is refused before it is sent. */
#define LIMIT_IMAP_MAILBOX 1024
/* UIDs in one FETCH/STORE command, and the FETCH response bytes allowed
 * per message on top of its literal (the "* n FETCH (UID … BODY[] {n}" line). */
#define LIMIT_IMAP_BATCH 500
/* IDLE is re-issued after this long (RFC 2177: servers may drop a client
 * idle for 30 minutes). */
#define LIMIT_IMAP_IDLE_S (25 * 60)
#define LIMIT_IMAP_FETCH_LINE 512

/* Outgoing mail: what handlers may pass to composition and templates;
 * going over is an error, never a cut. */
#define LIMIT_MAIL_SUBJECT         900                  /* bytes of UTF-8 in a subject */
#define LIMIT_MAIL_FILENAME        255                  /* bytes of UTF-8 in an attachment name */
#define LIMIT_MAIL_ATTACHMENTS     20                   /* attachments of one mail */
#define LIMIT_MAIL_REFERENCES      20                   /* References ids kept (the newest) */
#define LIMIT_MAIL_EXTRA_HEADERS   8                    /* extra headers of one mail */
#define LIMIT_MAIL_HEADER_NAME     64                   /* bytes of an extra header name */
#define LIMIT_MAIL_HEADER_VALUE    900                  /* bytes of an extra header value */
#define LIMIT_MAIL_URL             900                  /* List-Unsubscribe URL */
#define LIMIT_MAIL_CONTENT_TYPE    256                  /* bytes of a content type */
#define LIMIT_MAIL_MSGID           250                  /* "<id>" of a Message-ID or reference: always fits a line */
#define LIMIT_TEMPLATE_FILE        (64 * 1024)          /* one template override file */
#define LIMIT_TEMPLATE_VALUE       (256 * 1024)         /* one template variable's value */
#define LIMIT_TEMPLATE_URL         2048                 /* the link variable */
#define LIMIT_TEMPLATE_OUT         (4 * 1024 * 1024)    /* one rendered part */
#define LIMIT_MAIL_ADDRESS_SCAN    4096                 /* an address header value scanned for a token */
#define LIMIT_MAIL_CT_TOKEN        64                   /* a content type's type, subtype or parameter name */
#define LIMIT_MAIL_CT_VALUE        200                  /* a content type parameter's value */
#define LIMIT_MAIL_CT_PARAMS       8                    /* parameters of an attachment's content type */
#define LIMIT_MAIL_LINK            600                  /* a link a handler puts into a mail (base_url + path) */

/* Inbound mail: MIME parsing (mailer/parse.c; libetpan has no limits of
 * its own), reply extraction and classification. */
#define LIMIT_PARSE_DEPTH 10                /* MIME nesting, top = 0 */
#define LIMIT_PARSE_PARTS 200               /* MIME parts, all levels */
#define LIMIT_PARSE_HEADER (256 * 1024)     /* a header block */
#define LIMIT_PARSE_TEXT LIMIT_TRIM_INPUT   /* decoded body text, UTF-8 */
/* Lines "--token" in one mail: bounds the parts libetpan allocates even
 * for boundaries it reads differently from the pre-scan. */
#define LIMIT_PARSE_DASH_LINES 10000
#define LIMIT_TRIM_INPUT (4 * 1024 * 1024)  /* decoded text of one mail */
#define LIMIT_TRIM_LINES 100000
#define LIMIT_CLASSIFY_VALUE 4096           /* bytes of one header looked at */
#define LIMIT_CLASSIFY_RCPT 64              /* recipient header values */
#define LIMIT_DSN_TEXT (64 * 1024)          /* a message/delivery-status part */

/* HTTP. */
#define LIMIT_HTTP_CONNECTIONS 512
#define LIMIT_HTTP_PER_IP 32
#define LIMIT_HTTP_TIMEOUT_S 30
#define LIMIT_HTTP_CONN_MEMORY (64 * 1024)
#define LIMIT_FORM_BODY (64 * 1024)
#define LIMIT_FORM_FIELDS 32                /* name=value pairs in one form */
#define LIMIT_COOKIE_HEADER 4096            /* longer Cookie headers are ignored */
#define LIMIT_USER_AGENT 512                /* bytes kept with a session (schema: 512) */

/* Sign-in (httpd/signin.c). The schema allows 10 code attempts as a
 * backstop; the application stops at this many wrong codes per token. */
#define LIMIT_LOGIN_CODE_ATTEMPTS 5

/* Shutdown. */
#define LIMIT_GRACE_S 30

#endif
