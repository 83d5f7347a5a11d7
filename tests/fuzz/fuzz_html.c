/* tests/fuzz/fuzz_html.c: escaped output never holds markup characters and
 * is valid UTF-8. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/csv.h"
#include "common/html.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;

	buf_init(&b, size * 8 + 16);
	if (html_escape(&b, (const char *)data, size) < 0)
		abort();                 /* 8x is the worst case, never over */
	if (strpbrk(buf_str(&b), "<>\"'") != NULL || b.len != strlen(buf_str(&b)))
		abort();
	if (!utf8_valid(b.data != NULL ? b.data : "", b.len))
		abort();
	buf_fini(&b);
	return 0;
}
