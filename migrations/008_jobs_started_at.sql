-- 008_jobs_started_at.sql: when the current (or last) attempt of a job
-- started. Set by the claim (its statement's now(): the claim is a short
-- transaction of its own), so queue wait = started_at - run_at and
-- enqueue-to-start latency = started_at - created_at can be read from the
-- table by operators and the queue benchmark. Not indexed: a claim must not
-- write more index entries than it already does.
ALTER TABLE jobs ADD COLUMN started_at timestamptz;
