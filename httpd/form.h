/* httpd/form.h: the pure parsers of request bytes: urlencoded form bodies
 * and Cookie headers. No I/O, no MHD, no state, so they are unit-tested on
 * bytes alone (tests/unit/test_form.c).
 *
 * Limits: a form has at most LIMIT_FORM_FIELDS fields; a Cookie header over
 * LIMIT_COOKIE_HEADER bytes is not looked at; every value is decoded into
 * the caller's buffer, and one that does not fit is an error, never cut. */
#ifndef POSTERN_HTTPD_FORM_H
#define POSTERN_HTTPD_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* The value of field name in an application/x-www-form-urlencoded body
 * (body[0..len), not NUL-terminated), decoded ('+' is a space, %XX a byte)
 * into out[size], NUL-terminated. 1: found; 0: absent; -1: the body is
 * malformed or unsafe as a whole, or this value is: a bad %XX escape, a NUL
 * byte, more than LIMIT_FORM_FIELDS fields, the name given twice, a value
 * that does not fit out. A field with no '=' has the value "". */
MUST_CHECK int form_get(const char *body, size_t len, const char *name,
    char *out, size_t size);

/* The value of cookie name in a Cookie header ("a=1; b=2"), without
 * surrounding double quotes, into out[size]. 1 / 0 / -1 as above; -1
 * also for a header over LIMIT_COOKIE_HEADER bytes. When a name appears
 * twice the first wins (browsers send the most specific path first). */
MUST_CHECK int form_cookie_get(const char *header, const char *name,
    char *out, size_t size);

/* Whether s is exactly n characters of base64url (A-Z a-z 0-9 - _). */
bool form_is_b64url(const char *s, size_t n);

/* A code as people type it: spaces and dashes dropped, the rest must be
 * exactly digits decimal digits, written to out[digits + 1]. */
bool form_code(const char *in, char *out, size_t digits);

/* The last entry of an X-Forwarded-For value (the one the proxy in front
 * of us added; earlier ones are the client's to invent), if it is an IPv4
 * or IPv6 address, into out[size]. */
bool form_forwarded_ip(const char *xff, char *out, size_t size);

#endif
