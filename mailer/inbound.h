/* mailer/inbound.h: what postern makes of one raw inbound message: MIME
 * parsing and decoding (mailer/parse), classification (mailer/classify),
 * the delivery-status report, reply trimming (mailer/trim) and the reply
 * and bounce address tokens (mailer/token). No database: the ingester
 * (worker/job_imap_sync.c) takes its decisions from this result, and
 * `posternctl mail inspect` prints it, so both run the very same code. */
#ifndef POSTERN_MAILER_INBOUND_H
#define POSTERN_MAILER_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h"
#include "mailer/classify.h"
#include "mailer/parse.h"
#include "mailer/token.h"
#include "mailer/trim.h"

struct inbound_opts {
	const char *reply_domain;     /* reply+ tokens count only here; NULL: any */
	const char *bounce_domain;    /* bounce+ likewise */
	const char *const *self;      /* our own sender addresses (loops) */
	size_t nself;
	const struct token_key *keys; /* reply and bounce keys accepted */
	size_t nkeys;
	int64_t now;                  /* unix seconds, for token expiry */
};

struct inbound {
	struct parsed_mail *pm;       /* owned */
	struct classify_result cls;
	bool have_dsn;                /* a delivery-status part was read */
	struct classify_dsn dsn;
	struct trim_result trim;      /* offsets into pm->text */
	bool trimmed;                 /* false: trim refused (whole text kept) */
	/* The best reply+ token among To, Cc, Delivered-To, X-Original-To
	 * (valid > expired > invalid > missing) and what it says. */
	enum token_status reply;
	struct token_info reply_info;
	/* The same for bounce+ tokens (VERP: a DSN or auto-reply to us). */
	enum token_status bounce;
	struct token_info bounce_info;
	/* From's addr-spec, checked and normalized (domain lower-cased);
	 * "" when there is none or it is not a valid address. */
	char from_addr[LIMIT_EMAIL + 1];
};

/* Analyzes raw[len]. 0 and *in filled (free with inbound_fini()); -1
 * with err set (err->temp false) when the message is refused: over a
 * size, depth, part or text cap, or without a header block. */
MUST_CHECK int inbound_analyze(const char *raw, size_t len,
    const struct inbound_opts *o, struct inbound *in, struct err *err);

/* For a message inbound_analyze() refused: the same analysis of its
 * header block alone (who wrote, the subject, whether it was automatic),
 * so a person can be told and a robot is not. 0 and *in filled (free with
 * inbound_fini()); -1 with err set when raw has no body to drop or its
 * header is refused too. */
MUST_CHECK int inbound_analyze_header(const char *raw, size_t len,
    const struct inbound_opts *o, struct inbound *in, struct err *err);

void inbound_fini(struct inbound *in);

/* "valid", "invalid", "expired", "missing". */
const char *inbound_token_name(enum token_status st);

#endif
