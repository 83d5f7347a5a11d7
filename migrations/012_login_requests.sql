-- 012_login_requests.sql: one row per sign-in request that postern-httpd
-- turned into a magic_link job, for the per-address and per-IP rate limits
-- of POST /login.
--
-- Non-obvious choices:
-- * Why not count login_tokens: the worker makes tokens later (at send
--   time), so a burst of requests would all pass before the first token
--   exists, and an address nobody owns makes no token at all, so requests
--   for unknown addresses would never count against an IP. Why not count
--   jobs: done jobs are deleted. This table is written in the same
--   transaction as the job, so it counts exactly what was enqueued.
-- * The address is stored as typed (normalised), known or not: the row
--   must not tell whether the address belongs to anyone.
-- * Only requests that enqueued a job are stored: a client that keeps
--   hammering past its limit does not push its own window forward, and the
--   table cannot be grown by requests that are refused anyway.
-- * Rows older than a day are useless (the windows are one hour); httpd
--   deletes them as it inserts (login_requests_created_idx).
CREATE TABLE login_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       email_addr NOT NULL,
    ip          inet,
    job_id      bigint,                 -- no FK: done jobs are deleted
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- "requests for this address in the last hour"
CREATE INDEX login_requests_email_idx ON login_requests (email, created_at);
-- "requests from this IP in the last hour"
CREATE INDEX login_requests_ip_idx ON login_requests (ip, created_at) WHERE ip IS NOT NULL;
-- pruning
CREATE INDEX login_requests_created_idx ON login_requests (created_at);
