/* common/db_schema_migrations.c: every statement on schema_migrations, and
 * the reading of migration files. Limits: LIMIT_MIGRATIONS files,
 * LIMIT_SQL_FILE bytes each. */
#include "common/db_schema_migrations.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"

/* "post" "mig" as a 64-bit advisory lock key, shared by every migrator. */
#define MIGRATE_LOCK_KEY "8083592425580455527"

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " duration_ms integer NOT NULL DEFAULT 0)";

static int
read_sql(const char *path, struct buf *b, struct err *err)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return err_set_errno(err, false, errno, "%s", path);
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		if (buf_add(b, chunk, (size_t)n) < 0) {
			ret = err_set(err, false, "%s: larger than %d bytes", path,
			    LIMIT_SQL_FILE);
			break;
		}
	if (n < 0)
		ret = err_set_errno(err, false, errno, "%s", path);
	if (ret == 0 && memchr(buf_str(b), '\0', b->len) != NULL)
		ret = err_set(err, false, "%s: NUL byte in file", path);
	close(fd);
	return ret;
}

static int
cmp_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return (x->version > y->version) - (x->version < y->version);
}

/* NNN_name.sql with NNN 1..999 and name [a-z0-9_]+. */
static bool
parse_name(const char *name, int *version_r)
{
	size_t n = strlen(name);
	int v = 0;

	if (n < 9 || n >= sizeof ((struct migration *)0)->name ||
	    !str_has_suffix(name, ".sql"))
		return false;
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)name[i]))
			return false;
		v = v * 10 + (name[i] - '0');
	}
	if (name[3] != '_' || v == 0)
		return false;
	for (size_t i = 4; i < n - 4; i++)
		if (!islower((unsigned char)name[i]) &&
		    !isdigit((unsigned char)name[i]) && name[i] != '_')
			return false;
	*version_r = v;
	return true;
}

static int
scan_dir(const char *dir, struct migration **list_r, size_t *n_r,
    struct err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct migration *list = NULL;
	size_t n = 0;

	if (d == NULL)
		return err_set_errno(err, false, errno, "migrations directory %s",
		    dir);
	while ((de = readdir(d)) != NULL) {
		int v;

		if (!str_has_suffix(de->d_name, ".sql"))
			continue;
		if (!parse_name(de->d_name, &v)) {
			err_set(err, false, "%s/%s: migration files are named "
			    "NNN_name.sql (lower case)", dir, de->d_name);
			goto fail;
		}
		if (n == LIMIT_MIGRATIONS) {
			err_set(err, false, "%s: more than %d migrations", dir,
			    LIMIT_MIGRATIONS);
			goto fail;
		}
		list = xrealloc(list, (n + 1) * sizeof *list);
		memset(&list[n], 0, sizeof list[n]);
		list[n].version = v;
		str_copy(list[n].name, sizeof list[n].name, de->d_name);
		n++;
	}
	closedir(d);
	d = NULL;
	qsort(list, n, sizeof *list, cmp_version);
	for (size_t i = 0; i < n; i++) {
		struct buf b;
		uint8_t sum[32];
		char path[4096];

		if (i > 0 && list[i].version == list[i - 1].version) {
			err_set(err, false, "%s: %s and %s share version %03d",
			    dir, list[i - 1].name, list[i].name, list[i].version);
			goto fail;
		}
		snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
		buf_init(&b, LIMIT_SQL_FILE);
		if (read_sql(path, &b, err) < 0) {
			buf_fini(&b);
			goto fail;
		}
		crypto_sha256(b.data, b.len, sum);
		crypto_hex(sum, sizeof sum, list[i].checksum);
		buf_fini(&b);
	}
	*list_r = list;
	*n_r = n;
	return 0;
fail:
	if (d != NULL)
		closedir(d);
	free(list);
	return -1;
}

int
db_schema_migrations_status(struct db *db, const char *dir,
    struct migration **list_r, size_t *n_r, struct err *err)
{
	static const char sql[] =
	    "SELECT version, name, checksum,"
	    " to_char(applied_at, 'YYYY-MM-DD HH24:MI:SSOF')"
	    " FROM schema_migrations ORDER BY version";
	struct migration *list = NULL;
	PGresult *res = NULL;
	size_t n = 0;

	if (scan_dir(dir, &list, &n, err) < 0)
		return -1;
	if (db_cmd(db, create_sql, 0, NULL, err) < 0 ||
	    db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, &res, err) < 0)
		goto fail;
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t v;
		size_t i;

		if (db_get_i64(res, r, 0, &v, err) < 0)
			goto fail;
		for (i = 0; i < n && list[i].version != v; i++)
			;
		if (i == n) {
			list = xrealloc(list, (n + 1) * sizeof *list);
			memset(&list[n], 0, sizeof list[n]);
			list[n].version = (int)v;
			str_copy(list[n].name, sizeof list[n].name,
			    PQgetvalue(res, r, 1));
			list[n].state = MIGRATION_MISSING;
			n++;
		} else {
			list[i].state = strcmp(list[i].checksum,
			    PQgetvalue(res, r, 2)) == 0 ? MIGRATION_APPLIED
			                                : MIGRATION_CHANGED;
		}
		str_copy(list[i].applied_at, sizeof list[i].applied_at,
		    PQgetvalue(res, r, 3));
	}
	PQclear(res);
	qsort(list, n, sizeof *list, cmp_version);
	*list_r = list;
	*n_r = n;
	return 0;
fail:
	PQclear(res);
	free(list);
	return -1;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L +
	    (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static int
apply_one(struct db *db, const char *dir, struct migration *m, long *ms_r,
    struct err *err)
{
	static const char record_sql[] =
	    "INSERT INTO schema_migrations (version, name, checksum, duration_ms)"
	    " VALUES ($1, $2, $3, $4)";
	char path[4096], version[16], ms[24];
	struct timespec t0;
	struct buf b;
	uint8_t sum[32];
	char hex[65];
	int ret = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(path, sizeof path, "%s/%s", dir, m->name);
	buf_init(&b, LIMIT_SQL_FILE);
	if (read_sql(path, &b, err) < 0)
		goto out;
	crypto_sha256(b.data, b.len, sum);
	crypto_hex(sum, sizeof sum, hex);
	if (strcmp(hex, m->checksum) != 0) {
		err_set(err, false, "%s changed while migrating", m->name);
		goto out;
	}
	if (db_begin(db, err) < 0)
		goto out;
	if (db_exec_script(db, buf_str(&b), err) < 0) {
		err_prefix(err, "%s", m->name);
		goto out;
	}
	snprintf(version, sizeof version, "%d", m->version);
	*ms_r = ms_since(&t0);
	snprintf(ms, sizeof ms, "%ld", *ms_r);
	const char *params[] = { version, m->name, m->checksum, ms };
	if (db_cmd(db, record_sql, 4, params, err) < 0 || db_commit(db, err) < 0)
		goto out;
	m->state = MIGRATION_APPLIED;
	ret = 0;
out:
	if (ret < 0)
		db_rollback(db);
	buf_fini(&b);
	return ret;
}

int
db_schema_migrations_apply(struct db *db, const char *dir,
    migration_progress_fn *progress, void *arg, int *applied_r,
    struct err *err)
{
	static const char lock_sql[] = "SELECT pg_advisory_lock($1)";
	static const char unlock_sql[] = "SELECT pg_advisory_unlock($1)";
	const char *key[] = { MIGRATE_LOCK_KEY };
	struct migration *list = NULL;
	size_t n = 0;
	int ret = -1;
	struct err e2;

	*applied_r = 0;
	/* The lock is per session and outlives the per-file transactions;
	 * a second migrator waits here, then sees everything applied. */
	if (db_query(db, lock_sql, 1, key, PGRES_TUPLES_OK, NULL, err) < 0)
		return -1;
	if (db_schema_migrations_status(db, dir, &list, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (list[i].state == MIGRATION_CHANGED) {
			err_set(err, false, "%s was changed after it was applied "
			    "(checksum differs); migrations are forward-only: "
			    "restore the file and put the change in a new one",
			    list[i].name);
			goto out;
		}
	for (size_t i = 0; i < n; i++) {
		long ms = 0;

		if (list[i].state != MIGRATION_PENDING)
			continue;
		if (progress != NULL)
			progress(&list[i], false, 0, arg);
		if (apply_one(db, dir, &list[i], &ms, err) < 0)
			goto out;
		(*applied_r)++;
		log_info("event=migration_applied version=%d name=%s ms=%ld",
		    list[i].version, list[i].name, ms);
		if (progress != NULL)
			progress(&list[i], true, ms, arg);
	}
	ret = 0;
out:
	if (db_ok(db) &&
	    db_query(db, unlock_sql, 1, key, PGRES_TUPLES_OK, NULL, &e2) < 0)
		log_warn("event=migrate_unlock_failed");
	free(list);
	return ret;
}
