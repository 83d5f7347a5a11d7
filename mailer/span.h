/* mailer/span.h: a borrowed piece of text (pointer + length, not
 * NUL-terminated) and the ASCII case-insensitive matching that reply
 * trimming and classification do on header values and body lines. All
 * functions are pure, bounded by the span's length, and never allocate. */
#ifndef POSTERN_MAILER_SPAN_H
#define POSTERN_MAILER_SPAN_H

#include <stdbool.h>
#include <stddef.h>

struct span {
	const char *p;          /* borrowed; may be NULL when n is 0 */
	size_t n;
};

/* ASCII lower case; other bytes (UTF-8 included) unchanged. */
char span_lower(char c);
/* s starts with pre / ends with suf / equals w, ASCII case folded. */
bool span_ci_prefix(struct span s, const char *pre);
bool span_ci_suffix(struct span s, const char *suf);
bool span_ci_eq(struct span s, const char *w);
/* Offset of needle in s (case folded), or -1; 0 for an empty needle.
 * O(s.n * |needle|). */
long span_ci_find(struct span s, const char *needle);
/* s starts with one of the NULL-terminated list. */
bool span_any_prefix(struct span s, const char *const *list);

#endif
