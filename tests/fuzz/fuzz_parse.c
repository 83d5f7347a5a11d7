/* tests/fuzz/fuzz_parse.c: the inbound path on arbitrary bytes, as the
 * ingester and `posternctl mail inspect` run it: parse_mail (libetpan
 * under our caps, RFC 2047, charsets, HTML→text), then classify_mail,
 * classify_dsn_parse and trim_reply on what it produced. Never crashes,
 * hangs or leaks; a refusal is an error with a message and no result; a
 * result keeps parse.h's promise: every string valid UTF-8 without NUL.
 * Inputs over 1 MiB are skipped so one run stays well inside -timeout
 * (the caps are tested on big inputs in tests/unit/test_parse.c).
 * Then the same bytes through inbound_analyze (what the ingester calls):
 * a verdict with a reason, offsets inside the text, tokens checked; bytes
 * parse_mail refuses go through inbound_analyze_header (the header alone,
 * as the ingester reads a refused mail).
 * Seeds in corpus/parse/ are small whole messages. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailer/classify.h"
#include "mailer/inbound.h"
#include "mailer/parse.h"
#include "mailer/trim.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 and no NUL byte. */
static bool
utf8_ok(const char *s, size_t n)
{
	return utf8_valid(s, n) && memchr(s, 0, n) == NULL;
}

static void
check_str(const char *s)
{
	if (s != NULL && !utf8_ok(s, strlen(s)))
		abort();
}

/* The ingester's options: a fixed key for the tokens. */
static const struct inbound_opts *
opts(void)
{
	static struct token_key keys[2];
	static const char *self[1] = { "postern@practice.test" };
	static struct inbound_opts o = { .bounce_domain = "practice.test",
		.self = self, .nself = 1, .keys = keys, .nkeys = 2,
		.now = 1795000000 };
	static bool init;

	if (!init) {
		uint8_t k[CRYPTO_KEY_BYTES] = { 7 };

		token_key_init(&keys[0], 1, TOKEN_REPLY, k);
		token_key_init(&keys[1], 1, TOKEN_BOUNCE, k);
		init = true;
	}
	return &o;
}

/* Every analysis gives a verdict with a reason and a plain From. */
static void
check_verdict(const struct inbound *ib)
{
	if (ib->cls.reason[0] == '\0')
		abort();
	if (ib->from_addr[0] != '\0' && strchr(ib->from_addr, '@') == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed_mail *pm = NULL;
	struct classify_headers h;
	struct classify_result cr;
	struct classify_dsn dsn;
	struct trim_result tr;
	const char *rcpt[4];
	struct err err = { 0 };

	if (size > 1024 * 1024)
		return 0;
	if (parse_mail((const char *)data, size, &pm, &err) < 0) {
		struct inbound ib;

		if (pm != NULL || err.msg[0] == '\0' || err.temp)
			abort();
		/* What the ingester still reads of a refused mail. */
		if (inbound_analyze_header((const char *)data, size, opts(),
		        &ib, &err) == 0)
			check_verdict(&ib);
		inbound_fini(&ib);
		return 0;
	}
	check_str(pm->from), check_str(pm->to), check_str(pm->cc);
	check_str(pm->subject), check_str(pm->message_id);
	check_str(pm->delivered_to), check_str(pm->return_path);
	check_str(pm->content_type), check_str(pm->references);
	if (pm->text == NULL || strlen(pm->text) != pm->text_len ||
	    !utf8_ok(pm->text, pm->text_len))
		abort();
	if (pm->dsn != NULL && (strlen(pm->dsn) != pm->dsn_len ||
	    !utf8_ok(pm->dsn, pm->dsn_len)))
		abort();
	for (size_t i = 0; i < pm->natt; i++)
		check_str(pm->att[i].filename), check_str(pm->att[i].content_type);
	if (pm->nparts > 200 || pm->depth > 10)
		abort();

	parse_classify_headers(pm, &h, rcpt);
	classify_mail(&h, &cr);
	if (cr.reason[0] == '\0')
		abort();
	if (pm->dsn != NULL &&
	    classify_dsn_parse(pm->dsn, pm->dsn_len, &dsn, &err) > 1)
		abort();
	if (trim_reply(pm->text, pm->text_len, &tr, &err) == 0 &&
	    (!utf8_ok(pm->text + tr.reply_off, tr.reply_len) ||
	    !utf8_ok(pm->text + tr.elided_off, tr.elided_len)))
		abort();
	parsed_mail_free(&pm);

	/* The ingester's own entry point (mailer/inbound.c) on the same
	 * bytes: tokens checked with a fixed key, a verdict. */
	{
		struct inbound ib;

		if (inbound_analyze((const char *)data, size, opts(), &ib,
		        &err) < 0)
			abort();        /* parse_mail accepted these bytes above */
		check_verdict(&ib);
		if (ib.trimmed &&
		    (ib.trim.reply_off + ib.trim.reply_len > ib.pm->text_len ||
		    ib.trim.elided_off + ib.trim.elided_len > ib.pm->text_len))
			abort();
		inbound_fini(&ib);
	}
	return 0;
}
