/* common/err.h: how errors travel in postern.
 *
 * Fallible functions return 0 (ok) or -1 (error), or 1/0/-1 for
 * "got one / none / error", and fill a caller-owned struct err. The layer
 * that knows the cause fills it in; the layer that decides (retry, dead job,
 * HTTP status, exit code) logs it once. `temp` is SMTP's 4xx/5xx split:
 * true means "the same call may work later" and drives retries. */
#ifndef POSTERN_COMMON_ERR_H
#define POSTERN_COMMON_ERR_H

#include <stdbool.h>

#define MUST_CHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

#define ERR_MSG_MAX 256

struct err {
	bool temp;              /* retry may help (timeout, 4xx, lost connection) */
	char msg[ERR_MSG_MAX];  /* one line, no secrets; cut at ERR_MSG_MAX - 1 */
};

/* Sets err->temp and formats err->msg (truncating). err may be NULL.
 * Always returns -1 so callers can write `return err_set(err, …);`. */
int err_set(struct err *err, bool temp, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Like err_set(), and appends ": strerror(errno_val)". */
int err_set_errno(struct err *err, bool temp, int errno_val, const char *fmt,
    ...) PRINTF_LIKE(4, 5);

/* Prefixes err->msg with "what: " so outer layers can add context. */
void err_prefix(struct err *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

void err_clear(struct err *err);

/* A broken invariant: log where, then abort() for a core dump. */
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)
NORETURN void bug_at(const char *file, int line, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

/* Startup-only fatal error (bad config, bad command line): logs and exits 1.
 * Library code never calls this after startup. */
NORETURN void die(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
