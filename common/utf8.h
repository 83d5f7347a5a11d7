/* common/utf8.h: strict UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF), the one decoder every module and test uses. */
#ifndef POSTERN_COMMON_UTF8_H
#define POSTERN_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid sequence at p[0..n) (n >= 1), or 0 when it
 * is not one. *cp_r (may be NULL) gets the code point. */
size_t utf8_seq(const void *p, size_t n, uint32_t *cp_r);
/* All of p[0..n) is valid UTF-8 (NUL bytes count as valid). */
bool utf8_valid(const void *p, size_t n);

#endif
