/* common/db.c: libpq connections with retry, checked queries, transactions
 * and a mutex-protected pool. */
#include "common/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/backoff.h"
#include "common/cfg.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"

struct db {
	PGconn *conn;
	char *url;
	char *app_name;
	int connect_timeout_s;
	int statement_timeout_ms;
	int tries;
	const volatile int *stop;
	bool in_tx;
	char **prepared;           /* statement names prepared on conn */
	int nprepared;
};

struct db_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct db **free;      /* stack of idle connections */
	int nfree, size;
};

/* SQLSTATEs worth retrying: connection exceptions (08), serialization
 * failure and deadlock (40001, 40P01), admin/crash shutdown (57P0x),
 * cannot connect now (57P03), too many connections (53300). */
static bool
sqlstate_temp(const char *state)
{
	if (state == NULL)
		return true;             /* no server answer: connection trouble */
	return strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0 || strncmp(state, "57P0", 4) == 0 ||
	    strcmp(state, "53300") == 0;
}

/* One line from libpq's multi-line messages. */
static void
first_line(const char *s, char *out, size_t size)
{
	size_t n = strcspn(s, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static void
forget_prepared(struct db *db)
{
	for (int i = 0; i < db->nprepared; i++)
		free(db->prepared[i]);
	db->nprepared = 0;
}

static int
connect_once(struct db *db, struct err *err)
{
	char timeout[16], stmt[96], line[200], masked[256];
	const char *keys[] = { "dbname", "application_name", "connect_timeout",
		               "options", NULL };
	const char *vals[] = { db->url, db->app_name, timeout, stmt, NULL };

	snprintf(timeout, sizeof timeout, "%d", db->connect_timeout_s);
	snprintf(stmt, sizeof stmt, "-c statement_timeout=%d -c client_min_messages=warning",
	    db->statement_timeout_ms);
	PQfinish(db->conn);
	/* expand_dbname = 1: "dbname" may be a whole URI or conninfo string. */
	db->conn = PQconnectdbParams(keys, vals, 1);
	forget_prepared(db);            /* a new session has none */
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK) {
		db->in_tx = false;
		return 0;
	}
	first_line(db->conn != NULL ? PQerrorMessage(db->conn) : "out of memory",
	    line, sizeof line);
	cfg_mask_url(db->url, masked, sizeof masked);
	return err_set(err, true, "cannot connect to database %.100s: %.140s",
	    masked, line);
}

static int
connect_retry(struct db *db, struct err *err)
{
	char q[300];

	for (int i = 0; i < db->tries; i++) {
		if (connect_once(db, err) == 0) {
			if (i > 0)
				log_info("event=db_connected tries=%d", i + 1);
			return 0;
		}
		if (i + 1 == db->tries || (db->stop != NULL && *db->stop))
			break;
		int64_t ms = backoff_delay_ms((unsigned)i, 200,
		    LIMIT_DB_BACKOFF_MAX_MS);
		log_warn("event=db_connect_retry try=%d wait_ms=%lld err=%s",
		    i + 1, (long long)ms, log_quote(q, sizeof q, err->msg));
		backoff_sleep_ms(ms, db->stop);
	}
	return -1;
}

int
db_open(const struct db_opts *opts, struct db **db_r, struct err *err)
{
	struct db *db = xcalloc(1, sizeof *db);

	db->url = xstrdup(opts->url);
	db->app_name = xstrdup(opts->app_name != NULL ? opts->app_name
	                                              : "postern");
	db->connect_timeout_s = opts->connect_timeout_s > 0
	    ? opts->connect_timeout_s : 5;
	db->statement_timeout_ms = opts->statement_timeout_ms;
	db->tries = opts->tries > 0 ? opts->tries : 1;
	db->stop = opts->stop;
	if (connect_retry(db, err) < 0) {
		db_close(&db);
		return -1;
	}
	*db_r = db;
	return 0;
}

void
db_close(struct db **dbp)
{
	struct db *db = *dbp;

	if (db == NULL)
		return;
	PQfinish(db->conn);
	forget_prepared(db);
	free(db->prepared);
	free(db->url);
	free(db->app_name);
	free(db);
	*dbp = NULL;
}

PGconn *
db_conn(struct db *db)
{
	return db->conn;
}

bool
db_ok(struct db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

int
db_reconnect(struct db *db, struct err *err)
{
	return connect_retry(db, err);
}

static int
result_err(struct db *db, PGresult *res, struct err *err)
{
	const char *state = res != NULL ? PQresultErrorField(res,
	    PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res,
	    PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[200];

	first_line(msg != NULL ? msg : PQerrorMessage(db->conn), line,
	    sizeof line);
	if (!db_ok(db))
		state = NULL;
	return err_set(err, sqlstate_temp(state), "database: %s%s%s", line,
	    state != NULL ? " sqlstate=" : "", state != NULL ? state : "");
}

int
db_query(struct db *db, const char *sql, int n, const char *const *params,
    ExecStatusType want, PGresult **res_r, struct err *err)
{
	PGresult *res;

	if (res_r != NULL)
		*res_r = NULL;
	res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != want) {
		int r = result_err(db, res, err);
		PQclear(res);
		return r;
	}
	if (res_r != NULL)
		*res_r = res;
	else
		PQclear(res);
	return 0;
}

int
db_query_prepared(struct db *db, const char *name, const char *sql, int n,
    const char *const *params, ExecStatusType want, PGresult **res_r,
    struct err *err)
{
	return db_query_prepared_bin(db, name, sql, n, params, NULL, NULL, want,
	    res_r, err);
}

int
db_query_prepared_bin(struct db *db, const char *name, const char *sql, int n,
    const char *const *params, const int *lengths, const int *formats,
    ExecStatusType want, PGresult **res_r, struct err *err)
{
	PGresult *res;
	int i;

	if (res_r != NULL)
		*res_r = NULL;
	for (i = 0; i < db->nprepared; i++)
		if (strcmp(db->prepared[i], name) == 0)
			break;
	if (i == db->nprepared) {
		res = PQprepare(db->conn, name, sql, n, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			int r = result_err(db, res, err);
			PQclear(res);
			return r;
		}
		PQclear(res);
		db->prepared = xrealloc(db->prepared,
		    (size_t)(db->nprepared + 1) * sizeof *db->prepared);
		db->prepared[db->nprepared++] = xstrdup(name);
	}
	res = PQexecPrepared(db->conn, name, n, params, lengths, formats, 0);
	if (res == NULL || PQresultStatus(res) != want) {
		int r = result_err(db, res, err);
		PQclear(res);
		return r;
	}
	if (res_r != NULL)
		*res_r = res;
	else
		PQclear(res);
	return 0;
}

int
db_cmd(struct db *db, const char *sql, int n, const char *const *params,
    struct err *err)
{
	return db_query(db, sql, n, params, PGRES_COMMAND_OK, NULL, err);
}

int
db_exec_script(struct db *db, const char *sql, struct err *err)
{
	PGresult *res = PQexec(db->conn, sql);
	int ret = 0;

	/* PQexec returns the last statement's result; an error stops the
	 * script at the failing statement. */
	if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
	                       PQresultStatus(res) != PGRES_TUPLES_OK))
		ret = result_err(db, res, err);
	PQclear(res);
	return ret;
}

int
db_begin(struct db *db, struct err *err)
{
	if (db_cmd(db, "BEGIN", 0, NULL, err) < 0)
		return -1;
	db->in_tx = true;
	return 0;
}

int
db_commit(struct db *db, struct err *err)
{
	db->in_tx = false;
	return db_cmd(db, "COMMIT", 0, NULL, err);
}

void
db_rollback(struct db *db)
{
	struct err e;
	char q[300];

	if (!db->in_tx && PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	db->in_tx = false;
	if (!db_ok(db))
		return;              /* the server rolled back with the connection */
	if (db_cmd(db, "ROLLBACK", 0, NULL, &e) < 0)
		log_warn("event=db_rollback_failed err=%s",
		    log_quote(q, sizeof q, e.msg));
}

int
db_tx(struct db *db, int (*fn)(struct db *, void *, struct err *), void *arg,
    struct err *err)
{
	int ret = -1;

	for (int attempt = 0; attempt < 3; attempt++) {
		if (db_begin(db, err) < 0)
			return -1;
		ret = fn(db, arg, err);
		if (ret >= 0 && db_commit(db, err) == 0)
			return ret;
		db_rollback(db);
		/* Only serialization failures and deadlocks are worth a rerun
		 * here; a lost connection is the caller's to handle. */
		if (!err->temp || !db_ok(db) ||
		    (!db_err_is(err, "40001") && !db_err_is(err, "40P01")))
			return -1;
		log_info("event=db_tx_retry attempt=%d", attempt + 1);
	}
	return -1;
}

bool
db_err_is(const struct err *err, const char *sqlstate)
{
	/* result_err() ends its messages with " sqlstate=XXXXX". */
	const char *p = strstr(err->msg, " sqlstate=");

	return p != NULL && strncmp(p + 10, sqlstate, 5) == 0 &&
	    (p[15] == '\0' || p[15] == ' ');
}

int
db_get_i64(const PGresult *res, int row, int col, int64_t *v_r,
    struct err *err)
{
	long long v;

	if (PQgetisnull(res, row, col))
		return err_set(err, false, "database: unexpected NULL in "
		    "column %d", col);
	if (parse_i64(PQgetvalue(res, row, col), INT64_MIN, INT64_MAX, &v,
	        err) < 0)
		return -1;
	*v_r = v;
	return 0;
}

int
db_pool_open(const struct db_opts *opts, int size, struct db_pool **pool_r,
    struct err *err)
{
	struct db_pool *pool;

	if (size < 1 || size > LIMIT_DB_POOL)
		return err_set(err, false, "pool size %d outside 1..%d", size,
		    LIMIT_DB_POOL);
	pool = xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->free = xcalloc((size_t)size, sizeof *pool->free);
	pool->size = size;
	for (int i = 0; i < size; i++) {
		if (db_open(opts, &pool->free[i], err) < 0) {
			db_pool_close(&pool);
			return -1;
		}
		pool->nfree++;
	}
	*pool_r = pool;
	return 0;
}

void
db_pool_close(struct db_pool **poolp)
{
	struct db_pool *pool = *poolp;

	if (pool == NULL)
		return;
	for (int i = 0; i < pool->nfree; i++)
		db_close(&pool->free[i]);
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	free(pool->free);
	free(pool);
	*poolp = NULL;
}

int
db_pool_get(struct db_pool *pool, int wait_ms, struct db **db_r,
    struct err *err)
{
	struct timespec until;
	struct db *db = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->mu);
	while (pool->nfree == 0) {
		if (pthread_cond_timedwait(&pool->cv, &pool->mu, &until) ==
		    ETIMEDOUT)
			break;
	}
	if (pool->nfree > 0)
		db = pool->free[--pool->nfree];
	pthread_mutex_unlock(&pool->mu);
	if (db == NULL)
		return err_set(err, true, "database: no pooled connection free "
		    "within %d ms", wait_ms);
	/* Reading what the server sent while the connection sat idle notices
	 * a server that closed it (restart, idle timeout) before we use it.
	 * Twice: libpq returns after the first chunk it reads (the server's
	 * FATAL message) and only sees the end of the stream on the next. */
	if (!db_ok(db) || PQconsumeInput(db->conn) == 0 ||
	    PQconsumeInput(db->conn) == 0 || !db_ok(db)) {
		PQreset(db->conn);
		forget_prepared(db);
		if (!db_ok(db)) {
			err_set(err, true, "database: connection lost and "
			    "reconnect failed");
			db_pool_put(pool, &db);
			return -1;
		}
		log_info("event=db_pool_reconnected");
	}
	*db_r = db;
	return 0;
}

void
db_pool_put(struct db_pool *pool, struct db **dbp)
{
	struct db *db = *dbp;

	if (db == NULL)
		return;
	if (db_ok(db) && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		db_rollback(db);          /* never hand on an open transaction */
	pthread_mutex_lock(&pool->mu);
	pool->free[pool->nfree++] = db;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	*dbp = NULL;
}
