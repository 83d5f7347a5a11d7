/* tests/unit/test_cfg.c: the config reader accepts good files and names
 * file:line for every kind of bad one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cfg.h"
#include "common/crypto.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="   /* bytes 0..31 */
#define LONG_VALUE "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct {
	const char *text;
	mode_t mode;
	const char *err;     /* NULL: must load; else a substring of err.msg */
} cases[] = {
	{ "", 0644, NULL },
	{ "[database]\nurl = postgresql://db.example/postern\npool_size = 4\n", 0644, NULL },
	{ "; comment\n# comment\n[worker]\nthreads = 3 ; inline comment\n", 0644, NULL },
	{ "[database]\nurl = x\nbogus = 1\n", 0600, ":3: unknown key \"bogus\" in section [database]" },
	{ "[nosuch]\nkey = 1\n", 0600, ":2: unknown key \"key\" in section [nosuch]" },
	{ "[worker]\nthreads = many\n", 0600, ":2: worker.threads: not a whole number" },
	{ "[worker]\nthreads = 0\n", 0600, ":2: worker.threads: 0 is outside 1..64" },
	{ "[worker]\nthreads = 65\n", 0600, "outside 1..64" },
	{ "[worker]\nthreads = 2\nthreads = 3\n", 0600, ":3: worker.threads given twice" },
	{ "[mail]\nfrom_address = a@b\n  continued\n", 0600, ":3: mail.from_address given twice" },
	{ "[smtp]\ntls = maybe\n", 0600, ":2: smtp.tls: \"maybe\" is not one of required|none" },
	{ "[log]\nlevel = loud\n", 0600, "log.level" },
	{ "[security]\nserver_key = c2hvcnQ=\n", 0600, ":2: security.server_key: server_key must be base64 of exactly 32 bytes" },
	{ "[security]\nserver_key = " KEY "\n", 0644, "holds secrets but group or others may read it" },
	{ "[security]\nserver_key = " KEY "\n", 0600, NULL },
	{ "[smtp]\npassword = hunter2\n", 0640, "holds secrets" },
	{ "[database]\nurl = postgresql://u:pw@h/db\n", 0644, "holds secrets" },
	{ "[database]\nurl = host=h password=pw dbname=d\n", 0604, "holds secrets" },
	{ "[database]\nurl = postgresql://u@h/db\n", 0644, NULL },
	{ "[mail]\nfrom_address = " LONG_VALUE "\n", 0600, ":2: line longer than 190 bytes" },
	{ "just some words\n", 0600, ":1: syntax error" },
	{ "[httpd]\nbase_url = a\tb\n", 0600, "control character" },
	{ "[imap]\nport = 99999\n", 0600, "imap.port" },
	{ "[database]\nurl = \x01\n", 0600, "control character" },
};

static char *
write_cfg(const char *text, mode_t mode)
{
	char *path = strdup("/tmp/postern-test-cfg.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void
test_cases(void **state)
{
	(void)state;
	unsetenv("POSTERN_DATABASE_URL");
	unsetenv("POSTERN_SERVER_KEY");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *path = write_cfg(cases[i].text, cases[i].mode);
		struct cfg cfg;
		struct err err = { 0 };
		int r = cfg_load(&cfg, path, &err);

		if (cases[i].err == NULL) {
			if (r != 0)
				fail_msg("case %zu: unexpected error: %s", i, err.msg);
			cfg_fini(&cfg);
		} else {
			if (r != -1)
				fail_msg("case %zu: loaded, want error [%s]", i,
				    cases[i].err);
			if (strstr(err.msg, cases[i].err) == NULL)
				fail_msg("case %zu: error [%s] lacks [%s]", i,
				    err.msg, cases[i].err);
			if (strstr(err.msg, path) == NULL)
				fail_msg("case %zu: error [%s] names no file", i,
				    err.msg);
		}
		unlink(path);
		free(path);
	}
}

static void
test_values_and_defaults(void **state)
{
	char *path = write_cfg("[database]\nurl = postgresql://h/x\n"
	    "[security]\nserver_key = " KEY "\n[worker]\npoll_ms = 250\n", 0600);
	struct cfg cfg;
	struct err err;

	(void)state;
	unsetenv("POSTERN_DATABASE_URL");
	unsetenv("POSTERN_SERVER_KEY");
	assert_int_equal(cfg_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.database.url, "postgresql://h/x");
	assert_int_equal(cfg.worker.poll_ms, 250);
	assert_int_equal(cfg.worker.threads, 2);           /* default */
	assert_string_equal(cfg.smtp.tls, "required");     /* default */
	assert_true(cfg.security.server_key_set);
	for (int i = 0; i < 32; i++)
		assert_int_equal(cfg.security.server_key[i], i);
	assert_int_equal(cfg_require_server_key(&cfg, &err), 0);
	cfg_fini(&cfg);

	/* The environment wins over the file. */
	setenv("POSTERN_DATABASE_URL", "postgresql://envhost/y", 1);
	assert_int_equal(cfg_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.database.url, "postgresql://envhost/y");
	cfg_fini(&cfg);
	setenv("POSTERN_SERVER_KEY", "bm90IGEga2V5", 1);
	assert_int_equal(cfg_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err.msg, "POSTERN_SERVER_KEY"));
	unsetenv("POSTERN_SERVER_KEY");
	unsetenv("POSTERN_DATABASE_URL");

	/* POSTERN_CONFIG names the file when no path is given. */
	setenv("POSTERN_CONFIG", path, 1);
	assert_int_equal(cfg_load(&cfg, NULL, &err), 0);
	assert_string_equal(cfg.path, path);
	cfg_fini(&cfg);
	unsetenv("POSTERN_CONFIG");
	unlink(path);
	free(path);
}

static void
test_missing_file_and_key(void **state)
{
	char *path = write_cfg("", 0600);
	struct cfg cfg;
	struct err err;

	(void)state;
	unsetenv("POSTERN_SERVER_KEY");
	assert_int_equal(cfg_load(&cfg, "/nonexistent/postern.conf", &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/postern.conf"));
	assert_int_equal(cfg_load(&cfg, path, &err), 0);
	assert_int_equal(cfg_require_server_key(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "no server key"));
	cfg_fini(&cfg);
	unlink(path);
	free(path);
}

static void
test_mask_url(void **state)
{
	static const struct {
		const char *in, *want;
	} m[] = {
		{ "postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db" },
		{ "postgresql://u@h/db", "postgresql://u@h/db" },
		{ "postgresql:///db", "postgresql:///db" },
		{ "host=h password=secret", "(connection string with password=***)" },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		cfg_mask_url(m[i].in, out, sizeof out);
		assert_string_equal(out, m[i].want);
		assert_null(strstr(out, "secret"));
	}
}

static int
setup(void **state)
{
	struct err err;
	(void)state;
	return crypto_init(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_values_and_defaults),
		cmocka_unit_test(test_missing_file_and_key),
		cmocka_unit_test(test_mask_url),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
