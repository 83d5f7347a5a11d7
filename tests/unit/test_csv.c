/* tests/unit/test_csv.c: the CSV reader, one table of cases.
 *
 * Each case reads its input to the end, from memory and again from a file,
 * and renders what came back as one string: "LINE:f1|f2;" for a record,
 * "LINE!message;" for a bad record, then "FAILED" when the reader stopped.
 * Fields show \n, \r, \\ and \| escaped. The expected string is an
 * fnmatch(3) pattern (FNM_NOESCAPE), so long messages can end in '*'. */
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/csv.h"

struct csv_case {
	const char *in;
	size_t len;                 /* 0: strlen(in) */
	struct csv_limits lim;      /* zeros: the LIMIT_CSV_* defaults */
	const char *want;
};

#define C(in, want) { in, 0, { 0, 0, 0 }, want }
#define CL(in, lim, want) { in, 0, lim, want }
#define CN(in, len, want) { in, len, { 0, 0, 0 }, want }

static const struct csv_case cases[] = {
	C("", ""),
	C("a,b,c\n", "1:a|b|c;"),
	C("a,b,c", "1:a|b|c;"),
	C("a,b\r\nc,d\r\n", "1:a|b;2:c|d;"),
	C("a,b\nc,d", "1:a|b;2:c|d;"),
	C("\xEF\xBB\xBF" "email,name\n", "1:email|name;"),
	C("\xEF\xBB\xBF", ""),
	C("\xEF\xBB", "1!invalid UTF-8 in field 1;"),
	C("a\n\xEF\xBB\xBF\n", "1:a;2:\xEF\xBB\xBF;"),
	C("\"a,b\",\"c\"\"d\"\n", "1:a,b|c\"d;"),
	C("\"x\ny\",z\nq\n", "1:x\\ny|z;3:q;"),
	C("\"x\r\ny\"\r\nq\r\n", "1:x\\r\\ny;3:q;"),
	C("\"Lee, Ann\nJr\",ann@x.test\nb,c\n", "1:Lee, Ann\\nJr|ann@x.test;3:b|c;"),
	C(",,\n", "1:||;"),
	C("a,\n", "1:a|;"),
	C("\n\na\n\r\n\nb\n", "3:a;6:b;"),
	C("\"\"\n", "1:;"),
	C("\"\"\"\"\n", "1:\";"),
	C("\"a\"\r\n", "1:a;"),
	C("\"a\"", "1:a;"),
	C(" a , b \n", "1: a | b ;"),
	C("a|b\\c\n", "1:a\\|b\\\\c;"),
	C("a\"b,c\nd\n", "1!quote inside unquoted field 1 *;2:d;"),
	C(" \"a\"\n", "1!quote inside unquoted field 1 *;"),
	C("x,a\"\nd\n", "1!quote inside unquoted field 2 *;2:d;"),
	C("\"a\"b,c\nd\n", "1!text after the closing quote of field 1;2:d;"),
	C("\"a\nb\"x\nc\n", "1!text after the closing quote of field 1;3:c;"),
	C("a\n\"bc\nd\n", "1:a;2!quoted field not closed before end of input;"
	    "FAILED"),
	C("a\rb\nc\n", "1!carriage return not followed by a line feed;2:c;"),
	C("a\r", "1!carriage return not followed by a line feed;"),
	CN("a\0b,c\nd\n", 8, "1!NUL byte in field 1;2:d;"),
	CN("\"\0\"\n", 4, "1!NUL byte in field 1;"),
	C("\xff,x\n", "1!invalid UTF-8 in field 1;"),
	C("x,\xc0\xaf\n", "1!invalid UTF-8 in field 2;"),
	C("\xe0\x80\xaf\n", "1!invalid UTF-8 in field 1;"),
	C("\xed\xa0\x80\n", "1!invalid UTF-8 in field 1;"),
	C("\xf4\x90\x80\x80\n", "1!invalid UTF-8 in field 1;"),
	C("\xe2\x82,x\n", "1!invalid UTF-8 in field 1;"),
	C("\x80\n", "1!invalid UTF-8 in field 1;"),
	C("Jos\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80\n",
	    "1:Jos\xc3\xa9|\xe2\x82\xac|\xf0\x9f\x98\x80;"),
	CL("a,b,c\n", ((struct csv_limits){ 0, 3, 0 }), "1:a|b|c;"),
	CL("a,b,c,d\ne\n", ((struct csv_limits){ 0, 3, 0 }),
	    "1!more than 3 fields;2:e;"),
	CL("a,b,c,\n", ((struct csv_limits){ 0, 3, 0 }), "1!more than 3 fields;"),
	CL("12345678\n", ((struct csv_limits){ 8, 0, 0 }), "1:12345678;"),
	CL("12345678\r\n", ((struct csv_limits){ 8, 0, 0 }), "1:12345678;"),
	CL("\"123456\"\n", ((struct csv_limits){ 8, 0, 0 }), "1:123456;"),
	CL("1234,678\n", ((struct csv_limits){ 8, 0, 0 }), "1:1234|678;"),
	CL("123456789\nab\n", ((struct csv_limits){ 8, 0, 0 }),
	    "1!record longer than 8 bytes;2:ab;"),
	CL("\"1234\n678\"\nab\n", ((struct csv_limits){ 8, 0, 0 }),
	    "1!record longer than 8 bytes;3:ab;"),
	CL("abc\ndefghijkl\n", ((struct csv_limits){ 0, 0, 10 }),
	    "1:abc;2!input larger than 10 bytes;FAILED"),
	CL("abc\ndefgh\n", ((struct csv_limits){ 0, 0, 10 }), "1:abc;2:defgh;"),
};

static void
add_field(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc;
		switch (s[i]) {
		case '\n': rc = buf_adds(out, "\\n"); break;
		case '\r': rc = buf_adds(out, "\\r"); break;
		case '\\': rc = buf_adds(out, "\\\\"); break;
		case '|': rc = buf_adds(out, "\\|"); break;
		default: rc = buf_addc(out, s[i]); break;
		}
		assert_int_equal(rc, 0);
	}
}

/* Reads r to the end; the rendering goes to out. */
static void
render(struct csv_reader *r, struct buf *out)
{
	struct csv_record rec;
	struct err err;
	int rc;

	while ((rc = csv_read(r, &rec, &err)) != 0) {
		if (rc < 0) {
			assert_int_equal(rec.nfields, 0);
			assert_int_equal(buf_printf(out, "%lu!%s;", rec.line,
			    err.msg), 0);
			if (csv_reader_failed(r)) {
				/* stays failed */
				assert_int_equal(csv_read(r, &rec, &err), -1);
				assert_int_equal(buf_adds(out, "FAILED"), 0);
				return;
			}
			continue;
		}
		assert_int_equal(buf_printf(out, "%lu:", rec.line), 0);
		for (size_t i = 0; i < rec.nfields; i++) {
			assert_int_equal(strlen(rec.field[i]), rec.len[i]);
			if (i > 0)
				assert_int_equal(buf_addc(out, '|'), 0);
			add_field(out, rec.field[i], rec.len[i]);
		}
		assert_int_equal(buf_addc(out, ';'), 0);
	}
	assert_false(csv_reader_failed(r));
}

static FILE *
file_with(const void *data, size_t len)
{
	FILE *fp = tmpfile();

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	rewind(fp);
	return fp;
}

static void
check(size_t i, const char *mode, const struct buf *got, const char *want)
{
	if (fnmatch(want, buf_str(got), FNM_NOESCAPE) != 0)
		fail_msg("case %zu (%s):\n got: %s\nwant: %s", i, mode,
		    buf_str(got), want);
}

/* Records spanning the 64 KiB read chunks, and the default record cap. */
static void
test_big(void)
{
	struct buf in, got;
	struct csv_reader *r;
	struct csv_record rec;
	struct err err;
	unsigned long n = 0;
	FILE *fp;
	char *rec4097;

	buf_init(&in, 1 << 22);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(buf_printf(&in, "\"line %d\nsecond, \"\"q\"\"\""
		    ",%d\r\n", i, i), 0);
	fp = file_with(in.data, in.len);
	r = csv_reader_new_file(fp, NULL);
	for (int rc; (rc = csv_read(r, &rec, &err)) == 1; n++) {
		char want[64];
		snprintf(want, sizeof want, "line %lu\nsecond, \"q\"", n);
		assert_int_equal(rec.line, 2 * n + 1);
		assert_int_equal(rec.nfields, 2);
		assert_string_equal(rec.field[0], want);
	}
	assert_int_equal(n, 20000);
	assert_int_equal(csv_reader_offset(r), in.len);
	csv_reader_free(&r);
	assert_null(r);
	csv_reader_free(&r);
	fclose(fp);

	/* LIMIT_CSV_LINE bytes pass, one more does not */
	rec4097 = malloc(LIMIT_CSV_LINE + 3);
	assert_non_null(rec4097);
	memset(rec4097, 'x', LIMIT_CSV_LINE + 1);
	memcpy(rec4097 + LIMIT_CSV_LINE + 1, "\n", 2);
	buf_init(&got, 1 << 16);
	r = csv_reader_new_buf(rec4097 + 1, LIMIT_CSV_LINE + 1, NULL);
	assert_int_equal(csv_read(r, &rec, &err), 1);
	assert_int_equal(rec.len[0], LIMIT_CSV_LINE);
	csv_reader_free(&r);
	r = csv_reader_new_buf(rec4097, LIMIT_CSV_LINE + 2, NULL);
	assert_int_equal(csv_read(r, &rec, &err), -1);
	assert_non_null(strstr(err.msg, "record longer than"));
	assert_int_equal(csv_read(r, &rec, &err), 0);
	csv_reader_free(&r);
	free(rec4097);
	buf_fini(&got);
	buf_fini(&in);
}

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct csv_case *c = &cases[i];
		size_t len = c->len > 0 ? c->len : strlen(c->in);
		struct csv_reader *r;
		struct buf got;
		FILE *fp;

		buf_init(&got, 1 << 16);
		r = csv_reader_new_buf(c->in, len, &c->lim);
		render(r, &got);
		csv_reader_free(&r);
		check(i, "buffer", &got, c->want);

		buf_reset(&got);
		fp = file_with(c->in, len);
		r = csv_reader_new_file(fp, &c->lim);
		render(r, &got);
		csv_reader_free(&r);
		fclose(fp);
		check(i, "file", &got, c->want);
		buf_fini(&got);
	}
	test_big();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
