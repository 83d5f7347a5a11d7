/* common/html.c: HTML escaping with UTF-8 validation. */
#include "common/html.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2; cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3; cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4; cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
html_escape(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t run = i;
		/* Copy plain runs in one go. */
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f &&
		    strchr("&<>\"'", p[run]) == NULL)
			run++;
		if (run > i && buf_add(b, p + i, run - i) < 0)
			return -1;
		i = run;
		if (i >= len)
			break;
		const char *rep = NULL;
		size_t ul = 1;
		switch (p[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		case '\t': rep = "\t"; break;
		case '\n': rep = "\n"; break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f) {
				rep = "\xef\xbf\xbd";
			} else if ((ul = utf8_len(p + i, len - i)) == 0) {
				rep = "\xef\xbf\xbd";
				ul = 1;
			}
		}
		if (rep != NULL) {
			if (buf_adds(b, rep) < 0)
				return -1;
			i += ul;
		} else {
			if (buf_add(b, p + i, ul) < 0)
				return -1;
			i += ul;
		}
	}
	return 0;
}

int
html_escapes(struct buf *b, const char *s)
{
	return html_escape(b, s, strlen(s));
}
