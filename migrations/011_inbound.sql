-- 011_inbound.sql: what the IMAP ingester (imap_sync) keeps besides
-- inbound_mail: the attachments of inbound mail.
--
-- Non-obvious choices:
-- * One row per attachment of an ingested mail, stored or refused:
--   refused ones (type not on the allowlist, over the size cap, past the
--   count cap) keep their name, type and size so staff see that something
--   was sent and why it is not there; data is NULL then.
-- * patient_message_id is set when the mail became a message (directly or
--   after a held mail was confirmed); a quarantined mail's attachments
--   hang on inbound_mail only.
-- * filename is sanitised by the ingester (no path separators, no
--   controls); the CHECK is the backstop.
CREATE TABLE message_attachments (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbound_mail_id     bigint NOT NULL REFERENCES inbound_mail ON DELETE CASCADE,
    patient_message_id  bigint REFERENCES patient_messages ON DELETE CASCADE,
    filename            text NOT NULL CHECK (length(filename) <= 255
                                             AND filename !~ '[\x01-\x1f\x7f/\\]'),
    content_type        text NOT NULL CHECK (length(content_type) <= 255
                                             AND content_type ~ '^[a-z0-9][^[:space:][:cntrl:]/]*/[^[:space:][:cntrl:]/]+$'),
    size                bigint NOT NULL CHECK (size >= 0),
    sha256              bytea CHECK (octet_length(sha256) = 32),
    data                bytea CHECK (octet_length(data) <= 26214400),
    refused             text CHECK (refused IN ('type_not_allowed', 'too_large', 'too_many')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_attachments_stored_or_refused
        CHECK ((data IS NULL) = (refused IS NOT NULL)),
    CONSTRAINT message_attachments_stored_hashed
        CHECK ((data IS NULL) = (sha256 IS NULL))
);
CREATE INDEX message_attachments_mail_idx ON message_attachments (inbound_mail_id);
CREATE INDEX message_attachments_message_idx ON message_attachments (patient_message_id)
    WHERE patient_message_id IS NOT NULL;
