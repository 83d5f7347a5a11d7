/* common/backoff.c: exponential backoff with jitter. */
#include "common/backoff.h"

#include <errno.h>
#include <time.h>

#include "common/crypto.h"

int64_t
backoff_ceiling_ms(unsigned attempt, int64_t base_ms, int64_t max_ms)
{
	int64_t c = base_ms;

	for (unsigned i = 0; i < attempt && c < max_ms; i++)
		c *= 2;
	return c < max_ms ? c : max_ms;
}

int64_t
backoff_delay_ms(unsigned attempt, int64_t base_ms, int64_t max_ms)
{
	int64_t c = backoff_ceiling_ms(attempt, base_ms, max_ms);
	int64_t half = c / 2;
	uint32_t span = (uint32_t)(c - half + 1 > UINT32_MAX ? UINT32_MAX
	                                                     : c - half + 1);

	return half + (int64_t)crypto_random_below(span);
}

void
backoff_sleep_ms(int64_t ms, const volatile int *stop)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		               .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		if (stop != NULL && *stop)
			return;
}
