/* common/buf.h: a growing byte buffer with a hard cap.
 *
 * The cap is part of the buffer, so code that reads from outside cannot
 * forget it: buf_add() past the cap fails and leaves the buffer as it was.
 * The data is always followed by a NUL (not counted in len), so text can be
 * used as a C string. Growth aborts on OOM (xrealloc). */
#ifndef POSTERN_COMMON_BUF_H
#define POSTERN_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct buf {
	char *data;     /* NULL until the first add; owned */
	size_t len;     /* bytes used, not counting the trailing NUL */
	size_t alloc;
	size_t cap;     /* most bytes len may reach */
};

void buf_init(struct buf *b, size_t cap);
void buf_fini(struct buf *b);            /* frees data; the buf may be reused */
void buf_reset(struct buf *b);           /* len = 0, keeps memory */
/* 0, or -1 when len would pass the cap (nothing added). */
MUST_CHECK int buf_add(struct buf *b, const void *p, size_t n);
MUST_CHECK int buf_adds(struct buf *b, const char *s);
MUST_CHECK int buf_addc(struct buf *b, char c);
MUST_CHECK int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* A C string: "" when empty, never NULL. Borrowed from the buffer. */
const char *buf_str(const struct buf *b);
/* Hands the data to the caller (NUL-terminated, never NULL), resets b. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
