/* mailer/parse.c: raw inbound message → struct parsed_mail (parse.h).
 *
 * Owns: the pre-scan that bounds what libetpan may recurse into, the
 * header extraction (ours, on the raw header block), RFC 2047 words,
 * charset conversion (iconv), HTML→text (libxml2), and the walk of
 * libetpan's struct mailmime tree with depth and part caps. Limits: the
 * LIMIT_PARSE_*, LIMIT_MAIL_SIZE and LIMIT_TRIM_INPUT (common/limits.h). */
#include "mailer/parse.h"

#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <libxml/HTMLparser.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/utf8.h"


/* ---- UTF-8 ------------------------------------------------------------ */

/* -1: invalid; 0: ASCII only; 1: valid with multi-byte sequences. */
static int
utf8_check(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	int multi = 0;

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_seq(p + i, n - i, &cp);

		if (l == 0)
			return -1;
		multi |= l > 1;
		i += l;
	}
	return multi;
}

static bool
is_bidi(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	    cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

static int
put_cp(struct buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_add(b, u, n);
}

/* Appends s[n] to b as valid UTF-8: invalid bytes become U+FFFD, NULs go.
 * CRLF becomes LF. name: also drop C0/C1 controls (tab, CR, LF become a space) and bidi
 * characters. */
static int
utf8_clean(struct buf *b, const char *s, size_t n, bool name)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_seq(p + i, n - i, &cp);

		if (l == 0) {
			cp = 0xfffd;
			l = 1;
		}
		i += l;
		if (cp == 0 || (cp == '\r' && i < n && p[i] == '\n'))
			continue;       /* NULs go; CRLF becomes LF */
		if (name) {
			if (cp == '\t' || cp == '\r' || cp == '\n')
				cp = ' ';
			else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ||
			    is_bidi(cp))
				continue;
		}
		if (put_cp(b, cp) < 0)
			return -1;
	}
	return 0;
}

/* Windows-1252's 0x80-0x9f (0: undefined, kept as the C1 code point). */
static const uint16_t cp1252_c1[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static int
from_cp1252(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp = c;

		if (c >= 0x80 && c < 0xa0 && cp1252_c1[c - 0x80] != 0)
			cp = cp1252_c1[c - 0x80];
		if (put_cp(b, cp) < 0)
			return -1;
	}
	return 0;
}

static bool
latin1_label(const char *cs)
{
	static const char *const names[] = { "iso-8859-1", "iso8859-1",
		"latin1", "latin-1", "l1", "iso_8859-1", "windows-1252",
		"cp1252", "us-ascii", "ascii", "us", NULL };

	for (size_t i = 0; names[i]; i++)
		if (strcasecmp(cs, names[i]) == 0)
			return true;
	return false;
}

static bool
utf8_label(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0;
}

/* iconv from cs into b; invalid input bytes become U+FFFD. 0 ok, 1 cs
 * unknown to iconv, -1 over b's cap. */
static int
iconv_to(struct buf *b, const char *cs, const char *s, size_t n)
{
	iconv_t cd = iconv_open("UTF-8", cs);
	char out[4096];
	char *in = (char *)s;     /* iconv's prototype; it does not write */
	size_t left = n;
	int ret = 0;

	if (cd == (iconv_t)-1)
		return 1;
	while (left > 0) {
		char *o = out;
		size_t ol = sizeof out;
		size_t r = iconv(cd, &in, &left, &o, &ol);
		int e = errno;

		if (buf_add(b, out, (size_t)(o - out)) < 0) {
			ret = -1;
			break;
		}
		if (r != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		/* EILSEQ or EINVAL (cut at the end): one byte becomes U+FFFD */
		if (buf_add(b, "\xef\xbf\xbd", 3) < 0) {
			ret = -1;
			break;
		}
		in++, left--;
	}
	if (ret == 0) {           /* flush a stateful encoding's shift */
		char *o = out;
		size_t ol = sizeof out;

		(void)iconv(cd, NULL, NULL, &o, &ol);
		if (buf_add(b, out, (size_t)(o - out)) < 0)
			ret = -1;
	}
	iconv_close(cd);
	return ret;
}

/* Bytes in charset cs (NULL: undeclared) appended to b as UTF-8, not yet
 * cleaned. Valid UTF-8 with multi-byte sequences is taken as UTF-8 even
 * under a Latin-1 label (mislabelled); invalid UTF-8 under a UTF-8, ASCII
 * or unknown label, or none, is read as Windows-1252. -1: over the cap. */
static int
to_utf8(struct buf *b, const char *cs, const char *s, size_t n)
{
	int u = utf8_check(s, n);
	int r;

	if (cs != NULL && cs[0] == '\0')
		cs = NULL;
	if (u == 0 || (u == 1 && (cs == NULL || utf8_label(cs) ||
	    latin1_label(cs))))
		return buf_add(b, s, n);
	if (cs == NULL || utf8_label(cs) || latin1_label(cs))
		return from_cp1252(b, s, n);
	r = iconv_to(b, cs, s, n);
	if (r == 1)
		return u == 1 ? buf_add(b, s, n) : from_cp1252(b, s, n);
	return r;
}

/* to_utf8() then utf8_clean() into a new string; NULL when over cap. */
static char *
decode_text(const char *cs, const char *s, size_t n, bool name, size_t cap,
    size_t *len_r)
{
	struct buf raw, out;
	char *ret = NULL;

	buf_init(&raw, cap);
	buf_init(&out, cap);
	if (to_utf8(&raw, cs, s, n) == 0 &&
	    utf8_clean(&out, raw.data ? raw.data : "", raw.len, name) == 0)
		ret = buf_steal(&out, len_r);
	buf_fini(&raw);
	buf_fini(&out);
	return ret;
}

/* ---- RFC 2047 --------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* One encoded word at s[0..n): "=?cs?Q|B?text?=". Its length, or 0 when
 * s does not start one. Decoded UTF-8 goes to b. */
static size_t
encoded_word(struct buf *b, const char *s, size_t n)
{
	char cs[64], dec[256];
	size_t i = 2, cl = 0, dl = 0, start, end;
	char enc;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	while (i < n && s[i] != '?' && cl < sizeof cs - 1) {
		if (s[i] == ' ' || s[i] == '\t')
			return 0;
		cs[cl++] = s[i++];
	}
	cs[cl] = '\0';
	if (i + 3 > n || s[i] != '?' || cl == 0)
		return 0;
	enc = s[i + 1];
	if (s[i + 2] != '?' || (enc != 'q' && enc != 'Q' && enc != 'b' &&
	    enc != 'B'))
		return 0;
	start = i + 3;
	for (end = start; end + 1 < n; end++) {
		if (s[end] == ' ' || s[end] == '\t' || s[end] == '\r' ||
		    s[end] == '\n' || end - start > sizeof dec)
			return 0;
		if (s[end] == '?' && s[end + 1] == '=')
			break;
	}
	if (end + 1 >= n)
		return 0;
	{
		char *star = strchr(cs, '*');      /* RFC 2231 language */

		if (star != NULL)
			*star = '\0';
	}
	if (enc == 'q' || enc == 'Q') {
		for (size_t k = start; k < end && dl < sizeof dec; k++) {
			if (s[k] == '_') {
				dec[dl++] = ' ';
			} else if (s[k] == '=' && k + 2 < end &&
			    hexval(s[k + 1]) >= 0 && hexval(s[k + 2]) >= 0) {
				dec[dl++] = (char)(hexval(s[k + 1]) << 4 |
				    hexval(s[k + 2]));
				k += 2;
			} else {
				dec[dl++] = s[k];
			}
		}
	} else {
		uint32_t acc = 0;
		int bits = 0;

		for (size_t k = start; k < end && dl < sizeof dec; k++) {
			int v = b64val((unsigned char)s[k]);

			if (v < 0)
				continue;
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				dec[dl++] = (char)(acc >> bits & 0xff);
			}
		}
	}
	if (to_utf8(b, cs, dec, dl) < 0)
		return 0;
	return end + 2;
}

static bool
all_ws(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (s[k] != ' ' && s[k] != '\t')
			return false;
	return true;
}

/* Unfolded header value → UTF-8 with encoded words decoded (white space
 * between two of them dropped), cleaned for display (name rules). NULL
 * only when over the cap. */
static char *
decode_header(const char *s, size_t n)
{
	struct buf raw, out, word;
	size_t i = 0, lit = 0;
	bool prev_word = false;
	char *ret = NULL;

	buf_init(&raw, LIMIT_PARSE_HEADER * 4);
	buf_init(&out, LIMIT_PARSE_HEADER * 4);
	buf_init(&word, 1024);
	while (i < n) {
		size_t w;

		if (s[i] != '=' || i + 1 >= n || s[i + 1] != '?') {
			i++;
			continue;
		}
		buf_reset(&word);
		w = encoded_word(&word, s + i, n - i);
		if (w == 0) {
			i++;
			continue;
		}
		if (!(prev_word && all_ws(s + lit, i - lit)) &&
		    to_utf8(&raw, NULL, s + lit, i - lit) < 0)
			goto out;
		if (buf_add(&raw, buf_str(&word), word.len) < 0)
			goto out;
		i += w;
		lit = i;
		prev_word = true;
	}
	if (to_utf8(&raw, NULL, s + lit, n - lit) < 0)
		goto out;
	if (utf8_clean(&out, buf_str(&raw), raw.len, true) < 0)
		goto out;
	ret = buf_steal(&out, NULL);
out:
	buf_fini(&raw);
	buf_fini(&out);
	buf_fini(&word);
	return ret;
}

/* ---- headers ---------------------------------------------------------- */

/* Length of the header block (up to and including the empty line, or all
 * of raw when there is none). */
static size_t
header_block_len(const char *raw, size_t len, size_t *body_off_r)
{
	for (size_t i = 0; i < len; i++) {
		if (raw[i] != '\n')
			continue;
		if (i + 1 < len && raw[i + 1] == '\n') {
			*body_off_r = i + 2;
			return i + 1;
		}
		if (i + 2 < len && raw[i + 1] == '\r' && raw[i + 2] == '\n') {
			*body_off_r = i + 3;
			return i + 1;
		}
	}
	*body_off_r = len;
	return len;
}

size_t
parse_body_offset(const char *raw, size_t len)
{
	size_t off;

	(void)header_block_len(raw, len, &off);
	return off;
}

/* The first "name:" header of h[n], unfolded (CR and LF dropped), as a new
 * string (raw bytes), or NULL. */
static char *
header_get(const char *h, size_t n, const char *name, size_t *len_r)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n;) {
		size_t e = i;

		while (e < n && h[e] != '\n')
			e++;
		if (e - i > nl && strncasecmp(h + i, name, nl) == 0) {
			size_t k = i + nl;

			while (k < e && (h[k] == ' ' || h[k] == '\t'))
				k++;
			if (k < e && h[k] == ':') {
				struct buf v;

				buf_init(&v, LIMIT_PARSE_HEADER);
				k++;
				for (;;) {
					for (; k < e; k++) {
						if (h[k] == '\r')
							continue;
						if (buf_addc(&v, h[k]) < 0)
							break;
					}
					/* folded continuation lines */
					if (e + 1 < n && (h[e + 1] == ' ' ||
					    h[e + 1] == '\t')) {
						k = e + 1;
						e = k;
						while (e < n && h[e] != '\n')
							e++;
						continue;
					}
					break;
				}
				/* trim */
				{
					size_t s = 0, l = v.len;
					const char *d = buf_str(&v);
					char *r;

					while (s < l && (d[s] == ' ' ||
					    d[s] == '\t'))
						s++;
					while (l > s && (d[l - 1] == ' ' ||
					    d[l - 1] == '\t'))
						l--;
					r = xmalloc(l - s + 1);
					memcpy(r, d + s, l - s);
					r[l - s] = '\0';
					*len_r = l - s;
					buf_fini(&v);
					return r;
				}
			}
		}
		i = e + 1;
	}
	return NULL;
}

/* The header as display text (RFC 2047 decoded) or as plain cleaned UTF-8. */
static char *
header_text(const char *h, size_t n, const char *name, bool words)
{
	size_t l = 0;
	char *raw = header_get(h, n, name, &l);
	char *ret;

	if (raw == NULL)
		return NULL;
	if (words)
		ret = decode_header(raw, l);
	else
		ret = decode_text(NULL, raw, l, true, LIMIT_PARSE_HEADER * 4,
		    NULL);
	free(raw);
	return ret != NULL ? ret : xstrdup("");
}

/* ---- pre-scan --------------------------------------------------------- */

/* Boundaries declared anywhere, as a hash set: a delimiter line is
 * "--" + a boundary + only white space (what libetpan 1.9.4 takes as
 * one; "--b junk" it does not), so each line costs one lookup however
 * many boundaries there are. */
#define PRESCAN_SLOTS 512                   /* > 2 * LIMIT_PARSE_PARTS */

struct prescan {
	struct {
		uint64_t hash;
		size_t len;
		const char *s;              /* into raw */
	} slot[PRESCAN_SLOTS];
	size_t nb;
};

static uint64_t
fnv1a(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* 1: added or already there; 0: the set is full. */
static int
bound_add(struct prescan *ps, const char *s, size_t n)
{
	uint64_t h = fnv1a(s, n);

	for (size_t i = h % PRESCAN_SLOTS;; i = (i + 1) % PRESCAN_SLOTS) {
		if (ps->slot[i].s == NULL) {
			if (ps->nb >= LIMIT_PARSE_PARTS)
				return 0;
			ps->slot[i].hash = h, ps->slot[i].len = n;
			ps->slot[i].s = s;
			ps->nb++;
			return 1;
		}
		if (ps->slot[i].hash == h && ps->slot[i].len == n &&
		    memcmp(ps->slot[i].s, s, n) == 0)
			return 1;
	}
}

static bool
bound_has(const struct prescan *ps, const char *s, size_t n)
{
	uint64_t h = fnv1a(s, n);

	for (size_t i = h % PRESCAN_SLOTS; ps->slot[i].s != NULL;
	    i = (i + 1) % PRESCAN_SLOTS)
		if (ps->slot[i].hash == h && ps->slot[i].len == n &&
		    memcmp(ps->slot[i].s, s, n) == 0)
			return true;
	return false;
}

/* Bounds what libetpan will recurse into and allocate: every nesting
 * level needs a Content-Type line (multipart or message/rfc822; the
 * digest default adds one level at most), and every part a delimiter
 * line of a declared boundary. More than LIMIT_PARSE_PARTS of either, or
 * more boundaries than that, is refused. Linear in len. */
static int
prescan(const char *raw, size_t len, struct err *err)
{
	struct prescan *ps = xcalloc(1, sizeof *ps);
	size_t ct = 0, delims = 0, dashy = 0;
	int ret = -1;

	for (size_t i = 0; i < len;) {
		const char *line = raw + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t l = nl ? (size_t)(nl - line) : len - i;

		i += l + 1;
		if (l >= 12 && strncasecmp(line, "content-type", 12) == 0) {
			size_t k = 12;

			while (k < l && (line[k] == ' ' || line[k] == '\t'))
				k++;
			if (k < l && line[k] == ':' && ++ct > LIMIT_PARSE_PARTS) {
				err_set(err, false, "more than %d MIME parts",
				    LIMIT_PARSE_PARTS);
				goto out;
			}
		}
		/* boundary= anywhere on a line (folded parameters) */
		for (size_t k = 0; k + 9 <= l; k++) {
			size_t s, e;

			if ((line[k] | 0x20) != 'b' ||
			    strncasecmp(line + k, "boundary", 8) != 0)
				continue;
			s = k + 8;
			while (s < l && (line[s] == ' ' || line[s] == '\t'))
				s++;
			if (s >= l || line[s] != '=')
				continue;
			s++;
			while (s < l && (line[s] == ' ' || line[s] == '\t'))
				s++;
			if (s < l && line[s] == '"') {
				e = ++s;
				while (e < l && line[e] != '"')
					e++;
			} else {
				e = s;
				while (e < l && line[e] != ';' && line[e] != ' ' &&
				    line[e] != '\t' && line[e] != '\r')
					e++;
			}
			if (e > s && bound_add(ps, line + s, e - s) == 0) {
				err_set(err, false, "more than %d MIME boundaries",
				    LIMIT_PARSE_PARTS);
				goto out;
			}
			k = e > k ? e - 1 : k;
		}
		if (l >= 3 && line[0] == '-' && line[1] == '-') {
			size_t e = l;

			while (e > 2 && (line[e - 1] == ' ' || line[e - 1] == '\t' ||
			    line[e - 1] == '\r'))
				e--;
			/* A safety net for boundaries libetpan reads other
			 * than we do (quoted-pair escapes): any "--token"
			 * line counts towards a looser cap. */
			if (e > 2 && memchr(line + 2, ' ', e - 2) == NULL &&
			    memchr(line + 2, '\t', e - 2) == NULL &&
			    ++dashy > LIMIT_PARSE_DASH_LINES) {
				err_set(err, false, "more than %d lines that may "
				    "start MIME parts", LIMIT_PARSE_DASH_LINES);
				goto out;
			}
			if (bound_has(ps, line + 2, e - 2) &&
			    ++delims > LIMIT_PARSE_PARTS) {
				err_set(err, false, "more than %d MIME parts",
				    LIMIT_PARSE_PARTS);
				goto out;
			}
		}
	}
	ret = 0;
out:
	free(ps);
	return ret;
}

/* ---- HTML → text (libxml2's HTML parser) ------------------------------ */

/* What the walk writes: whitespace collapsed as a browser would, block
 * elements on their own lines, at most one blank line in a row,
 * blockquotes as "> " lines (so trimming sees them as quotes). Nothing of
 * head, script, style, templates, frames or objects survives; images and
 * links leave only their text (no remote content, no URLs). */
struct h2t {
	struct buf *out;
	unsigned quote;           /* blockquote depth */
	unsigned pre;             /* inside <pre> */
	bool bol;                 /* at the beginning of a line */
	int nl;                   /* newlines just written (max 2) */
	bool space;               /* a collapsed space is pending */
	bool fail;
};

static bool
h2t_skip(const char *name)
{
	static const char *const skip[] = { "head", "script", "style", "title",
		"noscript", "template", "iframe", "object", "embed", "svg",
		"math", "select", "button" };

	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
		if (strcmp(name, skip[i]) == 0)
			return true;
	return false;
}

static bool
h2t_block(const char *name)
{
	static const char *const block[] = { "p", "div", "br", "tr", "li",
		"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table",
		"ul", "ol", "pre", "section", "article", "header", "footer",
		"dl", "dt", "dd", "address", "center", "body", "html" };

	for (size_t i = 0; i < sizeof block / sizeof block[0]; i++)
		if (strcmp(name, block[i]) == 0)
			return true;
	return false;
}

static void
h2t_put(struct h2t *h, const char *p, size_t n)
{
	if (!h->fail && buf_add(h->out, p, n) < 0)
		h->fail = true;
}

/* Ends the current line (if any text is on it). */
static void
h2t_bol(struct h2t *h)
{
	h->space = false;
	if (h->bol)
		return;
	h2t_put(h, "\n", 1);
	h->bol = true;
	h->nl = 1;
}

/* A paragraph break: one blank line (none at the very start). */
static void
h2t_para(struct h2t *h)
{
	h2t_bol(h);
	if (h->nl < 2 && h->out->len > 0) {
		h2t_put(h, "\n", 1);
		h->nl = 2;
	}
}

static bool
h2t_is_para(const char *name)
{
	return strcmp(name, "p") == 0 || strcmp(name, "blockquote") == 0 ||
	    (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2]);
}

static void
h2t_text(struct h2t *h, const char *t)
{
	for (; *t; t++) {
		unsigned char c = (unsigned char)*t;

		if (!h->pre && (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '\f')) {
			if (!h->bol)
				h->space = true;
			continue;
		}
		if (h->pre && c == '\n') {
			h2t_put(h, "\n", 1);
			h->bol = true;
			h->nl = 1;
			continue;
		}
		if (h->bol) {
			for (unsigned q = 0; q < h->quote && q < 16; q++)
				h2t_put(h, "> ", 2);
			h->bol = false;
		} else if (h->space) {
			h2t_put(h, " ", 1);
		}
		h->space = false;
		h->nl = 0;
		h2t_put(h, t, 1);
	}
}

static void
h2t_leave(struct h2t *h, const char *name)
{
	if (strcmp(name, "blockquote") == 0 && h->quote > 0)
		h->quote--;
	if (strcmp(name, "pre") == 0 && h->pre > 0)
		h->pre--;
	if (strcmp(name, "br") == 0)
		return;                 /* one line break, written on entry */
	if (h2t_is_para(name))
		h2t_para(h);
	else if (h2t_block(name))
		h2t_bol(h);
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init(void)
{
	xmlInitParser();
}

static int
html_to_text(struct buf *out, const char *s, size_t n)
{
	struct h2t h = { .out = out, .bol = true, .nl = 2 };

	htmlDocPtr doc;
	xmlNodePtr cur;

	if (n > (size_t)INT_MAX)
		return -1;
	pthread_once(&xml_once, xml_init);
	/* No network, no error output; recover from broken markup (mail
	 * HTML mostly is). The text is UTF-8 already (decode_text). */
	doc = htmlReadMemory(s, (int)n, NULL, "UTF-8", HTML_PARSE_RECOVER |
	    HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (doc == NULL)
		return 0;                           /* no text at all */
	cur = xmlDocGetRootElement(doc);
	while (cur != NULL && !h.fail) {
		bool descend = false;
		const char *name = cur->type == XML_ELEMENT_NODE && cur->name ?
		    (const char *)cur->name : NULL;

		if (name != NULL) {
			if (!h2t_skip(name)) {
				if (strcmp(name, "br") == 0) {
					h2t_put(&h, "\n", 1);  /* not collapsed */
					h.bol = true;
					h.space = false;
					h.nl = h.nl < 2 ? h.nl + 1 : 2;
				} else if (strcmp(name, "td") == 0 ||
				    strcmp(name, "th") == 0) {
					h.space = !h.bol;   /* cells apart */
				} else if (h2t_is_para(name)) {
					h2t_para(&h);
				} else if (h2t_block(name)) {
					h2t_bol(&h);
				}
				if (strcmp(name, "blockquote") == 0)
					h.quote++;
				if (strcmp(name, "pre") == 0)
					h.pre++;
				descend = cur->children != NULL;
				if (!descend)
					h2t_leave(&h, name);
			}
		} else if ((cur->type == XML_TEXT_NODE ||
		    cur->type == XML_CDATA_SECTION_NODE) && cur->content) {
			h2t_text(&h, (const char *)cur->content);
		}
		if (descend) {
			cur = cur->children;
			continue;
		}
		/* up until a node with a next sibling, leaving elements */
		while (cur != NULL && cur->next == NULL) {
			cur = cur->parent;
			if (cur == NULL || cur->type != XML_ELEMENT_NODE) {
				cur = NULL;
				break;
			}
			h2t_leave(&h, (const char *)cur->name);
		}
		if (cur != NULL)
			cur = cur->next;
	}
	xmlFreeDoc(doc);
	/* no trailing blank lines */
	while (out->len > 0 && (out->data[out->len - 1] == '\n' ||
	    out->data[out->len - 1] == ' '))
		out->data[--out->len] = '\0';
	return h.fail ? -1 : 0;
}

/* ---- the MIME walk ---------------------------------------------------- */

struct walk {
	struct parsed_mail *pm;
	struct buf att;           /* struct parsed_attachment[] */
	bool have_html;
	char *html;               /* decoded UTF-8 of the first text/html */
	size_t html_len;
	struct err *err;
};

static void
content_type_str(const struct mailmime_content *ct, char *out, size_t size)
{
	const char *type = "application";
	const char *sub = ct && ct->ct_subtype ? ct->ct_subtype : "octet-stream";

	if (ct == NULL || ct->ct_type == NULL) {
		snprintf(out, size, "text/plain");
		return;
	}
	if (ct->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE &&
	    ct->ct_type->tp_data.tp_discrete_type) {
		const struct mailmime_discrete_type *d =
		    ct->ct_type->tp_data.tp_discrete_type;

		switch (d->dt_type) {
		case MAILMIME_DISCRETE_TYPE_TEXT: type = "text"; break;
		case MAILMIME_DISCRETE_TYPE_IMAGE: type = "image"; break;
		case MAILMIME_DISCRETE_TYPE_AUDIO: type = "audio"; break;
		case MAILMIME_DISCRETE_TYPE_VIDEO: type = "video"; break;
		case MAILMIME_DISCRETE_TYPE_APPLICATION: type = "application"; break;
		case MAILMIME_DISCRETE_TYPE_EXTENSION:
			type = d->dt_extension ? d->dt_extension : "x-unknown";
			break;
		}
	} else if (ct->ct_type->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE &&
	    ct->ct_type->tp_data.tp_composite_type) {
		const struct mailmime_composite_type *c =
		    ct->ct_type->tp_data.tp_composite_type;

		switch (c->ct_type) {
		case MAILMIME_COMPOSITE_TYPE_MESSAGE: type = "message"; break;
		case MAILMIME_COMPOSITE_TYPE_MULTIPART: type = "multipart"; break;
		case MAILMIME_COMPOSITE_TYPE_EXTENSION:
			type = c->ct_token ? c->ct_token : "x-unknown";
			break;
		}
	}
	snprintf(out, size, "%s/%s", type, sub);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
		else if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '"' || *p == '\\')
			*p = '?';
}

/* Transfer-decodes a single part's body: 0 and *out_r (free with
 * mailmime_decoded_part_free) or -1. */
static int
part_decode(const struct mailmime *m, const struct mailmime_single_fields *sf,
    char **out_r, size_t *len_r)
{
	const struct mailmime_data *d = m->mm_data.mm_single;
	int enc = MAILMIME_MECHANISM_8BIT;
	size_t idx = 0;

	*out_r = NULL;
	*len_r = 0;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return -1;
	if (d->dt_encoded && sf->fld_encoding != NULL)
		enc = sf->fld_encoding->enc_type;
	if (enc == MAILMIME_MECHANISM_TOKEN || enc == MAILMIME_MECHANISM_ERROR)
		enc = MAILMIME_MECHANISM_8BIT;
	if (mailmime_part_parse(d->dt_data.dt_text.dt_data,
	        d->dt_data.dt_text.dt_length, &idx, enc, out_r, len_r) !=
	    MAILIMF_NO_ERROR) {
		*out_r = NULL;
		return -1;
	}
	return 0;
}

/* RFC 2231 parameter base* or base*0, base*1… (extended segments
 * percent-encoded, the first with charset'language'), decoded to clean
 * UTF-8; NULL when absent. prm[n] come from Content-Disposition and
 * Content-Type (libetpan keeps them undecoded). */
#define RFC2231_SEGMENTS 32

static char *
rfc2231_param(struct mailmime_parameter *const *prm, size_t n,
    const char *base)
{
	struct buf raw;
	char cs[64] = "";
	size_t bl = strlen(base);
	bool any = false;
	char *ret = NULL;

	buf_init(&raw, 4096);
	for (int seg = -1; seg < RFC2231_SEGMENTS; seg++) {
		const char *v = NULL;
		bool ext = false;

		for (size_t i = 0; i < n && v == NULL; i++) {
			const char *nm = prm[i]->pa_name;
			char want[32];

			if (nm == NULL || prm[i]->pa_value == NULL ||
			    strncasecmp(nm, base, bl) != 0 || nm[bl] != '*')
				continue;
			if (seg < 0) {            /* base*: one extended value */
				if (nm[bl + 1] == '\0')
					v = prm[i]->pa_value, ext = true;
				continue;
			}
			snprintf(want, sizeof want, "%d", seg);
			if (strncmp(nm + bl + 1, want, strlen(want)) != 0)
				continue;
			nm += bl + 1 + strlen(want);
			if (nm[0] == '\0' || (nm[0] == '*' && nm[1] == '\0'))
				v = prm[i]->pa_value, ext = nm[0] == '*';
		}
		if (v == NULL) {
			if (seg < 0)
				continue;
			break;
		}
		any = true;
		if (ext && (seg <= 0)) {   /* charset'language'value */
			const char *q1 = strchr(v, '\'');
			const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;

			if (q2 != NULL) {
				size_t cl = (size_t)(q1 - v);

				if (cl < sizeof cs) {
					memcpy(cs, v, cl);
					cs[cl] = '\0';
				}
				v = q2 + 1;
			}
		}
		for (; *v; v++) {
			char c = *v;

			if (ext && c == '%' && hexval(v[1]) >= 0 &&
			    hexval(v[2]) >= 0) {
				c = (char)(hexval(v[1]) << 4 | hexval(v[2]));
				v += 2;
			}
			if (buf_addc(&raw, c) < 0)
				goto out;
		}
		if (seg < 0)
			break;
	}
	if (any) {
		ret = decode_text(cs[0] ? cs : NULL, buf_str(&raw), raw.len, true,
		    4 * 4096, NULL);
	}
out:
	buf_fini(&raw);
	return ret;
}

/* The part's file name, decoded (RFC 2231, else RFC 2047), or NULL. */
static char *
part_filename(const struct mailmime *m, const struct mailmime_single_fields *sf)
{
	struct mailmime_parameter *prm[64];
	size_t n = 0;
	const char *plain;
	char *r;

	if (sf->fld_disposition != NULL && sf->fld_disposition->dsp_parms) {
		for (clistiter *it = clist_begin(sf->fld_disposition->dsp_parms);
		    it != NULL && n < 32; it = clist_next(it)) {
			struct mailmime_disposition_parm *dp = clist_content(it);

			if (dp->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER &&
			    dp->pa_data.pa_parameter != NULL)
				prm[n++] = dp->pa_data.pa_parameter;
		}
	}
	r = rfc2231_param(prm, n, "filename");
	if (r != NULL)
		return r;
	n = 0;
	if (m->mm_content_type != NULL && m->mm_content_type->ct_parameters) {
		for (clistiter *it = clist_begin(m->mm_content_type->ct_parameters);
		    it != NULL && n < 64; it = clist_next(it))
			prm[n++] = clist_content(it);
	}
	r = rfc2231_param(prm, n, "name");
	if (r != NULL)
		return r;
	plain = sf->fld_disposition_filename ? sf->fld_disposition_filename :
	    sf->fld_content_name;
	return plain ? decode_header(plain, strlen(plain)) : NULL;
}

/* Takes ownership of filename (decoded, or NULL). */
static int
add_attachment(struct walk *w, char *filename, const char *ctype,
    const char *data, size_t size)
{
	struct parsed_attachment a = { 0 };

	a.filename = filename;
	if (a.filename == NULL)
		a.filename = xstrdup("");
	a.content_type = xstrdup(ctype);
	a.size = size;
	a.data = xmalloc(size + 1);
	if (size > 0)
		memcpy(a.data, data, size);
	if (buf_add(&w->att, &a, sizeof a) < 0) {
		free(a.filename);
		free(a.content_type);
		free(a.data);
		return err_set(w->err, false, "too many attachments");
	}
	w->pm->natt++;
	return 0;
}

static int
walk_single(struct walk *w, struct mailmime *m, bool collect)
{
	struct mailmime_single_fields sf;
	char ctype[128];
	char *fname = NULL;
	bool attach;
	char *dec = NULL;
	size_t dlen = 0;
	int ret = 0;

	mailmime_single_fields_init(&sf, m->mm_mime_fields, m->mm_content_type);
	content_type_str(m->mm_content_type, ctype, sizeof ctype);
	if (!collect)
		return 0;
	fname = part_filename(m, &sf);
	attach = fname != NULL || (sf.fld_disposition != NULL &&
	    sf.fld_disposition->dsp_type != NULL &&
	    sf.fld_disposition->dsp_type->dsp_type ==
	    MAILMIME_DISPOSITION_TYPE_ATTACHMENT);
	if (part_decode(m, &sf, &dec, &dlen) < 0) {
		dec = NULL;
		dlen = 0;
	}
	if (!attach && strcmp(ctype, "text/plain") == 0 &&
	    w->pm->text == NULL) {
		if (dlen > LIMIT_PARSE_TEXT) {
			ret = err_set(w->err, false,
			    "text part of %zu bytes, more than %d", dlen,
			    LIMIT_PARSE_TEXT);
			goto out;
		}
		w->pm->text = decode_text(sf.fld_content_charset, dec ? dec : "",
		    dlen, false, LIMIT_PARSE_TEXT, &w->pm->text_len);
		if (w->pm->text == NULL)
			ret = err_set(w->err, false,
			    "decoded text more than %d bytes", LIMIT_PARSE_TEXT);
	} else if (!attach && strcmp(ctype, "text/html") == 0 && !w->have_html) {
		if (dlen > LIMIT_PARSE_TEXT) {
			ret = err_set(w->err, false,
			    "HTML part of %zu bytes, more than %d", dlen,
			    LIMIT_PARSE_TEXT);
			goto out;
		}
		w->have_html = true;
		w->html = decode_text(sf.fld_content_charset, dec ? dec : "", dlen,
		    false, LIMIT_PARSE_TEXT, &w->html_len);
		if (w->html == NULL)
			ret = err_set(w->err, false,
			    "decoded HTML more than %d bytes", LIMIT_PARSE_TEXT);
	} else if (!attach && (strcmp(ctype, "message/delivery-status") == 0 ||
	    strcmp(ctype, "message/global-delivery-status") == 0)) {
		if (w->pm->dsn == NULL && dlen <= LIMIT_DSN_TEXT) {
			w->pm->dsn = decode_text(NULL, dec ? dec : "", dlen, false,
			    LIMIT_DSN_TEXT * 4, &w->pm->dsn_len);
		}
	} else if (attach || strncmp(ctype, "text/", 5) != 0) {
		ret = add_attachment(w, fname, ctype, dec ? dec : "", dlen);
		fname = NULL;
	}
	/* other inline text parts (the plain twin of an HTML part already
	 * chosen, text/rfc822-headers in bounces) are not the body */
out:
	free(fname);
	if (dec != NULL)
		mailmime_decoded_part_free(dec);
	return ret;
}

/* collect: this part belongs to the mail itself, not to an attached
 * message (whose parts are counted and capped, not collected). */
static int
walk(struct walk *w, struct mailmime *m, unsigned depth, bool collect)
{
	if (m == NULL)
		return 0;
	if (depth > LIMIT_PARSE_DEPTH)
		return err_set(w->err, false, "MIME nesting deeper than %d",
		    LIMIT_PARSE_DEPTH);
	if (++w->pm->nparts > LIMIT_PARSE_PARTS)
		return err_set(w->err, false, "more than %d MIME parts",
		    LIMIT_PARSE_PARTS);
	if (depth > w->pm->depth)
		w->pm->depth = depth;
	switch (m->mm_type) {
	case MAILMIME_SINGLE:
		return walk_single(w, m, collect);
	case MAILMIME_MULTIPLE:
		if (m->mm_data.mm_multipart.mm_mp_list == NULL)
			return 0;
		for (clistiter *it = clist_begin(m->mm_data.mm_multipart.mm_mp_list);
		    it != NULL; it = clist_next(it))
			if (walk(w, clist_content(it), depth + 1, collect) < 0)
				return -1;
		return 0;
	case MAILMIME_MESSAGE:
		if (m->mm_parent == NULL)      /* the mail itself */
			return walk(w, m->mm_data.mm_message.mm_msg_mime, depth,
			    collect);
		if (collect) {
			struct mailmime_single_fields sf;

			mailmime_single_fields_init(&sf, m->mm_mime_fields,
			    m->mm_content_type);
			if (add_attachment(w, part_filename(m, &sf),
			        "message/rfc822",
			        m->mm_body ? m->mm_body->dt_data.dt_text.dt_data : "",
			        m->mm_body ? m->mm_body->dt_data.dt_text.dt_length :
			        0) < 0)
				return -1;
		}
		return walk(w, m->mm_data.mm_message.mm_msg_mime, depth + 1,
		    false);
	}
	return 0;
}

/* ---- the whole message ------------------------------------------------ */

int
parse_mail(const char *raw, size_t len, struct parsed_mail **pm_r,
    struct err *err)
{
	struct parsed_mail *pm = NULL;
	struct mailmime *mime = NULL;
	struct walk w = { 0 };
	size_t hlen, body_off, idx = 0;
	char *padded = NULL;
	int ret = -1;
	enum { PAD = 16 };

	*pm_r = NULL;
	if (len > LIMIT_MAIL_SIZE)
		return err_set(err, false, "message of %zu bytes, more than %d",
		    len, LIMIT_MAIL_SIZE);
	hlen = header_block_len(raw, len, &body_off);
	if (hlen > LIMIT_PARSE_HEADER)
		return err_set(err, false, "header block of %zu bytes, more than %d",
		    hlen, LIMIT_PARSE_HEADER);
	if (hlen == 0 || memchr(raw, ':', hlen) == NULL)
		return err_set(err, false, "no header block");
	if (prescan(raw, len, err) < 0)
		return -1;

	pm = xcalloc(1, sizeof *pm);
	pm->from = header_text(raw, hlen, "from", true);
	pm->to = header_text(raw, hlen, "to", true);
	pm->cc = header_text(raw, hlen, "cc", true);
	pm->delivered_to = header_text(raw, hlen, "delivered-to", false);
	pm->x_original_to = header_text(raw, hlen, "x-original-to", false);
	pm->return_path = header_text(raw, hlen, "return-path", false);
	pm->subject = header_text(raw, hlen, "subject", true);
	pm->message_id = header_text(raw, hlen, "message-id", false);
	pm->in_reply_to = header_text(raw, hlen, "in-reply-to", false);
	pm->references = header_text(raw, hlen, "references", false);
	pm->auto_submitted = header_text(raw, hlen, "auto-submitted", false);
	pm->precedence = header_text(raw, hlen, "precedence", false);
	pm->x_autoreply = header_text(raw, hlen, "x-autoreply", false);
	pm->x_autorespond = header_text(raw, hlen, "x-autorespond", false);
	pm->content_type = header_text(raw, hlen, "content-type", false);

	w.pm = pm;
	w.err = err;
	buf_init(&w.att, LIMIT_PARSE_PARTS * sizeof(struct parsed_attachment));
	/* libetpan 1.9.4 reads past the end of its input (its quoted-printable
	 * decoder at a trailing "=X", found by fuzz_parse): it gets a copy
	 * with zero padding, which its parts then point into. */
	padded = xcalloc(1, len + PAD);
	memcpy(padded, raw, len);
	if (mailmime_parse(padded, len, &idx, &mime) != MAILIMF_NO_ERROR) {
		err_set(err, false, "MIME structure not parseable");
		goto out;
	}
	if (walk(&w, mime, 0, true) < 0)
		goto out;
	if (pm->text == NULL && w.html != NULL) {
		struct buf t;

		buf_init(&t, LIMIT_PARSE_TEXT);
		if (html_to_text(&t, w.html, w.html_len) < 0) {
			buf_fini(&t);
			err_set(err, false, "text of the HTML part more than %d bytes",
			    LIMIT_PARSE_TEXT);
			goto out;
		}
		pm->text = buf_steal(&t, &pm->text_len);
		pm->text_from_html = true;
	}
	if (pm->text == NULL)
		pm->text = xstrdup("");
	ret = 0;
out:
	pm->att = (struct parsed_attachment *)(void *)w.att.data;
	w.att.data = NULL;
	buf_fini(&w.att);
	free(w.html);
	if (mime != NULL)
		mailmime_free(mime);
	free(padded);
	if (ret < 0)
		parsed_mail_free(&pm);
	*pm_r = pm;
	return ret;
}

void
parsed_mail_free(struct parsed_mail **pmp)
{
	struct parsed_mail *pm = *pmp;

	if (pm == NULL)
		return;
	free(pm->from), free(pm->to), free(pm->cc), free(pm->delivered_to);
	free(pm->x_original_to), free(pm->return_path), free(pm->subject);
	free(pm->message_id), free(pm->in_reply_to), free(pm->references);
	free(pm->auto_submitted), free(pm->precedence), free(pm->x_autoreply);
	free(pm->x_autorespond), free(pm->content_type), free(pm->text);
	free(pm->dsn);
	for (size_t i = 0; i < pm->natt; i++) {
		free(pm->att[i].filename);
		free(pm->att[i].content_type);
		free(pm->att[i].data);
	}
	free(pm->att);
	free(pm);
	*pmp = NULL;
}

void
parse_classify_headers(const struct parsed_mail *pm,
    struct classify_headers *h, const char *rcpt[4])
{
	rcpt[0] = pm->to;
	rcpt[1] = pm->cc;
	rcpt[2] = pm->delivered_to;
	rcpt[3] = pm->x_original_to;
	*h = (struct classify_headers){
		.from = pm->from, .return_path = pm->return_path,
		.auto_submitted = pm->auto_submitted,
		.precedence = pm->precedence, .x_autoreply = pm->x_autoreply,
		.x_autorespond = pm->x_autorespond, .subject = pm->subject,
		.content_type = pm->content_type, .rcpt = rcpt, .nrcpt = 4,
	};
}
