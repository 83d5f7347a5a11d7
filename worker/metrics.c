/* worker/metrics.c: Prometheus text on http://metrics_listen:metrics_port/
 * metrics. Counters come from memory; queue depth and the age of the
 * oldest due job come from one query per scrape on a connection of its
 * own (absent, with postern_queue_scrape_ok 0, while the database is away). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/job_kinds.h"
#include "common/log.h"
#include "common/mem.h"
#include "worker/worker.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static const double lat_le[WORKER_LAT_BUCKETS] = {
	0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300,
};

struct metrics_server {
	struct worker *w;
	struct MHD_Daemon *d;
	struct db_pool *pool;
};

int
worker_kind_index(const char *kind)
{
	int n = job_kinds_count();

	for (int i = 0; i < n && i < WORKER_KINDS_MAX; i++)
		if (strcmp(job_kinds[i].name, kind) == 0)
			return i;
	return WORKER_KINDS_MAX;         /* "other" */
}

void
metrics_observe(struct worker *w, int k, int64_t us)
{
	struct kind_metrics *m = &w->metrics[k];

	for (int b = 0; b < WORKER_LAT_BUCKETS; b++)
		if ((double)us / 1e6 <= lat_le[b]) {
			__atomic_fetch_add(&m->lat_bucket[b], 1, __ATOMIC_RELAXED);
			break;
		}
	__atomic_fetch_add(&m->lat_count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->lat_sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

static const char *
kind_name(int k)
{
	return k < job_kinds_count() ? job_kinds[k].name : "other";
}

static int
counter(struct buf *b, struct worker *w, const char *name, const char *help,
    size_t off)
{
	int n = job_kinds_count();

	if (buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help,
	        name) < 0)
		return -1;
	for (int k = 0; k <= WORKER_KINDS_MAX; k++) {
		if (k >= n && k < WORKER_KINDS_MAX)
			continue;
		uint64_t *v = (uint64_t *)(void *)((char *)&w->metrics[k] + off);
		if (buf_printf(b, "%s{kind=\"%s\"} %llu\n", name, kind_name(k),
		        (unsigned long long)LOAD(v)) < 0)
			return -1;
	}
	return 0;
}

struct depth_ctx {
	struct buf *b;
	int rc;
};

static int
depth_row(const struct job_stat *s, void *arg)
{
	struct depth_ctx *c = arg;

	/* kind and state are checked by the schema: [a-z0-9_] only. */
	if (buf_printf(c->b, "postern_queue_jobs{kind=\"%s\",state=\"%s\"} %lld\n",
	        s->kind, s->state, (long long)s->count) < 0 ||
	    (strcmp(s->state, "queued") == 0 &&
	        buf_printf(c->b, "postern_queue_oldest_due_seconds{kind=\"%s\"} "
	            "%.3f\n", s->kind, s->oldest_due_s) < 0))
		c->rc = -1;
	return c->rc;
}

static int
render(struct metrics_server *ms, struct buf *b)
{
	struct worker *w = ms->w;
	struct db *db = NULL;
	struct err err;
	int n = job_kinds_count(), ok = 0;

	if (counter(b, w, "postern_jobs_claimed_total", "Jobs claimed.",
	        offsetof(struct kind_metrics, claimed)) < 0 ||
	    counter(b, w, "postern_jobs_done_total", "Jobs done.",
	        offsetof(struct kind_metrics, done)) < 0 ||
	    counter(b, w, "postern_jobs_failed_total", "Failed attempts.",
	        offsetof(struct kind_metrics, failed)) < 0 ||
	    counter(b, w, "postern_jobs_dead_total", "Jobs that went dead.",
	        offsetof(struct kind_metrics, dead)) < 0 ||
	    counter(b, w, "postern_jobs_refused_total",
	        "Completions refused because the lease was lost.",
	        offsetof(struct kind_metrics, refused)) < 0)
		return -1;
	if (buf_adds(b, "# HELP postern_job_duration_seconds Handler run time.\n"
	        "# TYPE postern_job_duration_seconds histogram\n") < 0)
		return -1;
	for (int k = 0; k <= WORKER_KINDS_MAX; k++) {
		struct kind_metrics *m = &w->metrics[k];
		uint64_t cum = 0;

		if (k >= n && k < WORKER_KINDS_MAX)
			continue;
		for (int i = 0; i < WORKER_LAT_BUCKETS; i++) {
			cum += LOAD(&m->lat_bucket[i]);
			if (buf_printf(b, "postern_job_duration_seconds_bucket{kind="
			        "\"%s\",le=\"%g\"} %llu\n", kind_name(k), lat_le[i],
			        (unsigned long long)cum) < 0)
				return -1;
		}
		if (buf_printf(b, "postern_job_duration_seconds_bucket{kind=\"%s\","
		        "le=\"+Inf\"} %llu\npostern_job_duration_seconds_sum{kind="
		        "\"%s\"} %.6f\npostern_job_duration_seconds_count{kind="
		        "\"%s\"} %llu\n", kind_name(k),
		        (unsigned long long)LOAD(&m->lat_count), kind_name(k),
		        (double)LOAD(&m->lat_sum_us) / 1e6, kind_name(k),
		        (unsigned long long)LOAD(&m->lat_count)) < 0)
			return -1;
	}
	if (buf_printf(b, "# TYPE postern_worker_claims_total counter\n"
	        "postern_worker_claims_total %llu\n"
	        "# TYPE postern_worker_empty_claims_total counter\n"
	        "postern_worker_empty_claims_total %llu\n"
	        "# TYPE postern_worker_db_reconnects_total counter\n"
	        "postern_worker_db_reconnects_total %llu\n",
	        (unsigned long long)LOAD(&w->claims),
	        (unsigned long long)LOAD(&w->empty_claims),
	        (unsigned long long)LOAD(&w->db_reconnects)) < 0)
		return -1;
	if (buf_adds(b, "# HELP postern_queue_jobs Jobs in the table by kind "
	        "and state.\n# TYPE postern_queue_jobs gauge\n"
	        "# TYPE postern_queue_oldest_due_seconds gauge\n") < 0)
		return -1;
	if (db_pool_get(ms->pool, 1000, &db, &err) == 0) {
		struct depth_ctx c = { b, 0 };
		ok = db_jobs_stats(db, depth_row, &c, &err) == 0 && c.rc == 0;
		db_pool_put(ms->pool, &db);
	}
	return buf_printf(b, "# TYPE postern_queue_scrape_ok gauge\n"
	    "postern_queue_scrape_ok %d\n", ok);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	static int first;
	struct metrics_server *ms = cls;
	struct MHD_Response *r;
	struct buf b;
	enum MHD_Result ret;
	unsigned status = 200;

	(void)version;
	(void)upload;
	(void)upload_size;
	if (*con_cls == NULL) {          /* answer on the second call */
		*con_cls = &first;
		return MHD_YES;
	}
	buf_init(&b, 1024 * 1024);
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
		status = 404;
		if (buf_adds(&b, "not found; try /metrics\n") < 0)
			status = 500;
	} else if (render(ms, &b) < 0) {
		status = 500;
	}
	r = MHD_create_response_from_buffer(b.len, b.data != NULL ? b.data : "",
	    MHD_RESPMEM_MUST_COPY);
	buf_fini(&b);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

int
metrics_start(struct worker *w, struct metrics_server **ms_r,
    struct err *err)
{
	struct metrics_server *ms;
	struct sockaddr_in sin;
	struct db_opts o = {
		.url = w->cfg.database.url,
		.app_name = "postern-worker-metrics",
		.connect_timeout_s = w->cfg.database.connect_timeout_s,
		.statement_timeout_ms = 5000,
		.tries = 1,
	};

	*ms_r = NULL;
	if (w->cfg.worker.metrics_port == 0)
		return 0;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)w->cfg.worker.metrics_port);
	if (inet_pton(AF_INET, w->cfg.worker.metrics_listen, &sin.sin_addr) != 1)
		return err_set(err, false, "worker.metrics_listen \"%s\" is not "
		    "an IPv4 address", w->cfg.worker.metrics_listen);
	ms = xcalloc(1, sizeof *ms);
	ms->w = w;
	if (db_pool_open(&o, 1, &ms->pool, err) < 0) {
		free(ms);
		return -1;
	}
	ms->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD,
	    (uint16_t)w->cfg.worker.metrics_port, NULL, NULL, on_request, ms,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_LIMIT, 16u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_END);
	if (ms->d == NULL) {
		db_pool_close(&ms->pool);
		free(ms);
		return err_set(err, false, "cannot listen on %s:%d for /metrics",
		    w->cfg.worker.metrics_listen, w->cfg.worker.metrics_port);
	}
	log_info("event=metrics_listening listen=%s port=%d",
	    w->cfg.worker.metrics_listen, w->cfg.worker.metrics_port);
	*ms_r = ms;
	return 0;
}

void
metrics_stop(struct metrics_server **msp)
{
	struct metrics_server *ms = *msp;

	if (ms == NULL)
		return;
	MHD_stop_daemon(ms->d);
	db_pool_close(&ms->pool);
	free(ms);
	*msp = NULL;
}
