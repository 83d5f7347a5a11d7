-- 003_mail.sql: mail in and out: inbound_mail (every fetched message),
-- mailbox_state (IMAP progress), deliveries (every outgoing mail),
-- suppressions (addresses not to mail).
--
-- Non-obvious choices:
-- * Exactly-once ingest: the inbound_mail rows, whatever they produced
--   (patient_message, notification, task, audit row) and the advance of
--   mailbox_state.last_uid commit in one transaction; only then is the mail
--   flagged/moved on the server. Two guards, both used with
--   INSERT … ON CONFLICT DO NOTHING (a conflict means "already ingested":
--   still advance last_uid, still flag the mail, never abort the batch):
--   - UNIQUE (mailbox, uidvalidity, uid): the IMAP identity.
--   - UNIQUE (mailbox, sha256): the same bytes again, e.g. after the server
--     reset UIDVALIDITY and renumbered everything. The content hash alone
--     is the key, not (message_id, sha256): many bounces and auto-replies
--     have no Message-ID, and NULLs would make a unique index on it useless.
--   The same Message-ID with different bytes (a mail that came two ways) is
--   not caught here; the ingester looks it up (inbound_mail_msgid_idx) and
--   records outcome 'duplicate', so nothing is dropped without a trace.
-- * Outside bytes are bounded but not trusted: from_addr is citext but not
--   email_addr (a malformed From must still be recorded, for quarantine).
--   Message-IDs are stored without angle brackets (domain msgid); one that
--   does not fit is stored as NULL and left in raw.
-- * raw: kept for quarantine/held review, then purged by setting it NULL
--   (raw_purged_at says when). The 25 MiB cap matches LIMIT_MAIL_SIZE; larger
--   mail is recorded as 'rejected' with raw NULL.
-- * deliveries.job_id is ON DELETE SET NULL: jobs are pruned, the delivery
--   log stays (monthly report figures, bounce handling via the VERP address
--   bounce+<delivery id>-<mac>@…).
-- * suppressions: practice_id NULL = for every practice. UNIQUE NULLS NOT
--   DISTINCT (PG15) makes (email, NULL) unique too. Suppressions apply to
--   digests, notifications and reports, never to login mail.

CREATE DOMAIN msgid AS text
    CONSTRAINT msgid_shape CHECK (
        length(VALUE) BETWEEN 3 AND 995
        AND VALUE !~ '[[:space:][:cntrl:]<>]');

-- inbound_mail: every message fetched from a mailbox.
CREATE TABLE inbound_mail (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox         text NOT NULL CHECK (length(mailbox) BETWEEN 1 AND 255),
    uidvalidity     bigint NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
    uid             bigint NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    message_id      msgid,
    sha256          bytea NOT NULL CHECK (octet_length(sha256) = 32),  -- of raw as fetched
    from_addr       citext CHECK (length(from_addr) <= 998
                                  AND from_addr !~ '[\x01-\x1f\x7f]'),
    subject         text CHECK (length(subject) <= 998),             -- decoded, for review
    size            bigint NOT NULL CHECK (size >= 0),               -- as the server reported
    outcome         text NOT NULL
                    CHECK (outcome IN ('message', 'auto_reply', 'bounce', 'quarantined',
                                       'rejected', 'held', 'duplicate')),
    reason          text CHECK (length(reason) <= 500),   -- e.g. token_expired, no_patient
    practice_id     bigint REFERENCES practices ON DELETE SET NULL,
    patient_id      bigint REFERENCES patients ON DELETE SET NULL,
    -- wrong-sender replies: held until the patient confirms via a
    -- confirm_sender login token; on confirm the message is created and
    -- outcome becomes 'message' (hold_state keeps the history).
    hold_state      text CHECK (hold_state IN ('pending', 'confirmed', 'declined', 'expired')),
    hold_decided_at timestamptz,
    raw             bytea CHECK (octet_length(raw) <= 26214400),
    raw_purged_at   timestamptz,
    received_at     timestamptz NOT NULL,                            -- IMAP INTERNALDATE
    created_at      timestamptz NOT NULL DEFAULT now(),              -- when we fetched it
    UNIQUE (mailbox, uidvalidity, uid),
    UNIQUE (mailbox, sha256),
    CONSTRAINT inbound_mail_held_pending
        CHECK (outcome <> 'held' OR (hold_state IS NOT NULL AND hold_state = 'pending')),
    CONSTRAINT inbound_mail_hold_decided
        CHECK ((hold_state IS NULL OR hold_state = 'pending') = (hold_decided_at IS NULL)),
    CONSTRAINT inbound_mail_raw_or_purged CHECK (raw IS NULL OR raw_purged_at IS NULL)
);
-- admin review lists (quarantined, held, rejected …), newest first;
-- 'message' rows, the bulk, stay out of it
CREATE INDEX inbound_mail_review_idx ON inbound_mail (outcome, received_at)
    WHERE outcome <> 'message';
CREATE INDEX inbound_mail_msgid_idx ON inbound_mail (message_id)
    WHERE message_id IS NOT NULL;
-- held mail on a patient's record; SET NULL when a patient is deleted
CREATE INDEX inbound_mail_patient_idx ON inbound_mail (patient_id)
    WHERE patient_id IS NOT NULL;
-- raw purge by age
CREATE INDEX inbound_mail_raw_idx ON inbound_mail (created_at) WHERE raw IS NOT NULL;

-- mailbox_state: advanced in the same transaction as the rows it produced.
-- A new UIDVALIDITY starts a new row at last_uid 0.
CREATE TABLE mailbox_state (
    mailbox         text NOT NULL CHECK (length(mailbox) BETWEEN 1 AND 255),
    uidvalidity     bigint NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
    last_uid        bigint NOT NULL DEFAULT 0 CHECK (last_uid BETWEEN 0 AND 4294967295),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox, uidvalidity)
);

-- deliveries: each outgoing mail, one row per recipient.
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint REFERENCES jobs ON DELETE SET NULL,
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),  -- login, notify, digest …
    practice_id     bigint REFERENCES practices ON DELETE CASCADE,
    patient_id      bigint REFERENCES patients ON DELETE SET NULL,
    staff_user_id   bigint REFERENCES staff_users ON DELETE SET NULL,
    recipient       email_addr NOT NULL,
    message_id      msgid NOT NULL UNIQUE,       -- ours; replies and DSNs point at it
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'deferred', 'bounced', 'failed',
                                     'suppressed')),
    smtp_code       smallint CHECK (smtp_code BETWEEN 200 AND 599),
    enhanced_status text CHECK (enhanced_status ~ '^[245]\.[0-9]{1,3}\.[0-9]{1,3}$'),
    smtp_reply      text CHECK (length(smtp_reply) <= 2000),
    bounce_reason   text CHECK (length(bounce_reason) <= 2000),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    sent_at         timestamptz,
    bounced_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_sent_dated CHECK (state <> 'sent' OR sent_at IS NOT NULL),
    CONSTRAINT deliveries_bounced_dated CHECK (state <> 'bounced' OR bounced_at IS NOT NULL)
);
-- a job's deliveries; also makes pruning jobs (SET NULL) cheap
CREATE INDEX deliveries_job_idx ON deliveries (job_id) WHERE job_id IS NOT NULL;
-- monthly report figures per practice
CREATE INDEX deliveries_practice_idx ON deliveries (practice_id, created_at);
-- "at most one rejection notice per address per day", recent mail to an address
CREATE INDEX deliveries_recipient_idx ON deliveries (recipient, created_at);
CREATE INDEX deliveries_patient_idx ON deliveries (patient_id) WHERE patient_id IS NOT NULL;
CREATE INDEX deliveries_staff_idx ON deliveries (staff_user_id) WHERE staff_user_id IS NOT NULL;

-- suppressions: checked before every non-login mail:
--   WHERE email = $1 AND (practice_id = $2 OR practice_id IS NULL)
CREATE TABLE suppressions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           email_addr NOT NULL,
    practice_id     bigint REFERENCES practices ON DELETE CASCADE,
    reason          text NOT NULL
                    CHECK (reason IN ('hard_bounce', 'complaint', 'manual', 'unsubscribe')),
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),  -- "dsn", "posternctl", …
    delivery_id     bigint REFERENCES deliveries ON DELETE SET NULL,          -- the bounce, if any
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppressions_email_practice_key UNIQUE NULLS NOT DISTINCT (email, practice_id)
);
CREATE INDEX suppressions_practice_idx ON suppressions (practice_id) WHERE practice_id IS NOT NULL;
CREATE INDEX suppressions_delivery_idx ON suppressions (delivery_id) WHERE delivery_id IS NOT NULL;
