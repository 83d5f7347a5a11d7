/* tests/integration/stack_env.h: what the C integration tests share: the
 * MAILSTACK_* environment the runner exports, and a monotonic clock for
 * bounded polling. Header-only (static functions): each test is one
 * program. A missing variable is a failure, never a skip. */
#ifndef POSTERN_TESTS_STACK_ENV_H
#define POSTERN_TESTS_STACK_ENV_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One variable; NULL (after a FAIL line naming prog) and ++*missing when
 * it is unset or empty. */
static inline const char *
need_env(const char *prog, const char *name, int *missing)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "%s: FAIL: %s is not set (run through "
		    "tests/run.sh)\n", prog, name);
		(*missing)++;
		return NULL;
	}
	return v;
}

/* A port number, or 0 when v is NULL or not one. */
static inline unsigned
port_of(const char *v)
{
	char *end;
	unsigned long p = v ? strtoul(v, &end, 10) : 0;

	return v && *end == '\0' && p > 0 && p < 65536 ? (unsigned)p : 0;
}

#endif
