/* mailer/span.c: case-insensitive matching on borrowed text. */
#include "mailer/span.h"

#include <string.h>

char
span_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

bool
span_ci_prefix(struct span s, const char *pre)
{
	size_t n = strlen(pre);

	if (s.n < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (span_lower(s.p[i]) != span_lower(pre[i]))
			return false;
	return true;
}

bool
span_ci_suffix(struct span s, const char *suf)
{
	size_t n = strlen(suf);

	if (s.n < n)
		return false;
	return span_ci_prefix((struct span){ s.p + s.n - n, n }, suf);
}

bool
span_ci_eq(struct span s, const char *w)
{
	return s.n == strlen(w) && span_ci_prefix(s, w);
}

long
span_ci_find(struct span s, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return 0;
	for (size_t i = 0; i + n <= s.n; i++)
		if (span_lower(s.p[i]) == span_lower(needle[0]) &&
		    span_ci_prefix((struct span){ s.p + i, s.n - i }, needle))
			return (long)i;
	return -1;
}

bool
span_any_prefix(struct span s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (span_ci_prefix(s, *list))
			return true;
	return false;
}
