-- 007_reports.sql: practice_reports (seed 004 client_monthly_reports) and
-- transfer_requests (seed 004 partner_transfer_requests).
--
-- Non-obvious choices:
-- * One report per practice and month (month = first day of the month, in
--   the practice's timezone). "Generate now" for a month that exists
--   replaces the row: the UNIQUE key also makes the report job idempotent.
-- * sha256 is of the PDF bytes; signature is Ed25519 over that hash with the
--   report signing key signing_key_version (printed in the footer, checked
--   by /reports/verify, which looks reports up by sha256).
-- * audit_head_id/_hash: the audit chain head when the report was made.
--   Signed with the report, it anchors the tail of audit_log: deleting the
--   last rows of the chain (which no hash can reveal) shows up against it.
-- * Seed 004 transfers a practice between MSP partners; postern has no
--   partners, so its transfer is a patient moving from one practice to
--   another. Records stay where they were made (retention): completing a
--   transfer creates a new patient in the receiving practice (to_patient_id)
--   instead of changing patients.practice_id, which the tenant-safe
--   composite keys elsewhere would refuse anyway.

CREATE TABLE practice_reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id         bigint NOT NULL REFERENCES practices ON DELETE CASCADE,
    month               date NOT NULL CHECK (extract(day FROM month) = 1),
    pdf                 bytea NOT NULL CHECK (octet_length(pdf) BETWEEN 1 AND 52428800),
    sha256              bytea NOT NULL CHECK (octet_length(sha256) = 32),
    signature           bytea NOT NULL CHECK (octet_length(signature) = 64),
    signing_key_version smallint NOT NULL DEFAULT 1 CHECK (signing_key_version >= 1),
    -- cached figures shown in the web view without opening the PDF
    summary             jsonb NOT NULL DEFAULT '{}'
                        CHECK (jsonb_typeof(summary) = 'object'
                               AND pg_column_size(summary) <= 65536),
    audit_head_id       bigint,
    audit_head_hash     bytea CHECK (octet_length(audit_head_hash) = 32),
    generated_at        timestamptz NOT NULL DEFAULT now(),
    emailed_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (practice_id, month),
    CONSTRAINT practice_reports_audit_head_pair
        CHECK ((audit_head_id IS NULL) = (audit_head_hash IS NULL))
);
-- /reports/verify: "is this PDF one of ours?"
CREATE INDEX practice_reports_sha256_idx ON practice_reports (sha256);

CREATE TABLE transfer_requests (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id              bigint NOT NULL,
    from_practice_id        bigint NOT NULL,
    to_practice_id          bigint NOT NULL REFERENCES practices ON DELETE CASCADE,
    requested_by_staff_id   bigint,          -- staff of the sending practice
    decided_by_staff_id     bigint,          -- staff of the receiving practice
    -- the new record, once completed; no CHECK ties it to status, because
    -- deleting that patient later sets it NULL
    to_patient_id           bigint,
    status                  text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'accepted', 'rejected',
                                              'cancelled', 'completed')),
    reason                  text CHECK (length(reason) <= 2000),
    requested_at            timestamptz NOT NULL DEFAULT now(),
    decided_at              timestamptz,
    completed_at            timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfer_requests_two_practices CHECK (from_practice_id <> to_practice_id),
    CONSTRAINT transfer_requests_decided_dated CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT transfer_requests_completed_dated
        CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    FOREIGN KEY (from_practice_id, patient_id) REFERENCES patients (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (from_practice_id, requested_by_staff_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (requested_by_staff_id),
    FOREIGN KEY (to_practice_id, decided_by_staff_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (decided_by_staff_id),
    FOREIGN KEY (to_practice_id, to_patient_id) REFERENCES patients (practice_id, id)
        ON DELETE SET NULL (to_patient_id)
);
-- at most one open request per patient; also the FK cascade lookup
CREATE UNIQUE INDEX transfer_requests_pending_idx ON transfer_requests (patient_id)
    WHERE status IN ('pending', 'accepted');
CREATE INDEX transfer_requests_patient_idx ON transfer_requests (patient_id);
-- each side's list
CREATE INDEX transfer_requests_from_idx ON transfer_requests (from_practice_id, created_at);
CREATE INDEX transfer_requests_to_idx ON transfer_requests (to_practice_id, created_at);
CREATE INDEX transfer_requests_requested_by_idx ON transfer_requests (requested_by_staff_id)
    WHERE requested_by_staff_id IS NOT NULL;
CREATE INDEX transfer_requests_decided_by_idx ON transfer_requests (decided_by_staff_id)
    WHERE decided_by_staff_id IS NOT NULL;
CREATE INDEX transfer_requests_to_patient_idx ON transfer_requests (to_patient_id)
    WHERE to_patient_id IS NOT NULL;
