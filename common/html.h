/* common/html.h: the one path by which text reaches HTML.
 *
 * Everything shown in a page or an HTML mail goes through html_escape():
 * & < > " ' become entities, so text is safe in element content and in
 * quoted attribute values. Invalid UTF-8 and control characters (other than
 * tab and newline) become U+FFFD. */
#ifndef POSTERN_COMMON_HTML_H
#define POSTERN_COMMON_HTML_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Appends the escaped form of s[0..len) to b. -1 when b's cap is hit. */
MUST_CHECK int html_escape(struct buf *b, const char *s, size_t len);
MUST_CHECK int html_escapes(struct buf *b, const char *s);

#endif
