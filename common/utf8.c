/* common/utf8.c: strict UTF-8 decoding. */
#include "common/utf8.h"

size_t
utf8_seq(const void *p, size_t n, uint32_t *cp_r)
{
	const unsigned char *s = p;
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80) {
		len = 1, cp = c;
		goto ok;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2, cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
ok:
	if (cp_r != NULL)
		*cp_r = cp;
	return len;
}

bool
utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(s + i, n - i, NULL);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}
