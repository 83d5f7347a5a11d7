/* mailer/inbound.c: parse, classify, trim and check the tokens of one raw
 * inbound message (see inbound.h). */
#include "mailer/inbound.h"

#include <string.h>

#include "common/email.h"

static const int token_rank[] = {
	[TOKEN_VALID] = 3, [TOKEN_EXPIRED] = 2, [TOKEN_INVALID] = 1,
	[TOKEN_MISSING] = 0,
};

/* The best token of kind among the addresses of one header value (comma
 * separated; commas inside quotes or <> do not split). */
static void
tokens_in_value(const char *v, enum token_kind want, const char *domain,
    const struct inbound_opts *o, enum token_status *best,
    struct token_info *best_info)
{
	size_t n = strnlen(v, LIMIT_MAIL_ADDRESS_SCAN * 16);

	for (size_t i = 0; i < n;) {
		size_t e = i;
		bool q = false;
		int angle = 0;

		for (; e < n; e++) {
			if (v[e] == '\\' && q && e + 1 < n)
				e++;
			else if (v[e] == '"')
				q = !q;
			else if (!q && v[e] == '<')
				angle++;
			else if (!q && v[e] == '>' && angle > 0)
				angle--;
			else if (!q && angle == 0 && v[e] == ',')
				break;
		}
		if (e - i < LIMIT_MAIL_ADDRESS_SCAN) {
			char addr[LIMIT_MAIL_ADDRESS_SCAN];
			char tok[TOKEN_SIZE];
			enum token_kind kind;
			enum token_status st = TOKEN_MISSING;
			struct token_info info = { 0 };
			int r;

			memcpy(addr, v + i, e - i);
			addr[e - i] = '\0';
			r = token_from_address(addr, domain, &kind, tok);
			if (r != 0 && kind == want)
				st = r < 0 || o->nkeys == 0 ? TOKEN_INVALID :
				    token_parse_verify(tok, o->now, o->keys,
				    o->nkeys, &info, NULL);
			/* a valid token of the other kind is not this one */
			if (st != TOKEN_MISSING && st != TOKEN_INVALID &&
			    info.kind != want)
				st = TOKEN_INVALID;
			if (token_rank[st] > token_rank[*best]) {
				*best = st;
				*best_info = info;
			}
		}
		i = e + 1;
	}
}

int
inbound_analyze(const char *raw, size_t len, const struct inbound_opts *o,
    struct inbound *in, struct err *err)
{
	struct classify_headers h;
	const char *rcpt[4];
	char from[LIMIT_EMAIL + 1];
	struct err e2 = { 0 };

	memset(in, 0, sizeof *in);
	in->reply = TOKEN_MISSING;
	in->bounce = TOKEN_MISSING;
	if (parse_mail(raw, len, &in->pm, err) < 0)
		return -1;

	parse_classify_headers(in->pm, &h, rcpt);
	h.bounce_domain = o->bounce_domain;
	h.self = o->self;
	h.nself = o->nself;
	classify_mail(&h, &in->cls);

	if (in->pm->dsn != NULL)
		in->have_dsn = classify_dsn_parse(in->pm->dsn, in->pm->dsn_len,
		    &in->dsn, &e2) == 1;
	in->trimmed = trim_reply(in->pm->text, in->pm->text_len, &in->trim,
	    &e2) == 0;

	for (size_t i = 0; i < 4; i++) {
		if (rcpt[i] == NULL)
			continue;
		tokens_in_value(rcpt[i], TOKEN_REPLY, o->reply_domain, o,
		    &in->reply, &in->reply_info);
		tokens_in_value(rcpt[i], TOKEN_BOUNCE, o->bounce_domain, o,
		    &in->bounce, &in->bounce_info);
	}

	if (classify_mailbox(in->pm->from, from, sizeof from) == 0 &&
	    email_normalize_check(from, in->from_addr, sizeof in->from_addr,
	    &e2) < 0)
		in->from_addr[0] = '\0';
	return 0;
}

int
inbound_analyze_header(const char *raw, size_t len,
    const struct inbound_opts *o, struct inbound *in, struct err *err)
{
	size_t hl = parse_body_offset(raw, len);

	if (hl == 0 || hl >= len) {
		memset(in, 0, sizeof *in);
		return err_set(err, false, "no body to leave out");
	}
	return inbound_analyze(raw, hl, o, in, err);
}

void
inbound_fini(struct inbound *in)
{
	parsed_mail_free(&in->pm);
}

const char *
inbound_token_name(enum token_status st)
{
	switch (st) {
	case TOKEN_VALID: return "valid";
	case TOKEN_INVALID: return "invalid";
	case TOKEN_EXPIRED: return "expired";
	case TOKEN_MISSING: return "missing";
	}
	return "invalid";
}
