-- 002_jobs.sql: the job queue (postern-worker claims, runs and finishes
-- jobs; postern-httpd only enqueues, in the transaction of the change).
-- The statements that use these indexes are in migrations/README.md.
--
-- Non-obvious choices:
-- * Claim order is `ORDER BY priority, run_at, id`: a SMALLER priority runs
--   first (like nice(1)), default 0. Suggested: magic_link -10 (a person is
--   waiting at the login page), notify/events 0, digest/report 10,
--   maintenance 20. Ascending on every column so the plain index below
--   serves it: jobs_fetch_idx scans in claim order, stops after LIMIT rows,
--   and `run_at <= now()` is checked on the index tuple, so jobs waiting
--   for a later run_at cost an index read, never a heap visit.
-- * Two dedupe keys, two rules (enqueue is INSERT … ON CONFLICT DO NOTHING,
--   which covers both indexes; 0 rows inserted = already there):
--   - unique_key: at most one *live* (queued or running) job per key.
--     "Coalesce until started": imap_sync:<mailbox>, maintenance:<task>.
--     Running counts too, so a failed run can go back to queued without
--     colliding with a newer copy; the price is that an enqueue while the
--     job runs is dropped, so such handlers must finish by re-checking (or
--     rely on the periodic poll) instead of trusting the snapshot they
--     started with.
--   - once_key: at most one job per key while the row exists, whatever its
--     state. For work that must never happen twice: digest:<who>:<period>,
--     report:<practice>:<month>, event-keyed mails. A restarted scheduler
--     re-enqueues harmlessly. Dead jobs keep their key (an operator retries
--     the dead row, the scheduler does not spawn a new one). Pruning must
--     keep done rows longer than the longest window (monthly: 32 days);
--     keys name their period, so an old key never comes back after pruning.
-- * lease_token: a fresh value from jobs_lease_token_seq at every claim.
--   Heartbeat, finish and fail all say `WHERE id = $1 AND lease_token = $2
--   AND state = 'running'`; a worker whose lease expired and whose job was
--   reclaimed updates 0 rows and must drop its result.
-- * Bloat (shared/notes/perf-anchors.md): every state change touches the
--   `state` column, which all the partial indexes' predicates mention, so
--   claims and finishes are never HOT updates whatever we do. fillfactor 80
--   still lets the new row version land on the same heap page (one dirty
--   page, not two, and slower heap growth); the partial indexes stay small
--   because a row leaves each one when its state changes; autovacuum runs
--   early and unthrottled on this small, hot table; done jobs are pruned
--   (jobs_finished_idx). Keep claim and finish transactions short: a long
--   transaction anywhere pins dead index entries at the head of the fetch
--   index.
-- * Wake-up: no trigger. The enqueuing transaction runs `NOTIFY
--   postern_jobs` itself (delivered at commit, collapsed per transaction);
--   workers LISTEN and also poll, so a lost notification only costs latency.
-- * kind is checked for shape only (lowercase identifier): kinds belong to
--   the worker's handler table, which dead-letters an unknown kind with a
--   clear error; a closed list would need a migration per handler.
-- * CHECKs here run on every claim/finish UPDATE, so they are all O(1).
--   attempts <= max_attempts is deliberately NOT a constraint: a violation
--   inside a batch claim would fail the whole batch and stall the queue.

CREATE SEQUENCE jobs_lease_token_seq AS bigint;

CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    payload         jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(payload) = 'object'
                           AND pg_column_size(payload) <= 65536),
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'dead')),
    priority        smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    run_at          timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 100),
    lease_until     timestamptz,
    lease_token     bigint,
    locked_by       text CHECK (length(locked_by) <= 128),   -- "host:pid:thread"
    unique_key      text CHECK (length(unique_key) BETWEEN 1 AND 200),
    once_key        text CHECK (length(once_key) BETWEEN 1 AND 200),
    last_error      text CHECK (length(last_error) <= 2000),
    -- one entry per failed attempt: {"at": …, "attempt": n, "error": "…"};
    -- the application keeps it at most max_attempts long
    errors          jsonb NOT NULL DEFAULT '[]'
                    CHECK (jsonb_typeof(errors) = 'array'
                           AND pg_column_size(errors) <= 65536),
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT jobs_running_has_lease
        CHECK (state <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL)),
    CONSTRAINT jobs_finished_iff_final
        CHECK ((state IN ('done', 'dead')) = (finished_at IS NOT NULL))
) WITH (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- claim: only claimable rows, in claim order
CREATE INDEX jobs_fetch_idx ON jobs (priority, run_at, id) WHERE state = 'queued';
-- reaper: leases that ran out (crashed or stuck workers)
CREATE INDEX jobs_running_idx ON jobs (lease_until) WHERE state = 'running';
-- pruning finished jobs by age (state = 'done' AND finished_at < … is implied)
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE state IN ('done', 'dead');
-- idempotent enqueue, see header
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
CREATE UNIQUE INDEX jobs_once_key_idx ON jobs (once_key) WHERE once_key IS NOT NULL;
