/* common/db_schema_migrations.h: applying migrations/NNN_name.sql.
 *
 * Files apply in version order, one transaction each, and are recorded in
 * schema_migrations with the SHA-256 of their bytes. A session advisory
 * lock makes concurrent migrators take turns (the second finds nothing to
 * do). An applied file whose bytes changed stops everything: migrations are
 * forward-only, a fix is a new file. */
#ifndef POSTERN_COMMON_DB_SCHEMA_MIGRATIONS_H
#define POSTERN_COMMON_DB_SCHEMA_MIGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/db.h"
#include "common/err.h"

enum migration_state {
	MIGRATION_PENDING,
	MIGRATION_APPLIED,
	MIGRATION_CHANGED,     /* applied, but the file's checksum differs */
	MIGRATION_MISSING,     /* applied, but no such file in the directory */
};

struct migration {
	int version;
	char name[128];        /* file name, e.g. "001_core.sql" */
	char checksum[65];     /* hex SHA-256 of the file ("" when missing) */
	enum migration_state state;
	char applied_at[40];   /* "" when pending */
};

/* Lists files in dir and their state in db (the table is created if need
 * be). *list_r is a heap array the caller frees. Bad file names (not
 * NNN_name.sql) and repeated versions are errors. */
MUST_CHECK int db_schema_migrations_status(struct db *db, const char *dir,
    struct migration **list_r, size_t *n_r, struct err *err);

/* Called before and after each file while applying (done = false/true). */
typedef void migration_progress_fn(const struct migration *m, bool done,
    long ms, void *arg);

/* Applies every pending file under the advisory lock. *applied_r counts
 * them. Refuses (err set, nothing applied) when a file changed. */
MUST_CHECK int db_schema_migrations_apply(struct db *db, const char *dir,
    migration_progress_fn *progress, void *arg, int *applied_r,
    struct err *err);

#endif
