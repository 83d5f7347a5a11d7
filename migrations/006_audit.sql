-- 006_audit.sql: audit_log, an append-only hash chain (seed 000
-- patient_activities + seed 004 evidence chain): every login, view of PHI,
-- message, role change. `posternctl audit verify` recomputes the chain.
--
-- Non-obvious choices:
-- * id is the chain position, a natural key assigned by the appender
--   (previous id + 1, 1 for the first row), not an identity: gapless, so a
--   removed row shows as a gap, and the hash covers it. The trigger
--   audit_log_link checks on insert that row id-1 exists and that prev_hash
--   equals its hash; two appenders racing for the same id collide on the
--   primary key, so a fork is impossible even without the lock below.
-- * No foreign keys: the log must outlive what it talks about (a deleted
--   patient, staff user or practice), and an FK action would be an UPDATE,
--   which is refused. actor is (actor_kind, actor_id) for the same reason.
-- * Append-only: UPDATE, DELETE and TRUNCATE raise (42501). Revoking
--   privileges from the application role is deployment's job, not ours;
--   a table owner can still disable triggers, which the chain then exposes.
-- * details is json, not jsonb: json keeps the exact text that was hashed,
--   jsonb re-normalises it (key order, spacing, number forms), which would
--   break verification after any change in normalisation.
-- * The hash is keyed (HMAC), so someone who can write to the database but
--   does not hold the server key cannot rebuild the chain after an edit.
--   The tail is anchored separately: each monthly report stores and signs
--   the chain head (practice_reports.audit_head_id/_hash, 007).
--
-- Canonical encoding (version 1), computed by the application:
--
--   msg  = "postern-audit-v1"            16 ASCII bytes, no terminator
--       || u64(id)
--       || u16(key_version)
--       || i64(created_at)               microseconds since 1970-01-01T00:00:00Z
--       || opt(prev_hash)                32 raw bytes
--       || opt(u64(practice_id))
--       || str(actor_kind)
--       || opt(u64(actor_id))
--       || str(action)
--       || opt(str(object_type))
--       || opt(u64(object_id))
--       || opt(ip)                       0x04 + 4 bytes, or 0x06 + 16 bytes, network order
--       || opt(str(details))             the json text exactly as stored
--   hash = HMAC-SHA-256(K[key_version], msg)
--
--   u16/u64/i64 = big-endian, two's complement; str(s) = u32 big-endian
--   byte length || UTF-8 bytes (no normalisation); opt(x) = 0x00 when the
--   column is NULL, else 0x01 || x. K[v] is the audit subkey number v
--   derived from POSTERN_SERVER_KEY (libsodium crypto_kdf_derive_from_key,
--   context "pstaudit"); key_version lets the key rotate without rewriting
--   history (verify needs every key version still in use).
--
--   Verify reads, in id order:
--     SELECT id, key_version, (extract(epoch FROM created_at) * 1000000)::bigint,
--            prev_hash, practice_id, actor_kind, actor_id, action, object_type,
--            object_id, family(ip), host(ip), details::text, hash
--       FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2;
--   (host(ip) parsed back with inet_pton; details::text of a json column is
--   the stored text byte for byte.)
--
-- Append (READ COMMITTED, as the last statements of the transaction,
-- because the lock is held until commit):
--   SELECT pg_advisory_xact_lock(hashtextextended('postern.audit_log', 0));
--   SELECT id, hash, (extract(epoch FROM now()) * 1000000)::bigint
--     FROM audit_log ORDER BY id DESC LIMIT 1;
--   -- compute id, hash in C; created_at is left to DEFAULT now(), which is
--   -- the same transaction timestamp the SELECT returned
--   INSERT INTO audit_log (id, key_version, prev_hash, practice_id, actor_kind,
--          actor_id, action, object_type, object_id, ip, details, hash) VALUES (…);
-- This serialises audit appends (one chain for the whole installation):
-- appends go one commit at a time, so keep the append last and the
-- transaction short.

CREATE TABLE audit_log (
    id              bigint PRIMARY KEY CHECK (id >= 1),
    key_version     smallint NOT NULL DEFAULT 1 CHECK (key_version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    practice_id     bigint,                        -- NULL: installation-wide event
    actor_kind      text NOT NULL CHECK (actor_kind IN ('staff', 'patient', 'system')),
    actor_id        bigint,
    action          text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,62}$'),  -- login, patient.view …
    object_type     text CHECK (object_type ~ '^[a-z][a-z0-9_]{0,62}$'),     -- patient, patient_message …
    object_id       bigint,
    ip              inet CHECK (masklen(ip) = CASE family(ip) WHEN 4 THEN 32 ELSE 128 END),
    details         json CHECK (json_typeof(details) = 'object'
                                AND octet_length(details::text) <= 16384),
    prev_hash       bytea CHECK (octet_length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT audit_log_genesis CHECK ((id = 1) = (prev_hash IS NULL)),
    CONSTRAINT audit_log_actor CHECK ((actor_kind = 'system') = (actor_id IS NULL)),
    CONSTRAINT audit_log_object CHECK (object_id IS NULL OR object_type IS NOT NULL)
);
-- a practice's log by time (admin view, monthly report)
CREATE INDEX audit_log_practice_idx ON audit_log (practice_id, created_at);
-- everything that happened to one object, e.g. a patient's activity timeline
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id, created_at)
    WHERE object_id IS NOT NULL;
-- everything one person did
CREATE INDEX audit_log_actor_idx ON audit_log (actor_kind, actor_id, created_at)
    WHERE actor_id IS NOT NULL;

CREATE FUNCTION audit_log_link() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
BEGIN
    IF NEW.id = 1 THEN
        RETURN NEW;                 -- prev_hash IS NULL is a CHECK
    END IF;
    SELECT hash INTO prev FROM audit_log WHERE id = NEW.id - 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_log: row % has no predecessor %', NEW.id, NEW.id - 1
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF prev IS DISTINCT FROM NEW.prev_hash THEN
        RAISE EXCEPTION 'audit_log: prev_hash of row % is not the hash of row %',
            NEW.id, NEW.id - 1
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_link();

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
