-- 009_job_probe_runs.sql: one row per run of a `probe` job. Operators
-- enqueue probes (`posternctl jobs enqueue probe '{}'`) to check that
-- workers pick up and finish work end to end; the queue's crash tests use
-- them to count runs (every job done, duplicates bounded by crashes).
-- Rows reference no job (jobs are deleted when done); prune by age.
CREATE TABLE job_probe_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      bigint NOT NULL,
    attempt     integer NOT NULL,
    lease_token bigint NOT NULL,
    worker      text NOT NULL CHECK (length(worker) <= 128),
    tag         text CHECK (length(tag) <= 200),
    ran_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX job_probe_runs_job_idx ON job_probe_runs (job_id);
CREATE INDEX job_probe_runs_ran_at_idx ON job_probe_runs (ran_at);
