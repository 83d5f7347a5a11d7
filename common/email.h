/* common/email.h: checking and normalising one email address.
 *
 * We accept what practices actually type into forms and spreadsheets, in
 * the plain form "local@domain": a dot-atom local part (letters, digits,
 * . ! # $ % & ' * + - / = ? ^ _ ` { | } ~, no leading, trailing or doubled
 * dot) of at most 64 bytes, and a host name of dot-separated labels
 * (letters, digits, inner hyphens, at most 63 bytes each) with at least two
 * labels and an alphabetic top label of two or more letters (so "x.test",
 * the RFC 2606 test TLD, is fine; bare hosts and IP literals are not). The
 * whole address is at most LIMIT_EMAIL bytes.
 *
 * Not accepted (on purpose, for now): quoted local parts, comments, display
 * names and angle brackets, IP-literal domains, and anything non-ASCII
 * (SMTPUTF8 addresses and unencoded IDN domains). Pure: no I/O, no state. */
#ifndef POSTERN_COMMON_EMAIL_H
#define POSTERN_COMMON_EMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* The most bytes of the local part (RFC 5321 4.5.3.1.1). */
#define EMAIL_LOCAL_MAX 64
/* The most bytes of the domain (RFC 1035 host name). */
#define EMAIL_DOMAIN_MAX 253

/* Trims ASCII white space around in, checks the address as above and
 * writes it to out[size] with the domain lower-cased (the local part keeps
 * its case: the database column is citext, and some servers care). in and
 * out may be the same buffer. 0 on success; -1 with err set to a short
 * reason that does not repeat the address (callers add it, quoted, if they
 * print it) and out set to "" (when size > 0). A size too small for the
 * result is an error too, never a silent cut. */
MUST_CHECK int email_normalize_check(const char *in, char *out, size_t size,
    struct err *err);

/* The domain rule above on its own, for a practice's reply domain: trims,
 * checks, lower-cases into out[size]. Same contract as above. */
MUST_CHECK int email_domain_normalize_check(const char *in, char *out,
    size_t size, struct err *err);

/* The part after the last '@' of addr (addr itself when it has none),
 * e.g. the domain for Message-IDs. Borrowed from addr. */
const char *email_domain(const char *addr);

#endif
