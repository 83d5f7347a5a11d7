/* tests/bench/queue/latency.c: the enqueue side of make bench-queue's
 * latency figure. Enqueues N single `noop` jobs, one transaction each
 * (BEGIN; INSERT; NOTIFY postern_jobs; COMMIT in one round trip, as an
 * application transaction that enqueues one job would), with a pause of
 * GAP_US microseconds between them (light load). The latency itself is read
 * afterwards from the jobs table (started_at - created_at), so this program
 * only has to keep the enqueue loop tight: one connection for the whole
 * run, no process per job.
 *
 * usage: latency CONNINFO N GAP_US
 * prints: enqueued=N seconds=S (stdout); errors on stderr, exit 1.
 * Built by tests/bench/queue.sh with cc and pkg-config libpq. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

static const char enqueue_sql[] =
    "BEGIN;"
    " INSERT INTO jobs (kind, payload) VALUES ('noop', '{}');"
    " NOTIFY postern_jobs;"
    " COMMIT";

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sends the enqueue transaction and checks every result in it. */
static int
enqueue_one(PGconn *c)
{
	PGresult *r;
	int ok = 1;

	if (!PQsendQuery(c, enqueue_sql)) {
		fprintf(stderr, "latency: send: %s", PQerrorMessage(c));
		return -1;
	}
	while ((r = PQgetResult(c)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "latency: enqueue: %s",
			    PQresultErrorMessage(r));
			ok = 0;
		}
		PQclear(r);
	}
	return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	PGconn *c;
	long n, gap;
	double t0;

	if (argc != 4 || (n = atol(argv[2])) < 1 || (gap = atol(argv[3])) < 0) {
		fprintf(stderr, "usage: latency CONNINFO N GAP_US\n");
		return 2;
	}
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "latency: connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return 1;
	}
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (enqueue_one(c) < 0) {
			PQfinish(c);
			return 1;
		}
		if (gap > 0)
			pause_us(gap);
	}
	printf("enqueued=%ld seconds=%.3f\n", n, now_s() - t0);
	PQfinish(c);
	return 0;
}
