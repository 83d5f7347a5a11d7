/* mailer/classify.c: reply / auto-reply / bounce classification from
 * headers, and the delivery-status report parser (see classify.h).
 *
 * Everything here is a bounded scan of caller-owned strings: each header
 * value is looked at up to LIMIT_CLASSIFY_VALUE bytes, at most
 * LIMIT_CLASSIFY_RCPT recipient values are read, a DSN part is at most
 * LIMIT_DSN_TEXT bytes and is read once. Only ASCII is case-folded; the
 * non-ASCII subjects we match are listed as clients write them. */
#include "mailer/classify.h"

#include <stdio.h>
#include <string.h>

#include "mailer/span.h"
#include "mailer/token.h"

/* One address of a recipient list, as token_from_address() reads it. */
#define ADDR_PIECE_MAX 512
/* A DSN field's value kept while unfolding (longer: marked cut). */
#define DSN_FIELD_MAX 1024

static bool
is_sp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct span
strip(struct span s)
{
	while (s.n > 0 && is_sp(s.p[0]))
		s.p++, s.n--;
	while (s.n > 0 && is_sp(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* A header value, capped; .p NULL when absent. */
static struct span
value(const char *v)
{
	if (v == NULL)
		return (struct span){ NULL, 0 };
	return strip((struct span){ v, strnlen(v, LIMIT_CLASSIFY_VALUE) });
}

static bool
ci_eq_span(struct span a, struct span b)
{
	if (a.n != b.n)
		return false;
	for (size_t i = 0; i < a.n; i++)
		if (span_lower(a.p[i]) != span_lower(b.p[i]))
			return false;
	return true;
}

/* The first word of a structured value: up to ';', '(', a blank or a
 * quote ("auto-replied; owner-email=…" → "auto-replied"). */
static struct span
first_word(struct span s)
{
	size_t k = 0;

	while (k < s.n && s.p[k] != ';' && s.p[k] != '(' && s.p[k] != '"' &&
	    !is_sp(s.p[k]))
		k++;
	return (struct span){ s.p, k };
}

/* The address in a From value: the last <…> outside quotes, else the
 * whole value. */
static struct span
mailbox(struct span s)
{
	bool q = false;
	long lt = -1;

	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '\\' && q)
			i++;
		else if (s.p[i] == '"')
			q = !q;
		else if (s.p[i] == '<' && !q)
			lt = (long)i;
	}
	if (lt >= 0) {
		const char *gt = memchr(s.p + lt, '>', s.n - (size_t)lt);

		if (gt != NULL)
			return strip((struct span){ s.p + lt + 1,
			    (size_t)(gt - s.p) - (size_t)lt - 1 });
	}
	return s;
}

/* The local part of an address ("" without an '@'). */
static struct span
local_part(struct span addr)
{
	const char *at = NULL;

	for (size_t i = 0; i < addr.n; i++)
		if (addr.p[i] == '@')
			at = addr.p + i;
	if (at == NULL)
		return (struct span){ addr.p, 0 };
	return (struct span){ addr.p, (size_t)(at - addr.p) };
}

static bool
any_eq(struct span s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (span_ci_eq(s, *list))
			return true;
	return false;
}

/* reason = what + the first 40 bytes of detail; returns 0. */
static int
result(struct classify_result *r, enum classify_kind kind, const char *what,
    struct span detail)
{
	int n = (int)(detail.n < 40 ? detail.n : 40);

	r->kind = kind;
	snprintf(r->reason, sizeof r->reason, "%s%.*s", what, n,
	    detail.p ? detail.p : "");
	/* the detail is outside text: keep the reason printable */
	for (char *p = r->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return 0;
}

/* report-type of a multipart/report Content-Type; .p NULL when the type
 * is something else. */
static struct span
report_type(struct span ct)
{
	struct span t = first_word(ct), v;
	long at;
	size_t k;

	if (!span_ci_eq(t, "multipart/report"))
		return (struct span){ NULL, 0 };
	at = span_ci_find(ct, "report-type");
	if (at < 0)
		return (struct span){ ct.p, 0 };
	k = (size_t)at + strlen("report-type");
	while (k < ct.n && is_sp(ct.p[k]))
		k++;
	if (k >= ct.n || ct.p[k] != '=')
		return (struct span){ ct.p, 0 };
	k++;
	while (k < ct.n && is_sp(ct.p[k]))
		k++;
	if (k < ct.n && ct.p[k] == '"')
		k++;
	v = (struct span){ ct.p + k, 0 };
	while (k + v.n < ct.n && ct.p[k + v.n] != '"' &&
	    ct.p[k + v.n] != ';' && !is_sp(ct.p[k + v.n]))
		v.n++;
	return v;
}

/* Is any recipient a bounce+ address (of h->bounce_domain)? */
static bool
to_bounce_address(const struct classify_headers *h)
{
	size_t n = h->nrcpt < LIMIT_CLASSIFY_RCPT ? h->nrcpt : LIMIT_CLASSIFY_RCPT;

	for (size_t i = 0; i < n && h->rcpt != NULL; i++) {
		struct span v = value(h->rcpt[i]);
		size_t start = 0;
		bool q = false;
		int angle = 0;

		if (v.p == NULL)
			continue;
		for (size_t k = 0; k <= v.n; k++) {
			char piece[ADDR_PIECE_MAX], tok[TOKEN_SIZE];
			enum token_kind kind = TOKEN_REPLY;
			int found;

			if (k < v.n) {
				if (v.p[k] == '\\' && q && k + 1 < v.n) {
					k++;
					continue;
				}
				if (v.p[k] == '"')
					q = !q;
				else if (!q && v.p[k] == '<')
					angle++;
				else if (!q && v.p[k] == '>' && angle > 0)
					angle--;
				if (q || angle > 0 || v.p[k] != ',')
					continue;
			}
			if (k - start > 0 && k - start < sizeof piece) {
				memcpy(piece, v.p + start, k - start);
				piece[k - start] = '\0';
				found = token_from_address(piece,
				    h->bounce_domain, &kind, tok);
				if (found != 0 && kind == TOKEN_BOUNCE)
					return true;
			}
			start = k + 1;
		}
	}
	return false;
}

/* From is ours: one of h->self, or a reply+/bounce+ address. */
static bool
from_us(const struct classify_headers *h, struct span addr)
{
	char a[ADDR_PIECE_MAX], tok[TOKEN_SIZE];
	enum token_kind kind;
	size_t n = h->nself < LIMIT_CLASSIFY_RCPT ? h->nself : LIMIT_CLASSIFY_RCPT;

	if (addr.n == 0 || addr.n >= sizeof a)
		return false;
	for (size_t i = 0; i < n && h->self != NULL; i++) {
		struct span s = value(h->self[i]);

		if (s.n > 0 && ci_eq_span(s, addr))
			return true;
	}
	memcpy(a, addr.p, addr.n);
	a[addr.n] = '\0';
	return token_from_address(a, NULL, &kind, tok) != 0;
}

static bool
null_sender(struct span rp)
{
	size_t k = 0;
	char c[2];

	if (rp.p == NULL)
		return false;
	for (size_t i = 0; i < rp.n && k < 2; i++)
		if (!is_sp(rp.p[i]))
			c[k++] = rp.p[i];
	/* "" or "<>" (blanks inside allowed), nothing else */
	if (k == 0)
		return true;
	if (k != 2 || c[0] != '<' || c[1] != '>')
		return false;
	for (size_t i = 0, seen = 0; i < rp.n; i++)
		if (!is_sp(rp.p[i]) && ++seen > 2)
			return false;
	return true;
}

/* The checks in the order classify.h gives; returns 0. */
static int
decide(const struct classify_headers *h, struct classify_result *r)
{
	static const char *const precedences[] = {
		"bulk", "junk", "list", "auto_reply", "auto-reply", NULL,
	};
	static const char *const ooo[] = {
		"out of office", "out of the office", "out-of-office",
		"automatic reply", "auto reply", "auto-reply", "autoreply",
		"auto:", "auto response", "autoresponse", "vacation reply",
		"abwesenheitsnotiz", "automatische antwort", "abwesend",
		"r\xc3\xa9ponse automatique", "reponse automatique",
		"R\xc3\x89PONSE AUTOMATIQUE",
		"respuesta autom\xc3\xa1tica", "respuesta automatica",
		"fuera de la oficina", "risposta automatica", "fuori ufficio",
		"automatisch antwoord", "afwezig", "autosvar",
		NULL,
	};
	static const char *const bounce_subjects[] = {
		"undelivered mail", "undeliverable", "delivery status notification",
		"mail delivery failed", "delivery failure", "returned mail",
		"failure notice", "mail delivery system", "unzustellbar",
		"non remis", "no se puede entregar", "non recapitabile",
		NULL,
	};
	static const char *const daemons[] = {
		"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster",
		NULL,
	};
	static const char *const noreply[] = {
		"no-reply", "noreply", "no_reply", "donotreply",
		"do-not-reply", "do_not_reply", NULL,
	};
	struct span from = value(h->from), addr, local, rp, v, subj;
	bool daemon;

	addr = from.p ? mailbox(from) : from;
	local = local_part(addr);
	rp = value(h->return_path);
	subj = value(h->subject);
	daemon = local.n > 0 && any_eq(local, daemons);

	v = report_type(value(h->content_type));
	if (v.p != NULL && span_ci_eq(v, "delivery-status"))
		return result(r, CLASSIFY_BOUNCE,
		    "delivery status report", (struct span){ "", 0 });
	if (from_us(h, addr))
		return result(r, CLASSIFY_AUTO_REPLY, "loop: from our own "
		    "address", (struct span){ "", 0 });
	/* RFC 3834 */
	v = first_word(value(h->auto_submitted));
	if (v.n > 0 && !span_ci_eq(v, "no"))
		return result(r, CLASSIFY_AUTO_REPLY, "auto-submitted: ", v);
	v = value(h->x_autoreply);
	if (v.n > 0 && !span_ci_eq(v, "no") && !span_ci_eq(v, "false") &&
	    !span_ci_eq(v, "0"))
		return result(r, CLASSIFY_AUTO_REPLY, "x-autoreply: ", v);
	v = value(h->x_autorespond);
	if (v.n > 0 && !span_ci_eq(v, "no") && !span_ci_eq(v, "false") &&
	    !span_ci_eq(v, "0"))
		return result(r, CLASSIFY_AUTO_REPLY, "x-autorespond: ", v);
	v = first_word(value(h->precedence));
	if (v.n > 0 && any_eq(v, precedences))
		return result(r, CLASSIFY_AUTO_REPLY, "precedence: ", v);
	v = report_type(value(h->content_type));
	if (v.p != NULL)
		return result(r, CLASSIFY_AUTO_REPLY, "report: ",
		    v.n ? v : (struct span){ "unknown", 7 });
	if (subj.n > 0 && span_any_prefix(subj, ooo))
		return result(r, CLASSIFY_AUTO_REPLY,
		    "out-of-office subject: ", subj);
	if (to_bounce_address(h))
		return result(r, CLASSIFY_BOUNCE, "sent to a bounce address",
		    (struct span){ "", 0 });
	if ((daemon || null_sender(rp)) && subj.n > 0) {
		for (const char *const *b = bounce_subjects; *b; b++)
			if (span_ci_find(subj, *b) >= 0)
				return result(r, CLASSIFY_BOUNCE,
				    "bounce subject: ", subj);
	}
	if (null_sender(rp))
		return result(r, CLASSIFY_AUTO_REPLY, "null sender",
		    (struct span){ "", 0 });
	if (daemon)
		return result(r, CLASSIFY_AUTO_REPLY, "sender: ", local);
	if (local.n > 0 && (span_any_prefix(local, noreply)))
		return result(r, CLASSIFY_AUTO_REPLY, "sender: ", local);
	if (local.n > 0)
		return result(r, CLASSIFY_REPLY, "no sign of automatic mail",
		    (struct span){ "", 0 });
	return result(r, CLASSIFY_UNKNOWN, from.p ? "no address in From" :
	    "no From", (struct span){ "", 0 });
}

void
classify_mail(const struct classify_headers *h, struct classify_result *r)
{
	memset(r, 0, sizeof *r);
	(void)decide(h, r);
}

const char *
classify_kind_name(enum classify_kind kind)
{
	switch (kind) {
	case CLASSIFY_UNKNOWN: return "unknown";
	case CLASSIFY_REPLY: return "reply";
	case CLASSIFY_AUTO_REPLY: return "auto_reply";
	case CLASSIFY_BOUNCE: return "bounce";
	}
	return "unknown";
}

/* ---- delivery-status ---- */

struct dsn_group {
	struct classify_dsn d;
	bool any;               /* a recipient field, Status or Action seen */
};

/* "d.ddd.ddd" with class 2, 4 or 5, then a blank, '(' or the end. */
static bool
status_ok(struct span s, size_t *len_r)
{
	size_t k = 0, digits;

	if (s.n < 5 || (s.p[0] != '2' && s.p[0] != '4' && s.p[0] != '5') ||
	    s.p[1] != '.')
		return false;
	k = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; k < s.n && s.p[k] >= '0' && s.p[k] <= '9' &&
		    digits < 4; k++)
			digits++;
		if (digits == 0 || digits > 3)
			return false;
		if (part == 0) {
			if (k >= s.n || s.p[k] != '.')
				return false;
			k++;
		}
	}
	if (k < s.n && !is_sp(s.p[k]) && s.p[k] != '(' && s.p[k] != ';')
		return false;
	*len_r = k;
	return true;
}

/* "rfc822; <Ann@X.test>" → "ann@x.test" into out[LIMIT_EMAIL + 1], or "". */
static void
dsn_address(struct span v, bool cut, char *out)
{
	const char *semi = memchr(v.p, ';', v.n);
	size_t k = 0;

	out[0] = '\0';
	if (cut)
		return;
	if (semi != NULL)
		v = (struct span){ semi + 1, v.n - (size_t)(semi + 1 - v.p) };
	v = strip(v);
	if (v.n >= 2 && v.p[0] == '<' && v.p[v.n - 1] == '>')
		v = strip((struct span){ v.p + 1, v.n - 2 });
	if (v.n == 0 || v.n > LIMIT_EMAIL || memchr(v.p, '@', v.n) == NULL)
		return;
	for (size_t i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return;
		out[k++] = span_lower((char)c);
	}
	out[k] = '\0';
}

/* One unfolded field into the group. */
static void
dsn_field(struct dsn_group *g, struct span name, struct span v, bool cut)
{
	v = strip(v);
	if (span_ci_eq(name, "final-recipient")) {
		dsn_address(v, cut, g->d.recipient);
		g->any = true;
	} else if (span_ci_eq(name, "original-recipient")) {
		dsn_address(v, cut, g->d.original_recipient);
		g->any = true;
	} else if (span_ci_eq(name, "status")) {
		size_t n;

		if (status_ok(v, &n) && n < sizeof g->d.status) {
			memcpy(g->d.status, v.p, n);
			g->d.status[n] = '\0';
		}
		g->any = true;
	} else if (span_ci_eq(name, "action")) {
		struct span w = first_word(v);
		size_t n = w.n < sizeof g->d.action - 1 ? w.n :
		    sizeof g->d.action - 1;

		for (size_t i = 0; i < n; i++)
			g->d.action[i] = span_lower(w.p[i]);
		g->d.action[n] = '\0';
		g->any = true;
	} else if (span_ci_eq(name, "diagnostic-code")) {
		const char *semi = memchr(v.p, ';', v.n);
		size_t n, k = 0;

		if (semi != NULL)
			v = strip((struct span){ semi + 1,
			    v.n - (size_t)(semi + 1 - v.p) });
		n = v.n < DSN_DIAG_MAX ? v.n : DSN_DIAG_MAX;
		/* don't end inside a UTF-8 sequence */
		while (n > 0 && n < v.n &&
		    ((unsigned char)v.p[n] & 0xc0) == 0x80)
			n--;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v.p[i];
			g->d.diagnostic[k++] = c < 0x20 || c == 0x7f ? ' ' :
			    (char)c;
		}
		g->d.diagnostic[k] = '\0';
	}
}

static int
rank(const struct dsn_group *g)
{
	if (!g->any || (g->d.status[0] == '\0' && g->d.action[0] == '\0'))
		return 0;
	if (strcmp(g->d.action, "failed") == 0)
		return 3;
	if (strcmp(g->d.action, "delayed") == 0)
		return 2;
	return 1;
}

/* Keeps g in *best when it ranks higher; clears g. */
static void
dsn_close(struct dsn_group *g, struct dsn_group *best, int *best_rank)
{
	int rk = rank(g);

	if (rk > *best_rank) {
		*best = *g;
		*best_rank = rk;
	}
	memset(g, 0, sizeof *g);
}

int
classify_mailbox(const char *value, char *out, size_t size)
{
	struct span m;

	if (size == 0)
		return -1;
	out[0] = '\0';
	if (value == NULL)
		return -1;
	m = strip(mailbox(strip((struct span){ value,
	    strnlen(value, LIMIT_CLASSIFY_VALUE) })));
	if (m.n == 0 || m.n >= size)
		return -1;
	memcpy(out, m.p, m.n);
	out[m.n] = '\0';
	return 0;
}

int
classify_dsn_parse(const char *text, size_t len, struct classify_dsn *dsn_r,
    struct err *err)
{
	struct dsn_group g, best;
	char field[DSN_FIELD_MAX];
	char name[32];
	size_t flen = 0, nlen = 0, off = 0;
	bool in_field = false, cut = false;
	int best_rank = 0;

	memset(dsn_r, 0, sizeof *dsn_r);
	if (len > LIMIT_DSN_TEXT)
		return err_set(err, false,
		    "delivery-status part is larger than %d bytes",
		    LIMIT_DSN_TEXT);
	memset(&g, 0, sizeof g);
	memset(&best, 0, sizeof best);
	while (off <= len) {
		const char *nl = off < len ?
		    memchr(text + off, '\n', len - off) : NULL;
		size_t end = nl ? (size_t)(nl - text) : len;
		struct span line = { text + off, end - off };
		bool cont, blank_line;

		if (line.n > 0 && line.p[line.n - 1] == '\r')
			line.n--;
		cont = line.n > 0 && (line.p[0] == ' ' || line.p[0] == '\t');
		blank_line = strip(line).n == 0;
		if (in_field && cont && !blank_line) {
			struct span t = strip(line);

			/* unfold with one space */
			if (flen + 1 + t.n <= sizeof field) {
				field[flen++] = ' ';
				memcpy(field + flen, t.p, t.n);
				flen += t.n;
			} else {
				cut = true;
			}
		} else {
			if (in_field)
				dsn_field(&g, (struct span){ name, nlen },
				    (struct span){ field, flen }, cut);
			in_field = false;
			if (blank_line || off >= len) {
				dsn_close(&g, &best, &best_rank);
			} else {
				size_t k = 0;

				while (k < line.n && k < sizeof name &&
				    ((line.p[k] >= 'a' && line.p[k] <= 'z') ||
				    (line.p[k] >= 'A' && line.p[k] <= 'Z') ||
				    (line.p[k] >= '0' && line.p[k] <= '9') ||
				    line.p[k] == '-'))
					k++;
				nlen = k;
				while (k < line.n && (line.p[k] == ' ' ||
				    line.p[k] == '\t'))
					k++;
				if (nlen > 0 && nlen < sizeof name &&
				    k < line.n && line.p[k] == ':') {
					struct span nm = { line.p, nlen };

					/* a second recipient without a blank
					 * line between */
					if ((span_ci_eq(nm, "final-recipient") &&
					    (g.d.recipient[0] || g.d.status[0])) ||
					    (span_ci_eq(nm, "original-recipient") &&
					    g.d.original_recipient[0]))
						dsn_close(&g, &best, &best_rank);
					memcpy(name, line.p, nlen);
					k++;
					flen = line.n - k < sizeof field ?
					    line.n - k : sizeof field;
					cut = line.n - k > sizeof field;
					memcpy(field, line.p + k, flen);
					in_field = true;
				}
			}
		}
		if (nl == NULL)
			break;
		off = end + 1;
	}
	if (in_field)
		dsn_field(&g, (struct span){ name, nlen },
		    (struct span){ field, flen }, cut);
	dsn_close(&g, &best, &best_rank);
	if (best_rank == 0)
		return 0;
	*dsn_r = best.d;
	if (dsn_r->recipient[0] == '\0')
		memcpy(dsn_r->recipient, dsn_r->original_recipient,
		    sizeof dsn_r->recipient);
	if (dsn_r->status[0] != '\0') {
		dsn_r->hard = dsn_r->status[0] == '5';
		dsn_r->soft = dsn_r->status[0] == '4';
	} else {
		dsn_r->hard = strcmp(dsn_r->action, "failed") == 0;
		dsn_r->soft = strcmp(dsn_r->action, "delayed") == 0;
	}
	return 1;
}
