/* tests/fuzz/fuzz_email.c: the address check: accepted addresses are short,
 * printable and idempotent under a second check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/email.h"
#include "common/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[1024], out[LIMIT_EMAIL + 1], again[LIMIT_EMAIL + 1];
	struct err err;

	if (size >= sizeof in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (email_normalize_check(in, out, sizeof out, &err) < 0)
		return 0;
	if (strlen(out) > LIMIT_EMAIL || strchr(out, '@') == NULL)
		abort();
	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>')
			abort();
	if (email_normalize_check(out, again, sizeof again, &err) < 0 ||
	    strcmp(out, again) != 0)
		abort();
	return 0;
}
