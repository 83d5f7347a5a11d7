-- 005_messages.sql: what patients and staff see: patient_messages,
-- patient_notifications, staff_notifications, appointments, tasks.
--
-- Non-obvious choices:
-- * Tenant-safe links: rows carry practice_id and reference
--   patients (practice_id, id) / staff_users (practice_id, id), so a patient
--   of one practice can never be joined to staff of another. A deleted
--   patient takes their messages, notifications, appointments and tasks
--   along (CASCADE); a deleted staff user leaves their messages and
--   appointments behind with the staff column NULL (SET NULL (col)).
-- * Threads: thread_id is the id of the thread's first message (the reply
--   token names it). A BEFORE INSERT trigger sets thread_id = id when none
--   is given, so a thread root needs no second statement and every row has
--   a thread. (patient_id, thread_id) references (patient_id, id): a thread
--   never spans patients. NO ACTION, so deleting a root that has replies
--   fails, while deleting the whole patient (all rows in one statement)
--   works.
-- * body is bounded (1 MiB) as a backstop: the ingester must record a
--   larger text as a clear error (quarantine), never truncate silently.
-- * Message-IDs (domain msgid, 003) are stored without angle brackets;
--   UNIQUE (patient_id, message_id) makes ingest of the same reply twice a
--   conflict rather than a second message.
-- * action_url is a path inside the portal (must start with a single "/"),
--   so a notification can never carry javascript: or an off-site link.
-- * Notifications and tasks: `type`/`kind` are checked for shape only, they
--   name event handlers in the worker; status columns are closed lists.

CREATE TABLE patient_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id     bigint NOT NULL,
    patient_id      bigint NOT NULL,
    staff_user_id   bigint,                  -- author (outbound) or addressee (inbound)
    thread_id       bigint NOT NULL,         -- set by trigger when NULL on insert
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),  -- inbound = from the patient
    channel         text NOT NULL CHECK (channel IN ('web', 'email')),
    subject         text NOT NULL DEFAULT ''
                    CHECK (length(subject) <= 998 AND subject !~ '[\x01-\x1f\x7f]'),
    body            text NOT NULL CHECK (octet_length(body) <= 1048576),
    -- email replies: the trimmed-away quote/signature, and how sure the
    -- trimmer was (low: no separator line and no quote header found)
    elided          text CHECK (octet_length(elided) <= 1048576),
    confidence      text CHECK (confidence IN ('high', 'low')),
    is_read         boolean NOT NULL DEFAULT false,   -- by the receiving side
    message_id      msgid,
    in_reply_to     msgid,
    thread_refs     msgid[] NOT NULL DEFAULT '{}' CHECK (cardinality(thread_refs) <= 100),
    inbound_mail_id bigint REFERENCES inbound_mail ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, id),
    UNIQUE (patient_id, message_id),
    CONSTRAINT patient_messages_confidence_email_in
        CHECK (confidence IS NULL OR (direction = 'inbound' AND channel = 'email')),
    CONSTRAINT patient_messages_elided_email_in
        CHECK (elided IS NULL OR (direction = 'inbound' AND channel = 'email')),
    FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (practice_id, staff_user_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (staff_user_id),
    FOREIGN KEY (patient_id, thread_id) REFERENCES patient_messages (patient_id, id)
);
-- a patient's messages, newest first (patient and staff views)
CREATE INDEX patient_messages_patient_idx ON patient_messages (patient_id, created_at);
-- a thread in order
CREATE INDEX patient_messages_thread_idx ON patient_messages (thread_id, created_at);
-- staff inbox: unread patient messages per practice (tiny: rows leave on read)
CREATE INDEX patient_messages_unread_idx ON patient_messages (practice_id, created_at)
    WHERE direction = 'inbound' AND NOT is_read;
CREATE INDEX patient_messages_staff_idx ON patient_messages (staff_user_id)
    WHERE staff_user_id IS NOT NULL;
CREATE INDEX patient_messages_inbound_mail_idx ON patient_messages (inbound_mail_id)
    WHERE inbound_mail_id IS NOT NULL;

CREATE FUNCTION patient_messages_default_thread() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- identity defaults are applied before BEFORE triggers run
    NEW.thread_id := COALESCE(NEW.thread_id, NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER patient_messages_thread BEFORE INSERT ON patient_messages
    FOR EACH ROW EXECUTE FUNCTION patient_messages_default_thread();

-- patient_notifications (seed 000)
CREATE TABLE patient_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id      bigint NOT NULL REFERENCES patients ON DELETE CASCADE,
    type            text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,49}$'),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    body            text NOT NULL CHECK (length(body) <= 10000),
    is_read         boolean NOT NULL DEFAULT false,
    action_url      text CHECK (length(action_url) <= 2048 AND action_url ~ '^/([^/\\]|$)'
                                AND action_url !~ '[[:space:][:cntrl:]]'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_notifications_patient_idx ON patient_notifications (patient_id, created_at);
-- unread badge / list
CREATE INDEX patient_notifications_unread_idx ON patient_notifications (patient_id, created_at)
    WHERE NOT is_read;

-- staff_notifications (seed 004 client_notifications); patient_id says
-- which record it is about, if any
CREATE TABLE staff_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_user_id   bigint NOT NULL REFERENCES staff_users ON DELETE CASCADE,
    patient_id      bigint REFERENCES patients ON DELETE CASCADE,
    type            text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,49}$'),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    body            text NOT NULL CHECK (length(body) <= 10000),
    is_read         boolean NOT NULL DEFAULT false,
    action_url      text CHECK (length(action_url) <= 2048 AND action_url ~ '^/([^/\\]|$)'
                                AND action_url !~ '[[:space:][:cntrl:]]'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_notifications_staff_idx ON staff_notifications (staff_user_id, created_at);
CREATE INDEX staff_notifications_unread_idx ON staff_notifications (staff_user_id, created_at)
    WHERE NOT is_read;
CREATE INDEX staff_notifications_patient_idx ON staff_notifications (patient_id)
    WHERE patient_id IS NOT NULL;

-- appointments (seed 000). ics_uid and ics_sequence make the iCalendar
-- attachments of confirmation, change and cancellation one event in the
-- patient's calendar (bump ics_sequence on every change that is mailed).
CREATE TABLE appointments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id     bigint NOT NULL,
    patient_id      bigint NOT NULL,
    staff_user_id   bigint,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'requested'
                    CHECK (status IN ('requested', 'confirmed', 'cancelled', 'completed')),
    location        text CHECK (length(location) <= 500),
    notes           text CHECK (length(notes) <= 10000),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    cancelled_at    timestamptz,
    completed_at    timestamptz,
    ics_uid         text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text
                    CHECK (length(ics_uid) <= 255 AND ics_uid !~ '[[:space:][:cntrl:]]'),
    ics_sequence    integer NOT NULL DEFAULT 0 CHECK (ics_sequence >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT appointments_confirmed_dated
        CHECK (status <> 'confirmed' OR confirmed_at IS NOT NULL),
    CONSTRAINT appointments_cancelled_dated
        CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT appointments_completed_dated
        CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (practice_id, staff_user_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (staff_user_id)
);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, starts_at);
-- a staff member's calendar (live appointments only)
CREATE INDEX appointments_staff_idx ON appointments (staff_user_id, starts_at)
    WHERE staff_user_id IS NOT NULL AND status IN ('requested', 'confirmed');
-- requests waiting for a confirmation, per practice
CREATE INDEX appointments_requested_idx ON appointments (practice_id, starts_at)
    WHERE status = 'requested';

-- tasks for staff, mostly created by event handlers (seed 000). An event
-- retried after a crash must not create a second task: UNIQUE
-- (source_message_id, kind) and (appointment_id, kind) let the handler insert
-- with ON CONFLICT DO NOTHING.
CREATE TABLE tasks (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id         bigint NOT NULL REFERENCES practices ON DELETE CASCADE,
    assigned_staff_id   bigint,
    patient_id          bigint,
    kind                text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,49}$'),  -- reply_needed, confirm_appointment …
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'done', 'cancelled')),
    due_at              timestamptz,
    source_message_id   bigint REFERENCES patient_messages ON DELETE SET NULL,
    appointment_id      bigint REFERENCES appointments ON DELETE SET NULL,
    closed_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_closed_dated CHECK ((status = 'open') = (closed_at IS NULL)),
    FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (practice_id, assigned_staff_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (assigned_staff_id)
);
-- "my open tasks", soonest due first (status = 'open' is an equality on the
-- second column); also the lookup for SET NULL when staff are deleted
CREATE INDEX tasks_staff_idx ON tasks (assigned_staff_id, status, due_at)
    WHERE assigned_staff_id IS NOT NULL;
-- the practice's open tasks (incl. unassigned)
CREATE INDEX tasks_open_practice_idx ON tasks (practice_id, created_at)
    WHERE status = 'open';
CREATE INDEX tasks_patient_idx ON tasks (patient_id) WHERE patient_id IS NOT NULL;
-- idempotent task creation per event; also the FK lookups
CREATE UNIQUE INDEX tasks_source_message_idx ON tasks (source_message_id, kind)
    WHERE source_message_id IS NOT NULL;
CREATE UNIQUE INDEX tasks_appointment_idx ON tasks (appointment_id, kind)
    WHERE appointment_id IS NOT NULL;
