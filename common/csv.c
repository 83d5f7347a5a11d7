/* common/csv.c: RFC 4180 CSV reader (see csv.h for the accepted format).
 *
 * One pass, byte at a time, through a 64 KiB read buffer (files) or the
 * caller's memory. A record is unescaped into one fixed block sized from
 * the limits (max_record + max_fields + 1: unescaped text is never longer
 * than the raw bytes, plus one NUL per field), allocated once, so a hostile
 * file costs no more memory than a good one. The reader owns that block,
 * its read buffer and nothing else. */
#include "common/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/utf8.h"

#define CHUNK (64 * 1024)

struct csv_reader {
	FILE *fp;                      /* NULL: reading a buffer; borrowed */
	const unsigned char *p;        /* current bytes: chunk or the buffer */
	size_t n, pos;
	unsigned char *chunk;          /* file mode: owned read buffer */
	size_t consumed;               /* bytes taken so far (BOM included) */
	unsigned long line;            /* physical line at pos, 1-based */
	bool started;                  /* BOM handled */
	bool source_done;              /* nothing more to read after p[n] */
	bool failed;
	unsigned long fail_line;
	char fail_msg[ERR_MSG_MAX];
	struct csv_limits lim;
	char *data;                    /* one record, unescaped; owned */
	size_t off[LIMIT_CSV_FIELDS + 1];
};

static void
set_limits(struct csv_reader *r, const struct csv_limits *lim)
{
	r->lim.max_record = lim != NULL && lim->max_record > 0
	    ? lim->max_record : LIMIT_CSV_LINE;
	r->lim.max_fields = lim != NULL && lim->max_fields > 0
	    ? lim->max_fields : LIMIT_CSV_FIELDS;
	r->lim.max_input = lim != NULL && lim->max_input > 0
	    ? lim->max_input : LIMIT_CSV_FILE;
	if (r->lim.max_fields > LIMIT_CSV_FIELDS)
		BUG("csv max_fields %zu > LIMIT_CSV_FIELDS", r->lim.max_fields);
	if (r->lim.max_record > SIZE_MAX / 2)
		BUG("csv max_record %zu too large", r->lim.max_record);
	/* @UNSAFE: bounded just above and by LIMIT_CSV_FIELDS */
	r->data = xmalloc(r->lim.max_record + r->lim.max_fields + 1);
	r->line = 1;
}

struct csv_reader *
csv_reader_new_file(FILE *fp, const struct csv_limits *lim)
{
	struct csv_reader *r = xcalloc(1, sizeof *r);

	r->fp = fp;
	r->chunk = xmalloc(CHUNK);
	r->p = r->chunk;
	set_limits(r, lim);
	return r;
}

struct csv_reader *
csv_reader_new_buf(const void *data, size_t len, const struct csv_limits *lim)
{
	struct csv_reader *r = xcalloc(1, sizeof *r);

	r->p = data;
	r->n = len;
	r->source_done = true;
	set_limits(r, lim);
	return r;
}

void
csv_reader_free(struct csv_reader **rp)
{
	struct csv_reader *r = *rp;

	if (r == NULL)
		return;
	free(r->chunk);
	free(r->data);
	free(r);
	*rp = NULL;
}

bool
csv_reader_failed(const struct csv_reader *r)
{
	return r->failed;
}

size_t
csv_reader_offset(const struct csv_reader *r)
{
	return r->consumed;
}

static void
fail(struct csv_reader *r, unsigned long line, const char *msg)
{
	if (r->failed)
		return;
	r->failed = true;
	r->fail_line = line;
	snprintf(r->fail_msg, sizeof r->fail_msg, "%s", msg);
}

/* Refills the chunk; false at end of input or on a read error (which
 * fails the reader). Keeps p[pos - 1] readable for unget() only within a
 * chunk, which is all unget() needs (it follows a successful getb()). */
static bool
refill(struct csv_reader *r)
{
	size_t got;

	if (r->source_done)
		return false;
	got = fread(r->chunk, 1, CHUNK, r->fp);
	if (got < CHUNK) {
		r->source_done = true;
		if (ferror(r->fp)) {
			char msg[ERR_MSG_MAX];
			snprintf(msg, sizeof msg, "read error: %s",
			    strerror(errno));
			fail(r, r->line, msg);
			return false;
		}
	}
	r->p = r->chunk;
	r->n = got;
	r->pos = 0;
	return got > 0;
}

/* The next byte, or -1 at end of input (r->failed tells an error). */
static int
getb(struct csv_reader *r)
{
	if (r->pos == r->n && !refill(r))
		return -1;
	if (r->consumed >= r->lim.max_input) {
		char msg[ERR_MSG_MAX];
		snprintf(msg, sizeof msg, "input larger than %zu bytes",
		    r->lim.max_input);
		fail(r, r->line, msg);
		return -1;
	}
	r->consumed++;
	return r->p[r->pos++];
}

static void
unget(struct csv_reader *r)
{
	r->pos--;
	r->consumed--;
}

/* Skips a UTF-8 BOM at the very start. The first chunk holds at least
 * three bytes unless the input is shorter (fread fills it). */
static void
skip_bom(struct csv_reader *r)
{
	r->started = true;
	if (r->pos == r->n && !refill(r))
		return;
	if (r->n - r->pos >= 3 && r->p[r->pos] == 0xEF &&
	    r->p[r->pos + 1] == 0xBB && r->p[r->pos + 2] == 0xBF) {
		r->pos += 3;
		r->consumed += 3;
	}
}

/* Parsing state of one record. */
struct rec_state {
	size_t raw;            /* raw bytes of the record, line break excluded */
	size_t used;           /* bytes in r->data */
	size_t nf;             /* fields ended so far */
	bool bad;
	char why[ERR_MSG_MAX];
};

static void PRINTF_LIKE(2, 3)
problem(struct rec_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->bad)
		return;             /* the first problem is the one to fix */
	st->bad = true;
	va_start(ap, fmt);
	vsnprintf(st->why, sizeof st->why, fmt, ap);
	va_end(ap);
}

static void
store(struct csv_reader *r, struct rec_state *st, int c)
{
	if (c == 0)
		problem(st, "NUL byte in field %zu", st->nf + 1);
	if (!st->bad)
		r->data[st->used++] = (char)c;
}

static void
end_field(struct csv_reader *r, struct rec_state *st)
{
	size_t start = r->off[st->nf];

	if (st->nf >= r->lim.max_fields) {
		problem(st, "more than %zu fields", r->lim.max_fields);
		return;
	}
	if (!st->bad && !utf8_valid(r->data + start,
	                    st->used - start))
		problem(st, "invalid UTF-8 in field %zu", st->nf + 1);
	if (st->bad)
		return;
	r->data[st->used++] = '\0';
	st->nf++;
	r->off[st->nf] = st->used;
}

enum { S_START, S_UNQUOTED, S_QUOTED, S_QUOTE_SEEN };

int
csv_read(struct csv_reader *r, struct csv_record *rec, struct err *err)
{
	struct rec_state st;
	unsigned long start_line;
	int state, c;
	bool any;

	rec->nfields = 0;
	if (!r->started)
		skip_bom(r);
again:
	memset(&st, 0, sizeof st);
	r->off[0] = 0;
	start_line = r->line;
	rec->line = start_line;
	state = S_START;
	any = false;
	for (;;) {
		if (r->failed) {
			rec->line = r->fail_line;
			return err_set(err, false, "%s", r->fail_msg);
		}
		c = getb(r);
		if (c < 0) {
			if (r->failed)
				continue;           /* reported at the loop top */
			if (state == S_QUOTED) {
				fail(r, start_line, "quoted field not closed "
				    "before end of input");
				continue;
			}
			if (!any)
				return 0;
			break;
		}
		any = true;
		if (c == '\n')
			r->line++;
		if (state == S_QUOTED || (c != '\n' && c != '\r')) {
			if (++st.raw > r->lim.max_record)
				problem(&st, "record longer than %zu bytes",
				    r->lim.max_record);
		}
		if (state == S_QUOTED) {
			if (c == '"')
				state = S_QUOTE_SEEN;
			else
				store(r, &st, c);
			continue;
		}
		if (state == S_QUOTE_SEEN && c == '"') {
			store(r, &st, '"');           /* "" inside quotes */
			state = S_QUOTED;
			continue;
		}
		if (c == ',') {
			end_field(r, &st);
			state = S_START;
			continue;
		}
		if (c == '\n')
			break;
		if (c == '\r') {
			int c2 = getb(r);
			if (c2 == '\n') {
				r->line++;
				break;
			}
			if (c2 >= 0)
				unget(r);
			problem(&st, "carriage return not followed by a line "
			    "feed");
			continue;
		}
		if (state == S_START && c == '"') {
			state = S_QUOTED;
			continue;
		}
		if (state == S_QUOTE_SEEN)
			problem(&st, "text after the closing quote of field "
			    "%zu", st.nf + 1);
		else if (c == '"')
			problem(&st, "quote inside unquoted field %zu (quote "
			    "the whole field and double the quote)", st.nf + 1);
		store(r, &st, c);
		state = S_UNQUOTED;
	}
	end_field(r, &st);
	if (st.bad) {
		rec->line = start_line;
		return err_set(err, false, "%s", st.why);
	}
	if (st.raw == 0 && st.nf == 1)
		goto again;                     /* an empty line */
	rec->nfields = st.nf;
	for (size_t i = 0; i < st.nf; i++) {
		rec->field[i] = r->data + r->off[i];
		rec->len[i] = r->off[i + 1] - r->off[i] - 1;
	}
	return 1;
}
