/* mailer/trim.c: reply extraction (see trim.h for the rules).
 *
 * The text is split into lines once (an array of offsets, at most
 * LIMIT_TRIM_LINES), then scanned top to bottom; the first line that starts
 * a marker is the cut. Every check looks at one line or a fixed window of
 * following lines, and each of those lines is capped (HEADER_LINE_MAX) or
 * scanned once, so the whole is linear in the input. Only ASCII is folded
 * for case; the non-ASCII words we look for are listed in the forms mail
 * clients write them. */
#include "mailer/trim.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "mailer/span.h"
#include "mailer/template.h"

/* A quote header line longer than this is text, not a header. */
#define HEADER_LINE_MAX 400
/* "On … wrote:" may be wrapped over this many lines. */
#define ATTRIBUTION_LINES 3
/* An Outlook header block is looked for within this many lines. */
#define OUTLOOK_WINDOW 10
/* A mobile signature is a short line. */
#define MOBILE_LINE_MAX 100

struct line {
	size_t off;             /* into the text */
	size_t len;             /* without the LF and a CR before it */
};

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Strips spaces and tabs (and a UTF-8 no-break space) at both ends. */
static struct span
strip(struct span s)
{
	for (;;) {
		if (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
			s.p++, s.n--;
		} else if (s.n >= 2 && (unsigned char)s.p[0] == 0xc2 &&
		    (unsigned char)s.p[1] == 0xa0) {
			s.p += 2, s.n -= 2;
		} else {
			break;
		}
	}
	for (;;) {
		if (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t')) {
			s.n--;
		} else if (s.n >= 2 && (unsigned char)s.p[s.n - 2] == 0xc2 &&
		    (unsigned char)s.p[s.n - 1] == 0xa0) {
			s.n -= 2;
		} else {
			break;
		}
	}
	return s;
}

static bool
is_quoted(struct span s)
{
	s = strip(s);
	return s.n > 0 && s.p[0] == '>';
}

/* Drops any number of leading ">" and the blanks around them. */
static struct span
unquote(struct span s)
{
	s = strip(s);
	while (s.n > 0 && s.p[0] == '>') {
		s.p++, s.n--;
		s = strip(s);
	}
	return s;
}

static bool
blank(struct span s)
{
	return strip(s).n == 0;
}

static bool
any_suffix(struct span s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (span_ci_suffix(s, *list))
			return true;
	return false;
}

struct scan {
	const char *text;
	size_t len;
	struct line *lines;
	size_t n;
};

static struct span
line_at(const struct scan *sc, size_t i)
{
	return (struct span){ sc->text + sc->lines[i].off, sc->lines[i].len };
}

/* Our separator on line i: the mark on the line (after any quoting), or
 * begun at its end and finished at the start of line i + 1 (a client
 * rewrapped it). */
static bool
separator_at(const struct scan *sc, size_t i)
{
	static const char mark[] = TEMPLATE_SEPARATOR_MARK;
	char win[2 * sizeof mark + 2];
	struct span a = unquote(line_at(sc, i)), b;
	size_t an, w = 0, cut;
	long at;

	if (span_ci_find(a, mark) >= 0)
		return true;
	if (i + 1 >= sc->n || a.n == 0)
		return false;
	b = unquote(line_at(sc, i + 1));
	/* The tail of a and the head of b, joined by one space. */
	an = a.n < sizeof mark - 1 ? a.n : sizeof mark - 1;
	memcpy(win, a.p + a.n - an, an);
	w = an;
	cut = w;
	win[w++] = ' ';
	for (size_t k = 0; k < b.n && k < sizeof mark - 1; k++)
		win[w++] = b.p[k];
	at = span_ci_find((struct span){ win, w }, mark);
	/* It must start on line i and end on line i + 1. */
	return at >= 0 && (size_t)at < cut &&
	    (size_t)at + sizeof mark - 1 > cut + 1;
}

/* Openings and endings of "On … wrote:" in the languages we know. The
 * endings allow a space or no-break space before a French colon. */
static const char *const attr_open[] = {
	"On ", "Le ", "Am ", "El ", "Il ", "Op ", NULL,
};
static const char *const attr_close[] = {
	"wrote:", "wrote :",
	"a \xc3\xa9" "crit :", "a \xc3\xa9" "crit:",
	"a \xc3\xa9" "crit\xc2\xa0:", "a \xc3\xa9" "crit\xe2\x80\xaf:",
	"escribi\xc3\xb3:", "escribi\xc3\xb3 :",
	"ha scritto:", "ha scritto :",
	"geschreven:",                  /* Dutch Apple Mail */
	NULL,
};
/* German and Dutch put the verb before the name: "Am … schrieb Ann:". */
static const char *const attr_verb[] = { " schrieb ", " schreef ", NULL };

static bool
attr_closes(struct span joined_last, bool verb_seen)
{
	if (any_suffix(joined_last, attr_close))
		return true;
	return verb_seen && joined_last.n > 0 &&
	    joined_last.p[joined_last.n - 1] == ':';
}

static bool
has_verb(struct span s)
{
	for (const char *const *v = attr_verb; *v != NULL; v++)
		if (span_ci_find(s, *v) >= 0)
			return true;
	/* "…schrieb:" at the very end, "Ann Lee schrieb:" */
	return span_ci_suffix(s, " schrieb:") || span_ci_suffix(s, " schreef:");
}

/* A quote header starting on line i: returns its number of lines, or 0. */
static size_t
attribution_at(const struct scan *sc, size_t i)
{
	struct span s = strip(line_at(sc, i));
	bool verb = false;

	if (s.n == 0 || s.n > HEADER_LINE_MAX || is_quoted(s))
		return 0;
	if (span_any_prefix(s, attr_open)) {
		bool dated = false;   /* a date, time or address: a digit or @ */

		for (size_t k = 0; k < ATTRIBUTION_LINES && i + k < sc->n;
		    k++) {
			struct span t = strip(line_at(sc, i + k));

			if (t.n == 0 || t.n > HEADER_LINE_MAX ||
			    (k > 0 && is_quoted(t)))
				return 0;
			for (size_t j = 0; j < t.n && !dated; j++)
				dated = (t.p[j] >= '0' && t.p[j] <= '9') ||
				    t.p[j] == '@';
			verb = verb || has_verb(t) || (k > 0 &&
			    (span_ci_prefix(t, "schrieb ") ||
			    span_ci_prefix(t, "schreef ")));
			if (attr_closes(t, verb))
				return dated ? k + 1 : 0;
		}
		return 0;
	}
	/* "Ann Lee wrote:" (Thunderbird, older clients): only when ">"
	 * lines follow. */
	if (any_suffix(s, attr_close) || span_ci_suffix(s, " schrieb:") ||
	    span_ci_suffix(s, " schreef:")) {
		for (size_t k = i + 1; k < sc->n; k++) {
			struct span t = line_at(sc, k);

			if (blank(t))
				continue;
			return is_quoted(t) ? 1 : 0;
		}
	}
	return 0;
}

enum hkey { HK_NONE, HK_FROM, HK_DATE, HK_TO, HK_SUBJECT, HK_CC };

/* The key of an Outlook header line ("From:", "*Von:*", "De :"). */
static enum hkey
header_key(struct span s)
{
	static const struct {
		const char *name;
		enum hkey key;
	} keys[] = {
		{ "from", HK_FROM }, { "von", HK_FROM }, { "de", HK_FROM },
		{ "da", HK_FROM }, { "van", HK_FROM },
		{ "sent", HK_DATE }, { "date", HK_DATE },
		{ "gesendet", HK_DATE }, { "datum", HK_DATE },
		{ "envoy\xc3\xa9", HK_DATE }, { "envoye", HK_DATE },
		{ "enviado", HK_DATE }, { "fecha", HK_DATE },
		{ "inviato", HK_DATE }, { "data", HK_DATE },
		{ "verzonden", HK_DATE },
		{ "to", HK_TO }, { "an", HK_TO }, { "\xc3\xa0", HK_TO },
		{ "\xc3\x80", HK_TO }, { "para", HK_TO }, { "a", HK_TO },
		{ "aan", HK_TO },
		{ "subject", HK_SUBJECT }, { "betreff", HK_SUBJECT },
		{ "objet", HK_SUBJECT }, { "asunto", HK_SUBJECT },
		{ "oggetto", HK_SUBJECT }, { "onderwerp", HK_SUBJECT },
		{ "cc", HK_CC },
	};
	size_t k = 0, end;

	s = strip(s);
	while (k < s.n && (s.p[k] == '*' || s.p[k] == ' '))
		k++;
	end = k;
	while (end < s.n && end - k < 16 && s.p[end] != ':' &&
	    s.p[end] != ' ' && s.p[end] != '*' &&
	    (unsigned char)s.p[end] != 0xc2)
		end++;
	if (end == k)
		return HK_NONE;
	{
		size_t c = end;

		/* optional "*", blanks or a no-break space, then ":" */
		while (c < s.n && (s.p[c] == ' ' || s.p[c] == '*' ||
		    (c + 1 < s.n && (unsigned char)s.p[c] == 0xc2 &&
		    (unsigned char)s.p[c + 1] == 0xa0))) {
			if ((unsigned char)s.p[c] == 0xc2)
				c++;
			c++;
		}
		if (c >= s.n || s.p[c] != ':')
			return HK_NONE;
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t n = strlen(keys[i].name);

		if (n == end - k && span_ci_prefix((struct span){ s.p + k, n },
		    keys[i].name))
			return keys[i].key;
	}
	return HK_NONE;
}

/* An Outlook block: a From line, then within OUTLOOK_WINDOW lines at
 * least two of Sent/Date, To and Subject. */
static bool
outlook_at(const struct scan *sc, size_t i)
{
	struct span s = strip(line_at(sc, i));
	unsigned seen = 0;
	int kinds = 0;

	if (s.n > HEADER_LINE_MAX || header_key(s) != HK_FROM)
		return false;
	for (size_t k = i + 1; k < sc->n && k <= i + OUTLOOK_WINDOW; k++) {
		enum hkey h = header_key(line_at(sc, k));

		if (h == HK_FROM)
			break;
		if ((h == HK_DATE || h == HK_TO || h == HK_SUBJECT) &&
		    !(seen & (1u << h))) {
			seen |= 1u << h;
			if (++kinds >= 2)
				return true;
		}
	}
	return false;
}

/* "-----Original Message-----" and friends, Outlook's "_____" rule. */
static bool
original_at(const struct scan *sc, size_t i)
{
	static const char *const names[] = {
		"original message", "message d'origine",
		"urspr\xc3\xbcngliche nachricht", "urspruengliche nachricht",
		"mensaje original", "messaggio originale",
		"oorspronkelijk bericht", NULL,
	};
	struct span s = strip(line_at(sc, i));
	size_t k;

	if (s.n >= 10 && s.n <= HEADER_LINE_MAX) {
		for (k = 0; k < s.n && s.p[k] == '_'; k++)
			;
		if (k == s.n)
			return true;
	}
	if (s.n < 3 || s.n > HEADER_LINE_MAX || !span_ci_prefix(s, "--"))
		return false;
	for (const char *const *n = names; *n != NULL; n++)
		if (span_ci_find(s, *n) >= 0)
			return true;
	return false;
}

static bool
signature_at(const struct scan *sc, size_t i)
{
	struct span s = line_at(sc, i);

	return (s.n == 3 && memcmp(s.p, "-- ", 3) == 0) ||
	    (s.n == 2 && memcmp(s.p, "--", 2) == 0);
}

static bool
mobile_at(const struct scan *sc, size_t i)
{
	static const char *const sigs[] = {
		"Sent from my ", "Sent from Outlook", "Get Outlook for ",
		"Sent from Yahoo Mail", "Sent from Mail for Windows",
		"Sent from Samsung", "Sent from Gmail", "Sent via ",
		"Envoy\xc3\xa9 de mon ", "Envoy\xc3\xa9 depuis ",
		"T\xc3\xa9l\xc3\xa9" "charger Outlook pour ",
		"Von meinem ", "Von Outlook f\xc3\xbcr ",
		"Gesendet von ", "Outlook f\xc3\xbcr iOS",
		"Outlook f\xc3\xbcr Android",
		"Enviado desde mi ", "Enviado desde Outlook",
		"Enviado desde Yahoo", "Obtener Outlook para ",
		"Inviato da ", "Verzonden met ", "Verstuurd vanaf mijn ",
		NULL,
	};
	struct span s = strip(line_at(sc, i));

	return s.n > 0 && s.n <= MOBILE_LINE_MAX && span_any_prefix(s, sigs);
}

/* A header or separator at the top with the answer below the ">" quote:
 * from line `from`, the first non-blank line is quoted, and after the
 * quoted lines comes unquoted text. */
static bool
answer_below(const struct scan *sc, size_t from)
{
	bool quoted = false;

	for (size_t k = from; k < sc->n; k++) {
		struct span t = line_at(sc, k);

		if (blank(t))
			continue;
		if (is_quoted(t)) {
			quoted = true;
			continue;
		}
		return quoted && !signature_at(sc, k) && !mobile_at(sc, k);
	}
	return false;
}

/* Splits text into sc->lines. -1 over LIMIT_TRIM_LINES. */
static int
split(struct scan *sc, struct err *err)
{
	size_t n = 0, off = 0;
	const char *p;

	for (off = 0; off < sc->len; off = (size_t)(p - sc->text) + 1) {
		p = memchr(sc->text + off, '\n', sc->len - off);
		n++;
		if (p == NULL)
			break;
	}
	if (n > LIMIT_TRIM_LINES)
		return err_set(err, false, "text has more than %d lines",
		    LIMIT_TRIM_LINES);
	sc->lines = xcalloc(n ? n : 1, sizeof *sc->lines);
	sc->n = 0;
	for (off = 0; off < sc->len; ) {
		size_t end;

		p = memchr(sc->text + off, '\n', sc->len - off);
		end = p ? (size_t)(p - sc->text) : sc->len;
		sc->lines[sc->n].off = off;
		sc->lines[sc->n].len = end - off;
		if (end > off && sc->text[end - 1] == '\r')
			sc->lines[sc->n].len--;
		sc->n++;
		if (p == NULL)
			break;
		off = end + 1;
	}
	return 0;
}

/* Fills r from the cut offset (len: none). */
static void
fill(const char *text, size_t len, size_t cut, struct trim_result *r)
{
	size_t first = 0, end = cut;

	while (first < cut && is_ws(text[first]))
		first++;
	while (end > first && is_ws(text[end - 1]))
		end--;
	if (first == end) {
		r->reply_off = r->reply_len = 0;
	} else {
		while (first > 0 && text[first - 1] != '\n')
			first--;
		r->reply_off = first;
		r->reply_len = end - first;
	}
	r->elided_off = cut;
	r->elided_len = len - cut;
}

int
trim_reply(const char *text, size_t len, struct trim_result *r,
    struct err *err)
{
	struct scan sc = { .text = text, .len = len };
	size_t cut_line = 0, skip = 0;
	enum trim_cut cut = TRIM_CUT_NONE;
	bool strong = false;
	int ret = -1;

	memset(r, 0, sizeof *r);
	r->elided_off = len;
	r->reply_len = len;
	r->confidence = TRIM_LOW;
	if (len > LIMIT_TRIM_INPUT)
		return err_set(err, false, "text is larger than %d bytes",
		    LIMIT_TRIM_INPUT);
	if (split(&sc, err) < 0)
		goto out;
	for (size_t i = 0; i < sc.n && !strong; i++) {
		enum trim_cut here = TRIM_CUT_NONE;
		size_t lines;

		if (separator_at(&sc, i))
			here = TRIM_CUT_SEPARATOR;
		else if ((lines = attribution_at(&sc, i)) > 0)
			here = TRIM_CUT_QUOTE_HEADER, skip = lines;
		else if (outlook_at(&sc, i))
			here = TRIM_CUT_OUTLOOK;
		else if (original_at(&sc, i))
			here = TRIM_CUT_ORIGINAL;
		else if (cut == TRIM_CUT_NONE && signature_at(&sc, i))
			here = TRIM_CUT_SIGNATURE;
		else if (cut == TRIM_CUT_NONE && mobile_at(&sc, i))
			here = TRIM_CUT_MOBILE;
		if (here == TRIM_CUT_NONE)
			continue;
		strong = here != TRIM_CUT_SIGNATURE && here != TRIM_CUT_MOBILE;
		if (cut == TRIM_CUT_NONE) {
			cut = here;
			cut_line = i;
			if (here == TRIM_CUT_SEPARATOR)
				skip = 1;
		}
	}
	/* A ">" run to the end, above any cut found so far. */
	{
		size_t k = sc.n, start = sc.n;

		while (k > 0 && blank(line_at(&sc, k - 1)))
			k--;
		while (k > 0 && (is_quoted(line_at(&sc, k - 1)) ||
		    blank(line_at(&sc, k - 1)))) {
			if (is_quoted(line_at(&sc, k - 1)))
				start = k - 1;
			k--;
		}
		if (start < sc.n && (cut == TRIM_CUT_NONE || start < cut_line)) {
			cut = TRIM_CUT_QUOTED;
			cut_line = start;
			skip = 0;
		}
	}
	/* A quoted separator without a known header above it: take an
	 * attribution-like line ("…, 10:02, Ann:") along, if text is above. */
	if (cut == TRIM_CUT_SEPARATOR && is_quoted(line_at(&sc, cut_line))) {
		size_t k = cut_line;

		while (k > 0 && blank(line_at(&sc, k - 1)))
			k--;
		if (k > 0) {
			struct span t = strip(line_at(&sc, k - 1));
			bool digit = false, above = false;

			for (size_t j = 0; j < t.n; j++)
				digit = digit || (t.p[j] >= '0' && t.p[j] <= '9');
			for (size_t j = 0; j + 1 < k && !above; j++)
				above = !blank(line_at(&sc, j));
			if (digit && above && !is_quoted(t) && t.n > 0 &&
			    t.n <= HEADER_LINE_MAX && t.p[t.n - 1] == ':')
				cut_line = k - 1;
		}
	}
	if (cut == TRIM_CUT_NONE) {
		fill(text, len, len, r);
	} else {
		fill(text, len, sc.lines[cut_line].off, r);
		if (r->reply_len == 0 && (cut == TRIM_CUT_QUOTE_HEADER ||
		    cut == TRIM_CUT_SEPARATOR) &&
		    answer_below(&sc, cut_line + skip)) {
			/* bottom posting: keep everything */
			fill(text, len, len, r);
			cut = TRIM_CUT_NONE;
			strong = false;
		}
	}
	r->cut = cut;
	r->confidence = strong ? TRIM_HIGH : TRIM_LOW;
	ret = 0;
out:
	free(sc.lines);
	return ret;
}

const char *
trim_cut_name(enum trim_cut cut)
{
	switch (cut) {
	case TRIM_CUT_NONE: return "none";
	case TRIM_CUT_SEPARATOR: return "separator";
	case TRIM_CUT_QUOTE_HEADER: return "quote_header";
	case TRIM_CUT_OUTLOOK: return "outlook_header";
	case TRIM_CUT_ORIGINAL: return "original_message";
	case TRIM_CUT_QUOTED: return "quoted";
	case TRIM_CUT_SIGNATURE: return "signature";
	case TRIM_CUT_MOBILE: return "mobile_signature";
	}
	return "?";
}
