-- 004_auth.sql: invites, login_tokens (magic links, invite links, sender
-- confirmations) and sessions.
--
-- Non-obvious choices:
-- * No token is ever stored: token_hash is a 32-byte keyed hash (libsodium,
--   server key) of the 256-bit token; lookups are by hash, so the UNIQUE
--   index is the lookup index. The same for the short code (code_hash) and
--   the session cookie. csrf_secret is random per session.
-- * Subject = exactly one of staff_user_id / patient_id (two real FKs,
--   CHECK num_nonnulls = 1), CASCADE: tokens and sessions die with the person.
-- * One table for every single-use link, so one consume statement
--   (UPDATE … WHERE used_at IS NULL AND expires_at > now() RETURNING) serves
--   them all. A purpose that points at something carries that FK, and the
--   CHECKs tie each purpose to exactly its column.
-- * Invites pre-create the invitee (staff_users.active = false, or a patient
--   with portal_access = false) so the invite token has a real subject;
--   accepting activates it. invites records who invited whom and what
--   became of it (seed 004 client_invites).
-- * code_attempts is capped in the database (<= 10) as a backstop; the
--   application refuses the code after its own smaller cap (a LIMIT_* in
--   common/limits.h, e.g. 5), and the CHECK makes a runaway loop fail
--   loudly rather than count forever.
-- * sessions has fillfactor 90: last_seen_at is not indexed, so touching it
--   is a HOT update; the app still writes it at most once a minute.

CREATE TABLE invites (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id         bigint NOT NULL REFERENCES practices ON DELETE CASCADE,
    staff_user_id       bigint,
    patient_id          bigint,
    invited_by_staff_id bigint,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
    expires_at          timestamptz NOT NULL,
    accepted_at         timestamptz,
    revoked_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invites_one_subject CHECK (num_nonnulls(staff_user_id, patient_id) = 1),
    CONSTRAINT invites_expiry_after_creation CHECK (expires_at > created_at),
    CONSTRAINT invites_accepted_dated CHECK ((status = 'accepted') = (accepted_at IS NOT NULL)),
    CONSTRAINT invites_revoked_dated CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    FOREIGN KEY (practice_id, staff_user_id) REFERENCES staff_users (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (practice_id, invited_by_staff_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (invited_by_staff_id)
);
-- at most one open invite per person; also the FK cascade lookups
CREATE UNIQUE INDEX invites_pending_staff_idx ON invites (staff_user_id)
    WHERE status = 'pending' AND staff_user_id IS NOT NULL;
CREATE UNIQUE INDEX invites_pending_patient_idx ON invites (patient_id)
    WHERE status = 'pending' AND patient_id IS NOT NULL;
CREATE INDEX invites_staff_idx ON invites (staff_user_id) WHERE staff_user_id IS NOT NULL;
CREATE INDEX invites_patient_idx ON invites (patient_id) WHERE patient_id IS NOT NULL;
CREATE INDEX invites_invited_by_idx ON invites (invited_by_staff_id)
    WHERE invited_by_staff_id IS NOT NULL;
-- admin list of a practice's invites
CREATE INDEX invites_practice_idx ON invites (practice_id, created_at);

CREATE TABLE login_tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    staff_user_id   bigint REFERENCES staff_users ON DELETE CASCADE,
    patient_id      bigint REFERENCES patients ON DELETE CASCADE,
    purpose         text NOT NULL CHECK (purpose IN ('login', 'invite', 'confirm_sender')),
    invite_id       bigint REFERENCES invites ON DELETE CASCADE,
    inbound_mail_id bigint REFERENCES inbound_mail ON DELETE CASCADE,
    -- the same login as a short code typed on another device
    code_hash       bytea CHECK (octet_length(code_hash) = 32),
    code_attempts   smallint NOT NULL DEFAULT 0 CHECK (code_attempts BETWEEN 0 AND 10),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    requested_ip    inet,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT login_tokens_one_subject CHECK (num_nonnulls(staff_user_id, patient_id) = 1),
    CONSTRAINT login_tokens_expiry_after_creation CHECK (expires_at > created_at),
    CONSTRAINT login_tokens_invite_link CHECK ((purpose = 'invite') = (invite_id IS NOT NULL)),
    CONSTRAINT login_tokens_confirm_sender_link
        CHECK ((purpose = 'confirm_sender') = (inbound_mail_id IS NOT NULL)),
    CONSTRAINT login_tokens_confirm_sender_patient
        CHECK (purpose <> 'confirm_sender' OR patient_id IS NOT NULL)
);
-- rate limit per address ("tokens for this person in the last hour") and
-- the short-code lookup (latest unused token of the person); FK cascades
CREATE INDEX login_tokens_staff_idx ON login_tokens (staff_user_id, created_at)
    WHERE staff_user_id IS NOT NULL;
CREATE INDEX login_tokens_patient_idx ON login_tokens (patient_id, created_at)
    WHERE patient_id IS NOT NULL;
-- rate limit per IP
CREATE INDEX login_tokens_ip_idx ON login_tokens (requested_ip, created_at)
    WHERE requested_ip IS NOT NULL;
-- pruning
CREATE INDEX login_tokens_expires_idx ON login_tokens (expires_at);
CREATE INDEX login_tokens_invite_idx ON login_tokens (invite_id) WHERE invite_id IS NOT NULL;
CREATE INDEX login_tokens_inbound_idx ON login_tokens (inbound_mail_id)
    WHERE inbound_mail_id IS NOT NULL;

-- sessions (seed patient_sessions / client_sessions)
CREATE TABLE sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    staff_user_id   bigint REFERENCES staff_users ON DELETE CASCADE,
    patient_id      bigint REFERENCES patients ON DELETE CASCADE,
    csrf_secret     bytea NOT NULL CHECK (octet_length(csrf_secret) = 32),
    ip              inet,
    user_agent      text CHECK (length(user_agent) <= 512),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    CONSTRAINT sessions_one_subject CHECK (num_nonnulls(staff_user_id, patient_id) = 1),
    CONSTRAINT sessions_expiry_after_creation CHECK (expires_at > created_at)
) WITH (fillfactor = 90);
-- "sign out everywhere", role change revokes, FK cascades
CREATE INDEX sessions_staff_idx ON sessions (staff_user_id) WHERE staff_user_id IS NOT NULL;
CREATE INDEX sessions_patient_idx ON sessions (patient_id) WHERE patient_id IS NOT NULL;
-- pruning
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
