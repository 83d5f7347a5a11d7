/* tests/fuzz/fuzz_trim.c: reply trimming on arbitrary bytes (cut at the
 * first NUL, as decoded text never holds one), and with the same bytes the
 * delivery-status parser and header classification, which also read
 * outside text. Never crashes or hangs, and trim's answer always keeps its
 * promises (mailer/trim.h):
 *   - the ranges cover the input: leading white space, reply, white space,
 *     elided part, in that order, ending at the input's end;
 *   - the reply does not end in white space; nothing cut means no elided
 *     part;
 *   - valid UTF-8 in gives valid UTF-8 reply and elided part.
 * Seeds in corpus/trim/ are replies as mail clients write them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailer/classify.h"
#include "mailer/trim.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
ws_only(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void
check_trim(const char *in, size_t len)
{
	struct trim_result r;
	struct err err;
	size_t reply_end;

	if (trim_reply(in, len, &r, &err) < 0) {
		/* only the caps fail, and then nothing is cut */
		if (r.reply_off != 0 || r.reply_len != len ||
		    r.elided_off != len || r.elided_len != 0 ||
		    r.cut != TRIM_CUT_NONE || err.msg[0] == '\0')
			abort();
		return;
	}
	reply_end = r.reply_off + r.reply_len;
	if (reply_end < r.reply_off || reply_end > r.elided_off ||
	    r.elided_off > len || r.elided_off + r.elided_len != len)
		abort();
	if (!ws_only(in, r.reply_off) ||
	    !ws_only(in + reply_end, r.elided_off - reply_end))
		abort();
	if (r.reply_len > 0 && ws_only(in + reply_end - 1, 1))
		abort();
	if (r.reply_len == 0 && r.reply_off != 0)
		abort();
	if ((r.cut == TRIM_CUT_NONE) != (r.elided_len == 0))
		abort();
	if (r.confidence != TRIM_LOW && r.confidence != TRIM_HIGH)
		abort();
	if (utf8_valid((const unsigned char *)in, len) &&
	    (!utf8_valid((const unsigned char *)in + r.reply_off, r.reply_len) ||
	    !utf8_valid((const unsigned char *)in + r.elided_off, r.elided_len)))
		abort();
	/* deterministic */
	{
		struct trim_result again;

		if (trim_reply(in, len, &again, &err) < 0 ||
		    memcmp(&again, &r, sizeof r) != 0)
			abort();
	}
}

static void
check_dsn(const char *in, size_t len)
{
	struct classify_dsn d;
	struct err err;
	int ret = classify_dsn_parse(in, len, &d, &err);

	if (ret < -1 || ret > 1 || (ret == -1 && len <= LIMIT_DSN_TEXT))
		abort();
	if (ret != 1)
		return;
	if (strlen(d.status) >= sizeof d.status ||
	    strlen(d.recipient) > LIMIT_EMAIL ||
	    strlen(d.diagnostic) > DSN_DIAG_MAX || (d.hard && d.soft))
		abort();
	if (d.status[0] != '\0' && (d.hard != (d.status[0] == '5') ||
	    d.soft != (d.status[0] == '4')))
		abort();
}

/* The input split at LFs into header values. */
static void
check_classify(char *in, size_t len)
{
	const char *v[10] = { 0 };
	struct classify_headers h;
	struct classify_result r;
	size_t n = 0;
	char *p = in;

	while (n < 10 && p <= in + len) {
		char *nl = memchr(p, '\n', (size_t)(in + len - p));

		v[n++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	h = (struct classify_headers){
		.from = v[0], .return_path = v[1], .auto_submitted = v[2],
		.precedence = v[3], .x_autoreply = v[4], .x_autorespond = v[5],
		.subject = v[6], .content_type = v[7], .rcpt = &v[8],
		.nrcpt = 2, .bounce_domain = n & 1 ? NULL : "bounce.oak.test",
		.self = &v[9], .nself = 1,
	};
	classify_mail(&h, &r);
	if (r.kind < CLASSIFY_UNKNOWN || r.kind > CLASSIFY_BOUNCE ||
	    r.reason[0] == '\0' || strlen(r.reason) >= sizeof r.reason)
		abort();
	for (const char *q = r.reason; *q; q++)
		if ((unsigned char)*q < 0x20)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t len = nul ? (size_t)(nul - data) : size;
	char *in = malloc(len + 1);

	if (in == NULL)
		return 0;
	memcpy(in, data, len);
	in[len] = '\0';
	check_trim(in, len);
	check_dsn(in, len);
	check_classify(in, len);       /* writes NULs into in: last */
	free(in);
	return 0;
}
