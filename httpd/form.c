/* httpd/form.c: urlencoded forms and Cookie headers (see form.h). */
#include "httpd/form.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/limits.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes p[0..n) into out[size] (NULL: only checks). -1 on a bad escape,
 * a NUL byte or no room. */
static int
decode(const char *p, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hexval(p[i + 1])) < 0 ||
			    (lo = hexval(p[i + 2])) < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0)
			return -1;
		if (out != NULL) {
			if (o + 1 >= size)
				return -1;
			out[o] = (char)c;
		}
		o++;
	}
	if (out != NULL)
		out[o] = '\0';
	return 0;
}

/* Whether the encoded name p[0..n) decodes to name. */
static bool
name_is(const char *p, size_t n, const char *name)
{
	char buf[64];

	return decode(p, n, buf, sizeof buf) == 0 && strcmp(buf, name) == 0;
}

int
form_get(const char *body, size_t len, const char *name, char *out,
    size_t size)
{
	const char *p = body, *end = body + len;
	int fields = 0, found = 0;

	if (size == 0)
		return -1;
	out[0] = '\0';
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *fe = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(fe - p));
		const char *ne = eq != NULL ? eq : fe;
		const char *v = eq != NULL ? eq + 1 : fe;

		if (fe > p) {          /* "a=1&&b=2": empty pieces are skipped */
			if (++fields > LIMIT_FORM_FIELDS)
				return -1;
			if (decode(p, (size_t)(ne - p), NULL, 0) < 0 ||
			    decode(v, (size_t)(fe - v), NULL, 0) < 0)
				return -1;
			if (name_is(p, (size_t)(ne - p), name)) {
				if (found)
					return -1;      /* ambiguous: refuse */
				if (decode(v, (size_t)(fe - v), out, size) < 0)
					return -1;
				found = 1;
			}
		}
		p = amp != NULL ? amp + 1 : end;
	}
	return found;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

int
form_cookie_get(const char *header, const char *name, char *out,
    size_t size)
{
	size_t hlen = strlen(header), nlen = strlen(name);
	const char *p = header, *end = header + hlen;

	if (size == 0)
		return -1;
	out[0] = '\0';
	if (hlen > LIMIT_COOKIE_HEADER)
		return -1;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *ce = semi != NULL ? semi : end;
		const char *eq;

		while (p < ce && is_space(*p))
			p++;
		eq = memchr(p, '=', (size_t)(ce - p));
		if (eq != NULL) {
			const char *ne = eq;

			while (ne > p && is_space(ne[-1]))
				ne--;
			if ((size_t)(ne - p) == nlen &&
			    memcmp(p, name, nlen) == 0) {
				const char *v = eq + 1, *ve = ce;
				size_t n;

				while (v < ve && is_space(*v))
					v++;
				while (ve > v && is_space(ve[-1]))
					ve--;
				if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
					v++;
					ve--;
				}
				n = (size_t)(ve - v);
				if (n + 1 > size || memchr(v, '\0', n) != NULL)
					return -1;
				memcpy(out, v, n);
				out[n] = '\0';
				return 1;
			}
		}
		p = semi != NULL ? semi + 1 : end;
	}
	return 0;
}

bool
form_is_b64url(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return s[i] == '\0';
}

bool
form_code(const char *in, char *out, size_t digits)
{
	size_t n = 0;

	for (; *in != '\0'; in++) {
		if (*in == ' ' || *in == '-')
			continue;
		if (*in < '0' || *in > '9' || n == digits)
			return false;
		out[n++] = *in;
	}
	out[n] = '\0';
	return n == digits;
}

bool
form_forwarded_ip(const char *xff, char *out, size_t size)
{
	const char *p = strrchr(xff, ',');
	char tmp[64];
	uint8_t addr[16];
	size_t n;

	p = p != NULL ? p + 1 : xff;
	while (is_space(*p))
		p++;
	n = strcspn(p, " \t");
	if (n == 0 || n >= sizeof tmp || n >= size)
		return false;
	for (const char *q = p + n; *q != '\0'; q++)
		if (!is_space(*q))
			return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, addr) != 1 &&
	    inet_pton(AF_INET6, tmp, addr) != 1)
		return false;
	memcpy(out, tmp, n + 1);
	return true;
}
