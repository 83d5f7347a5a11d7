/* common/email.c: the one place that decides what an email address is.
 *
 * Byte-level checks only (ASCII): see email.h for the accepted shape. Owns
 * nothing; the result goes into the caller's buffer. */
#include "common/email.h"

#include <string.h>

#include "common/limits.h"

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext: letters, digits and these printable specials. */
static bool
is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Names the first character that can never be in an address, so the error
 * says what to fix ("contains a space"), or NULL when there is none. */
static const char *
forbidden(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80)
			return "non-ASCII characters (not supported yet)";
		if (c == '\r' || c == '\n')
			return "a line break";
		if (c < 0x20 || c == 0x7f)
			return "a control character";
		if (c == ' ')
			return "a space";
		if (c == '"')
			return "a double quote";
		if (c == '<' || c == '>')
			return "angle brackets";
		if (c == '\\')
			return "a backslash";
		if (c == '(' || c == ')' || c == ',' || c == ';' || c == ':' ||
		    c == '[' || c == ']')
			return "a character not allowed in an address";
	}
	return NULL;
}

static int
check_local(const char *s, size_t n, struct err *err)
{
	if (n == 0)
		return err_set(err, false, "nothing before the @");
	if (n > EMAIL_LOCAL_MAX)
		return err_set(err, false, "the part before the @ is longer "
		    "than %d bytes", EMAIL_LOCAL_MAX);
	if (s[0] == '.' || s[n - 1] == '.')
		return err_set(err, false, "the part before the @ starts or "
		    "ends with a dot");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return err_set(err, false, "two dots in a row");
		} else if (!is_atext((unsigned char)s[i])) {
			return err_set(err, false, "a character not allowed "
			    "before the @");
		}
	}
	return 0;
}

static int
check_domain(const char *s, size_t n, struct err *err)
{
	size_t labels = 0, start = 0;

	if (n == 0)
		return err_set(err, false, "nothing after the @");
	if (n > EMAIL_DOMAIN_MAX)
		return err_set(err, false, "domain longer than %d bytes",
		    EMAIL_DOMAIN_MAX);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '-')
				return err_set(err, false, "a character not "
				    "allowed in a domain");
			continue;
		}
		/* a label is s[start, i) */
		size_t len = i - start;
		if (len == 0)
			return err_set(err, false, "domain has an empty label "
			    "(leading, trailing or doubled dot)");
		if (len > 63)
			return err_set(err, false, "domain label longer than "
			    "63 bytes");
		if (s[start] == '-' || s[i - 1] == '-')
			return err_set(err, false, "domain label starts or "
			    "ends with a hyphen");
		labels++;
		if (i == n) {
			/* the top label: letters only, or an IDN A-label
			 * (xn--…), as registries hand them out */
			bool alpha = len >= 2;
			for (size_t j = start; j < i && alpha; j++)
				alpha = is_alpha((unsigned char)s[j]);
			if (!alpha && !(len > 4 && strncmp(s + start, "xn--",
			                    4) == 0))
				return err_set(err, false, "domain does not "
				    "end in a top-level domain such as .com "
				    "or .test");
		}
		start = i + 1;
	}
	if (labels < 2)
		return err_set(err, false, "domain has no dot (such as "
		    "example.com or practice.test)");
	return 0;
}

static int
normalize(const char *in, char *out, size_t size, struct err *err)
{
	char tmp[LIMIT_EMAIL + 1];
	const char *at, *why;
	size_t n, b = 0, e, local;

	if (in == NULL)
		return err_set(err, false, "empty email address");
	e = strlen(in);
	while (b < e && is_space((unsigned char)in[b]))
		b++;
	while (e > b && is_space((unsigned char)in[e - 1]))
		e--;
	n = e - b;
	if (n == 0)
		return err_set(err, false, "empty email address");
	if (n > LIMIT_EMAIL)
		return err_set(err, false, "email address longer than %d "
		    "bytes", LIMIT_EMAIL);
	/* tmp makes in == out safe; it holds at most LIMIT_EMAIL bytes */
	memcpy(tmp, in + b, n);
	tmp[n] = '\0';
	if ((why = forbidden(tmp, n)) != NULL)
		return err_set(err, false, "email address contains %s", why);
	at = strchr(tmp, '@');
	if (at == NULL)
		return err_set(err, false, "email address has no @");
	if (strchr(at + 1, '@') != NULL)
		return err_set(err, false, "email address has more than one @");
	local = (size_t)(at - tmp);
	if (check_local(tmp, local, err) < 0 ||
	    check_domain(at + 1, n - local - 1, err) < 0)
		return -1;
	if (n + 1 > size)
		return err_set(err, false, "email address does not fit in "
		    "%zu bytes", size);
	for (size_t i = local + 1; i < n; i++) {
		if (tmp[i] >= 'A' && tmp[i] <= 'Z')
			tmp[i] = (char)(tmp[i] - 'A' + 'a');
	}
	memcpy(out, tmp, n + 1);
	return 0;
}

int
email_normalize_check(const char *in, char *out, size_t size,
    struct err *err)
{
	/* out is cleared only on failure: it may be in itself */
	if (normalize(in, out, size, err) == 0)
		return 0;
	if (size > 0)
		out[0] = '\0';
	return -1;
}

int
email_domain_normalize_check(const char *in, char *out, size_t size,
    struct err *err)
{
	char tmp[EMAIL_DOMAIN_MAX + 1];
	size_t n, b = 0, e;

	if (size > 0 && in != out)
		out[0] = '\0';
	if (in == NULL)
		goto bad_empty;
	e = strlen(in);
	while (b < e && is_space((unsigned char)in[b]))
		b++;
	while (e > b && is_space((unsigned char)in[e - 1]))
		e--;
	n = e - b;
	if (n == 0)
		goto bad_empty;
	if (n > EMAIL_DOMAIN_MAX) {
		err_set(err, false, "domain longer than %d bytes",
		    EMAIL_DOMAIN_MAX);
		goto bad;
	}
	memcpy(tmp, in + b, n);
	tmp[n] = '\0';
	if (check_domain(tmp, n, err) < 0)
		goto bad;
	if (n + 1 > size) {
		err_set(err, false, "domain does not fit in %zu bytes", size);
		goto bad;
	}
	for (size_t i = 0; i < n; i++) {
		if (tmp[i] >= 'A' && tmp[i] <= 'Z')
			tmp[i] = (char)(tmp[i] - 'A' + 'a');
	}
	memcpy(out, tmp, n + 1);
	return 0;
bad_empty:
	err_set(err, false, "empty domain");
bad:
	if (size > 0)
		out[0] = '\0';
	return -1;
}

const char *
email_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : addr;
}
