/* common/db.h: PostgreSQL connections, parameterised queries,
 * transactions and a small pool for httpd's threads.
 *
 * SQL is only ever run with parameters (PQexecParams); the one exception,
 * db_exec_script(), runs our own migration files and takes no values.
 * Errors fill struct err with temp = true when retrying can help
 * (connection lost, serialization failure, deadlock, shutdown, too many
 * connections), from the SQLSTATE. */
#ifndef POSTERN_COMMON_DB_H
#define POSTERN_COMMON_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct db;       /* opaque: one connection */
struct db_pool;  /* opaque: a fixed set of connections shared by threads */

struct db_opts {
	const char *url;           /* libpq URI or key=value; borrowed */
	const char *app_name;      /* application_name, e.g. "postern-worker" */
	int connect_timeout_s;
	int statement_timeout_ms;  /* 0: none */
	int tries;                 /* connection attempts before giving up, >= 1 */
	const volatile int *stop;  /* retries end early when *stop (may be NULL) */
};

/* Connects, retrying with backoff and jitter up to opts->tries times.
 * On failure err->msg says why (password masked), err->temp = true. */
MUST_CHECK int db_open(const struct db_opts *opts, struct db **db_r,
    struct err *err);
void db_close(struct db **dbp);                 /* NULL-safe; sets NULL */

/* The raw connection, for LISTEN/NOTIFY and COPY. Borrowed. */
PGconn *db_conn(struct db *db);
bool db_ok(struct db *db);                      /* connection usable? */
/* Re-establishes a broken connection (same options, with retries). */
MUST_CHECK int db_reconnect(struct db *db, struct err *err);

/* Runs sql with n text parameters (NULL entries are SQL NULL). The result
 * must have status `want` (PGRES_COMMAND_OK or PGRES_TUPLES_OK). On success
 * *res_r owns the result (caller PQclear()s it); res_r may be NULL to drop
 * it. On failure *res_r is NULL and err is set. */
MUST_CHECK int db_query(struct db *db, const char *sql, int n,
    const char *const *params, ExecStatusType want, PGresult **res_r,
    struct err *err);
/* db_query() through a statement prepared once per connection under name:
 * for hot statements, so they are parsed and planned once, not at every
 * call. The same name must always come with the same sql. Mind generic
 * plans: a LIMIT or a filter given as a parameter can make the cached plan
 * much worse than a custom one (see db_jobs_claim). */
MUST_CHECK int db_query_prepared(struct db *db, const char *name,
    const char *sql, int n, const char *const *params, ExecStatusType want,
    PGresult **res_r, struct err *err);

/* db_query_prepared() with some parameters in binary: formats[i] = 1
 * sends params[i] as lengths[i] raw bytes (bytea), 0 as text. Results
 * are text. */
MUST_CHECK int db_query_prepared_bin(struct db *db, const char *name,
    const char *sql, int n, const char *const *params, const int *lengths,
    const int *formats, ExecStatusType want, PGresult **res_r,
    struct err *err);
/* db_query() for commands that return no rows. */
MUST_CHECK int db_cmd(struct db *db, const char *sql, int n,
    const char *const *params, struct err *err);
/* Runs a trusted multi-statement script (migrations only). */
MUST_CHECK int db_exec_script(struct db *db, const char *sql, struct err *err);

MUST_CHECK int db_begin(struct db *db, struct err *err);
MUST_CHECK int db_commit(struct db *db, struct err *err);
/* Rolls back if a transaction is open; errors are logged, not returned,
 * because it runs on paths that are already failing. */
void db_rollback(struct db *db);

/* Runs fn inside BEGIN … COMMIT; rolls back when fn returns -1. Retries the
 * whole transaction up to 3 times on serialization failure or deadlock.
 * Returns fn's result (or -1 with err set). */
MUST_CHECK int db_tx(struct db *db,
    int (*fn)(struct db *db, void *arg, struct err *err), void *arg,
    struct err *err);

/* Whether err came from the database with this SQLSTATE ("23505"). */
bool db_err_is(const struct err *err, const char *sqlstate);

/* Parses a column value; -1 and err set when it is not a number. */
MUST_CHECK int db_get_i64(const PGresult *res, int row, int col,
    int64_t *v_r, struct err *err);

/* Pool of size connections, all opened now. */
MUST_CHECK int db_pool_open(const struct db_opts *opts, int size,
    struct db_pool **pool_r, struct err *err);
void db_pool_close(struct db_pool **poolp);
/* Borrows a connection, waiting up to wait_ms; a broken one is reconnected
 * first. -1 with err->temp when none came free in time. */
MUST_CHECK int db_pool_get(struct db_pool *pool, int wait_ms, struct db **db_r,
    struct err *err);
void db_pool_put(struct db_pool *pool, struct db **dbp); /* sets *dbp NULL */

#endif
