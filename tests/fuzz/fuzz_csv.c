/* tests/fuzz/fuzz_csv.c: the CSV reader over arbitrary bytes: no crash, no
 * hang, every field within the record limit, every record accounted for. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/csv.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_limits lim = { 256, 8, 64 * 1024 };
	struct csv_reader *r = csv_reader_new_buf(data, size, &lim);
	struct csv_record rec;
	struct err err;
	int n;

	for (size_t guard = 0; guard <= size + 1; guard++) {
		n = csv_read(r, &rec, &err);
		if (n == 0)
			break;
		if (n < 0) {
			if (csv_reader_failed(r))
				break;
			continue;
		}
		if (rec.nfields > lim.max_fields)
			abort();
		size_t total = 0;
		for (size_t i = 0; i < rec.nfields; i++) {
			if (strlen(rec.field[i]) != rec.len[i])
				abort();          /* fields are NUL-free and terminated */
			if (!utf8_valid(rec.field[i], rec.len[i]))
				abort();
			total += rec.len[i];
		}
		if (total > lim.max_record)
			abort();
	}
	csv_reader_free(&r);
	return 0;
}
