/* common/backoff.h: exponential backoff with full jitter.
 *
 * Used for database reconnects now and job retries later: spreading the
 * waits keeps many clients that failed together from retrying together. */
#ifndef POSTERN_COMMON_BACKOFF_H
#define POSTERN_COMMON_BACKOFF_H

#include <stdint.h>

/* The cap for attempt n (0-based): min(max_ms, base_ms * 2^n). */
int64_t backoff_ceiling_ms(unsigned attempt, int64_t base_ms, int64_t max_ms);
/* A delay drawn uniformly from [ceiling/2, ceiling] ("equal jitter"), so
 * waits grow but never collapse to zero. */
int64_t backoff_delay_ms(unsigned attempt, int64_t base_ms, int64_t max_ms);
/* Sleeps ms milliseconds (restarting on EINTR unless *stop becomes true).
 * stop may be NULL. */
void backoff_sleep_ms(int64_t ms, const volatile int *stop);

#endif
