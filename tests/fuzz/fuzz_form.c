/* tests/fuzz/fuzz_form.c: httpd's parsers of request bytes: form bodies,
 * Cookie headers, typed codes and X-Forwarded-For. Whatever comes in, a
 * value found fits its buffer, is NUL-terminated and has no NUL inside. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "httpd/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_value(const char *out, size_t size)
{
	if (memchr(out, '\0', size) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[LIMIT_FORM_BODY + 1];
	char out[64], code[9], ip[64];
	int rc;

	if (size > LIMIT_FORM_BODY)
		return 0;
	/* The body is bytes plus a length: not NUL-terminated. */
	rc = form_get((const char *)data, size, "email", out, sizeof out);
	if (rc == 1)
		check_value(out, sizeof out);
	else if (rc != 0 && rc != -1)
		abort();
	rc = form_get((const char *)data, size, "t", out, 8);
	if (rc == 1 && strlen(out) >= 8)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	rc = form_cookie_get(text, "postern_session", out, sizeof out);
	if (rc == 1)
		check_value(out, sizeof out);
	if (form_code(text, code, 8)) {
		if (strlen(code) != 8 || strspn(code, "0123456789") != 8)
			abort();
	}
	if (form_forwarded_ip(text, ip, sizeof ip) && strlen(ip) == 0)
		abort();
	(void)form_is_b64url(text, 43);
	return 0;
}
