/* common/db_login_requests.h: every statement on login_requests, the
 * record of sign-in requests that enqueued a magic_link job, kept for the
 * per-address and per-IP rate limits of POST /login (migration 012 says
 * why a table of its own). */
#ifndef POSTERN_COMMON_DB_LOGIN_REQUESTS_H
#define POSTERN_COMMON_DB_LOGIN_REQUESTS_H

#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

/* Inside the caller's transaction: waits for other requests for the same
 * address (a transaction-scoped advisory lock, so two at once cannot both
 * slip under the limit), then counts the last hour's requests for email
 * (any case) and from ip (NULL: *by_ip_r = 0). */
MUST_CHECK int db_login_requests_count(struct db *db, const char *email,
    const char *ip, int64_t *by_email_r, int64_t *by_ip_r, struct err *err);

/* Records one request that enqueued job_id (ip may be NULL), and deletes
 * rows older than a day (the windows are an hour). */
MUST_CHECK int db_login_requests_insert(struct db *db, const char *email,
    const char *ip, int64_t job_id, struct err *err);

#endif
