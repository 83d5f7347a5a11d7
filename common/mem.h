/* common/mem.h: allocation that cannot fail (OOM aborts with a log line),
 * and small string helpers that replace strcpy/strcat/strdup. */
#ifndef POSTERN_COMMON_MEM_H
#define POSTERN_COMMON_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new heap string. */
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Copies src into dst[size], always NUL-terminated. Returns false when src
 * did not fit (dst then holds a cut copy): callers that must not truncate
 * check it. */
bool str_copy(char *dst, size_t size, const char *src);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Strips ASCII white space at both ends, in place; returns s. */
char *str_trim(char *s);

/* Checked integer parsing: the whole string must be a base-10 number in
 * [min, max]. 0 and *v_r set, -1 and err set. */
MUST_CHECK int parse_i64(const char *s, long long min, long long max,
    long long *v_r, struct err *err);

#endif
