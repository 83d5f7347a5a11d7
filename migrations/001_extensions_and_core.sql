-- 001_extensions_and_core.sql: citext, shared domains, the timezone guard,
-- and the tenant core: practices, staff_users, patients, preferences.
--
-- Applied by the migrator inside one transaction (no BEGIN/COMMIT here).
--
-- Non-obvious choices:
-- * UTF8 only. Length checks count characters and citext folds case per the
--   database encoding; on SQL_ASCII both silently go wrong, so we refuse.
-- * Emails are `email_addr`, a domain over citext: every =, IN and UNIQUE is
--   case-insensitive without anyone remembering lower(). The shape check is
--   deliberately loose (one @, non-empty local part <= 64 and domain, no
--   whitespace or control characters, <= 254): it keeps CR/LF out of mail
--   headers and junk out of the tables; deliverability is the MTA's call.
-- * Free text from outside is bounded here as a backstop to the LIMIT_* caps
--   in common/limits.h; names go through `name_text` (1..200 characters, no
--   control characters, no leading/trailing whitespace).
-- * Timezones: a CHECK may only use immutable expressions, and the tz
--   database is not immutable (a CHECK calling it could fail on restore after
--   a tzdata upgrade). So: the domain `tz_name` checks the *shape* (IANA
--   Area/Location names, UTC, Etc/GMT±N; it rejects abbreviations like EST
--   and POSIX strings like UTC+5, which PostgreSQL would otherwise accept
--   with inverted sign), and the trigger postern_check_timezone() asks the
--   server's tz database at write time (`now() AT TIME ZONE tz` raises
--   22023 for an unknown zone; pg_timezone_names costs ~30 ms per lookup).
--   Rows already stored are not re-checked: readers fall back to the
--   practice zone, then UTC, if a stored zone ever stops resolving.
-- * Tenancy: staff_users and patients carry UNIQUE (practice_id, id) so that
--   child rows can use composite foreign keys (practice_id, patient_id) and
--   (practice_id, staff_user_id): the database itself refuses a message,
--   appointment or task that links a patient of one practice to staff of
--   another. PG15's `ON DELETE SET NULL (col)` nulls only the person column.
--   A patient never changes practice (a transfer creates a new patient row in
--   the receiving practice, see 007), so no ON UPDATE actions are needed.
-- * Deleting: a practice cannot be deleted while it has staff or patients
--   (RESTRICT: it must be deliberate); everything else a practice owns goes
--   with it (CASCADE). Audit rows have no foreign keys at all (006).
-- * Subjects that may be staff or patient (preferences, tokens, sessions,
--   invites) use two nullable FKs with CHECK (num_nonnulls(...) = 1), never a
--   (kind, id) pair: real foreign keys, real cascades.

DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'postern needs a UTF8 database, this one is %',
            current_setting('server_encoding')
            USING HINT = 'createdb -E UTF8 -T template0 (or initdb -E UTF8)';
    END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS citext;

CREATE DOMAIN email_addr AS citext
    CONSTRAINT email_addr_shape CHECK (
        length(VALUE) <= 254
        AND VALUE ~ '^[^@[:space:][:cntrl:]]{1,64}@[^@[:space:][:cntrl:]]+$');

CREATE DOMAIN name_text AS text
    CONSTRAINT name_text_shape CHECK (
        length(VALUE) BETWEEN 1 AND 200
        AND VALUE !~ '[\x01-\x1f\x7f]'
        AND VALUE !~ '^[[:space:]]|[[:space:]]$');

CREATE DOMAIN tz_name AS text
    CONSTRAINT tz_name_shape CHECK (
        length(VALUE) <= 64
        AND VALUE ~ '^(UTC|Etc/GMT[+-]?[0-9]{1,2}|[A-Z][A-Za-z_]*(/[A-Za-z][A-Za-z_-]*){1,2})$');

-- Every table using it names its column `timezone`. Fires only when the
-- column is written (INSERT, or UPDATE OF timezone).
CREATE FUNCTION postern_check_timezone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.timezone IS NOT NULL THEN
        PERFORM now() AT TIME ZONE NEW.timezone;  -- 22023 if unknown
    END IF;
    RETURN NEW;
END
$$;

-- practices (seed 004 client_orgs). Mail identity: mail goes out From
-- from_name <from_address>; replies come back to reply+TOKEN@reply_domain
-- (shared by several practices is fine: the token names the thread).
CREATE TABLE practices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                name_text NOT NULL,
    slug                text NOT NULL UNIQUE
                        CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    timezone            tz_name NOT NULL DEFAULT 'UTC',
    from_address        email_addr NOT NULL,
    from_name           name_text,
    reply_domain        text NOT NULL
                        CHECK (length(reply_domain) <= 253 AND reply_domain ~
                            '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'),
    -- default digest for staff without their own preferences row
    digest_schedule     text NOT NULL DEFAULT 'daily'
                        CHECK (digest_schedule IN ('off', 'daily', 'weekly')),
    digest_hour         smallint NOT NULL DEFAULT 7 CHECK (digest_hour BETWEEN 0 AND 23),
    -- false: mails say "you have a new message" and link; true: the text may
    -- be mailed to patients who also gave email_text_consent.
    phi_in_email        boolean NOT NULL DEFAULT false,
    -- shown on the portal and in auto-acks ("for emergencies call …")
    emergency_text      text CHECK (length(emergency_text) BETWEEN 1 AND 2000),
    -- auto-acknowledge inbound mail with red-flag words with emergency_text
    red_flag_autoack    boolean NOT NULL DEFAULT false,
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT practices_autoack_needs_text
        CHECK (NOT red_flag_autoack OR emergency_text IS NOT NULL)
);

CREATE TRIGGER practices_timezone BEFORE INSERT OR UPDATE OF timezone ON practices
    FOR EACH ROW EXECUTE FUNCTION postern_check_timezone();

-- staff_users (seed 004 client_users, seed 000 users). Role order
-- owner > admin > staff > viewer is enforced by the application.
-- An invited member exists with active = false until the invite is accepted.
CREATE TABLE staff_users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id         bigint NOT NULL REFERENCES practices ON DELETE RESTRICT,
    email               email_addr NOT NULL,
    name                name_text NOT NULL,
    role                text NOT NULL DEFAULT 'staff'
                        CHECK (role IN ('owner', 'admin', 'staff', 'viewer')),
    active              boolean NOT NULL DEFAULT true,
    timezone            tz_name,               -- NULL: the practice's
    last_login_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (practice_id, email),               -- also: login by email per practice
    UNIQUE (practice_id, id)                   -- target of tenant-safe composite FKs
);
-- login by email when the practice is not known from the URL
CREATE INDEX staff_users_email_idx ON staff_users (email);

CREATE TRIGGER staff_users_timezone BEFORE INSERT OR UPDATE OF timezone ON staff_users
    FOR EACH ROW EXECUTE FUNCTION postern_check_timezone();

-- patients (seed 000 contacts + portal fields). Stages are the coaching
-- CRM's; extend the list by migration.
CREATE TABLE patients (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    practice_id         bigint NOT NULL REFERENCES practices ON DELETE RESTRICT,
    email               email_addr NOT NULL,
    first_name          name_text,
    last_name           name_text,
    stage               text NOT NULL DEFAULT 'new'
                        CHECK (stage IN ('new', 'onboarding', 'active', 'maintenance',
                                         'paused', 'discharged')),
    assigned_staff_id   bigint,                -- the coach
    portal_access       boolean NOT NULL DEFAULT false,   -- granted by invite
    -- consent to receive message text by email (the legal record: when)
    email_text_consent     boolean NOT NULL DEFAULT false,
    email_text_consent_at  timestamptz,
    -- bounce state: hard = on the suppression list, banner on the record
    bounce_state        text NOT NULL DEFAULT 'none'
                        CHECK (bounce_state IN ('none', 'soft', 'hard')),
    last_bounce_at      timestamptz,
    last_bounce_reason  text CHECK (length(last_bounce_reason) <= 1000),
    timezone            tz_name,               -- NULL: the practice's
    last_portal_login   timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (practice_id, email),
    UNIQUE (practice_id, id),
    CONSTRAINT patients_has_name CHECK (first_name IS NOT NULL OR last_name IS NOT NULL),
    CONSTRAINT patients_consent_dated
        CHECK (NOT email_text_consent OR email_text_consent_at IS NOT NULL),
    CONSTRAINT patients_bounce_dated CHECK (bounce_state = 'none' OR last_bounce_at IS NOT NULL),
    FOREIGN KEY (practice_id, assigned_staff_id) REFERENCES staff_users (practice_id, id)
        ON DELETE SET NULL (assigned_staff_id)
);
CREATE INDEX patients_email_idx ON patients (email);
-- "my patients" for a coach; also serves the SET NULL when staff are deleted
CREATE INDEX patients_assigned_idx ON patients (assigned_staff_id)
    WHERE assigned_staff_id IS NOT NULL;

CREATE TRIGGER patients_timezone BEFORE INSERT OR UPDATE OF timezone ON patients
    FOR EACH ROW EXECUTE FUNCTION postern_check_timezone();

-- preferences: one row per staff user or patient (no row: practice
-- defaults). Hours are local wall-clock hours in the resolved zone:
-- preferences.timezone, else the person's timezone, else the practice's.
-- Quiet hours are [start, end) and may wrap past midnight (22 -> 7).
-- Consent to message text by email lives on patients (with its timestamp),
-- not here, so there is one source of truth for it.
CREATE TABLE preferences (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_user_id       bigint UNIQUE REFERENCES staff_users ON DELETE CASCADE,
    patient_id          bigint UNIQUE REFERENCES patients ON DELETE CASCADE,
    digest_schedule     text NOT NULL DEFAULT 'daily'
                        CHECK (digest_schedule IN ('off', 'daily', 'weekly')),
    digest_hour         smallint NOT NULL DEFAULT 7 CHECK (digest_hour BETWEEN 0 AND 23),
    digest_weekday      smallint CHECK (digest_weekday BETWEEN 1 AND 7),  -- ISO: 1 = Monday
    timezone            tz_name,
    quiet_start_hour    smallint CHECK (quiet_start_hour BETWEEN 0 AND 23),
    quiet_end_hour      smallint CHECK (quiet_end_hour BETWEEN 0 AND 23),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT preferences_one_subject CHECK (num_nonnulls(staff_user_id, patient_id) = 1),
    CONSTRAINT preferences_weekly_has_weekday
        CHECK (digest_schedule <> 'weekly' OR digest_weekday IS NOT NULL),
    CONSTRAINT preferences_quiet_pair CHECK ((quiet_start_hour IS NULL) = (quiet_end_hour IS NULL)),
    CONSTRAINT preferences_quiet_not_empty
        CHECK (quiet_start_hour <> quiet_end_hour)   -- equal would mean always or never
);

CREATE TRIGGER preferences_timezone BEFORE INSERT OR UPDATE OF timezone ON preferences
    FOR EACH ROW EXECUTE FUNCTION postern_check_timezone();
