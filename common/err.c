/* common/err.c: filling struct err, BUG() and die(). */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int
err_set(struct err *err, bool temp, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->temp = temp;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_set_errno(struct err *err, bool temp, int errno_val, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL)
		return -1;
	err->temp = temp;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errno_val));
	return -1;
}

void
err_prefix(struct err *err, const char *fmt, ...)
{
	char joined[2 * ERR_MSG_MAX + 2];
	va_list ap;
	int n;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(joined, ERR_MSG_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= ERR_MSG_MAX)
		n = ERR_MSG_MAX - 1;
	snprintf(joined + n, sizeof joined - (size_t)n, ": %s", err->msg);
	memcpy(err->msg, joined, ERR_MSG_MAX - 1);   /* cut, not overflow */
	err->msg[ERR_MSG_MAX - 1] = '\0';
}

void
err_clear(struct err *err)
{
	if (err == NULL)
		return;
	err->temp = false;
	err->msg[0] = '\0';
}

void
bug_at(const char *file, int line, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX], q[ERR_MSG_MAX + 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("event=bug file=%s line=%d msg=%s", file, line,
	    log_quote(q, sizeof q, msg));
	abort();
}

void
die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_fatal_msg(msg);
	exit(1);
}
