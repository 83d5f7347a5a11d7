/* common/html.c: HTML escaping with UTF-8 validation. */
#include "common/html.h"
#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

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
			} else if ((ul = utf8_seq(p + i, len - i, NULL)) == 0) {
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
