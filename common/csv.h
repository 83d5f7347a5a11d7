/* common/csv.h: an RFC 4180 CSV reader for imports.
 *
 * Reads records from a FILE* or a memory buffer: comma-separated fields,
 * fields in double quotes may hold commas, line breaks and "" (one quote);
 * records end in CRLF or LF (the last one may end at end of input). A UTF-8
 * byte order mark at the very start is skipped. Lines with no bytes at all
 * are skipped (spreadsheets leave them at the end); a line holding only
 * `""` is a record with one empty field. Field text is kept as is (no
 * trimming): what it means is the caller's business.
 *
 * Rejected, with a reason and the 1-based line where the record starts:
 * a record over max_record bytes (raw, without its line break), more than
 * max_fields fields, a NUL byte, invalid UTF-8 (overlong forms, surrogates
 * and code points past U+10FFFF included), a quote inside an unquoted
 * field, text after a closing quote, a CR not followed by LF. After such an
 * error the reader has skipped to the end of that record and the next
 * csv_read() goes on with the next one, so an import can list every bad
 * line. Input over max_input bytes, a read error and a quoted field still
 * open at end of input stop the reader (csv_reader_failed()). */
#ifndef POSTERN_COMMON_CSV_H
#define POSTERN_COMMON_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "common/limits.h"

struct csv_reader;     /* opaque: fields live in csv.c */

/* Caps; a NULL struct or a 0 member means the LIMIT_CSV_* default.
 * max_fields may not exceed LIMIT_CSV_FIELDS (the record's array size). */
struct csv_limits {
	size_t max_record;     /* LIMIT_CSV_LINE */
	size_t max_fields;     /* LIMIT_CSV_FIELDS */
	size_t max_input;      /* LIMIT_CSV_FILE */
};

/* One record. The field strings are NUL-terminated (NUL bytes are rejected,
 * so len[i] == strlen(field[i])) and borrowed from the reader: valid until
 * the next csv_read() or csv_reader_free(). */
struct csv_record {
	unsigned long line;                    /* where the record starts */
	size_t nfields;
	const char *field[LIMIT_CSV_FIELDS];
	size_t len[LIMIT_CSV_FIELDS];
};

/* Reads fp (borrowed, not closed) through the reader's own buffer. */
struct csv_reader *csv_reader_new_file(FILE *fp,
    const struct csv_limits *lim);
/* Reads data[0, len) (borrowed: must outlive the reader). */
struct csv_reader *csv_reader_new_buf(const void *data, size_t len,
    const struct csv_limits *lim);
void csv_reader_free(struct csv_reader **rp);     /* NULL-safe; sets NULL */

/* 1: *rec holds the next record. 0: end of input. -1: err says what is
 * wrong with the record starting at rec->line (rec->nfields is 0); call
 * again for the next record unless csv_reader_failed(). Once failed, every
 * call returns -1 with the same error. */
MUST_CHECK int csv_read(struct csv_reader *r, struct csv_record *rec,
    struct err *err);

/* True once the reader cannot go on (see above). */
bool csv_reader_failed(const struct csv_reader *r);
/* Bytes consumed so far (BOM included), for progress lines. */
size_t csv_reader_offset(const struct csv_reader *r);


#endif
