-- The rest of the domain: invitations, sessions and tokens, Telegram (links,
-- the durable update inbox), the notification outbox, time on site, photos,
-- notes, certificates, defects, quotes, invoices and scheduler claims.
--
-- Tenancy, as in 001: every table that belongs to an organisation carries
-- org_id NOT NULL and has UNIQUE (org_id, id); every foreign key between such
-- tables includes org_id, so no row can point into another organisation.
-- A member is referenced as (org_id, user_id) -> memberships. The few tables
-- that are not organisation-owned say so.
--
-- Unique constraints and indexes that application code may translate into a
-- user message are named explicitly (pgconn.PgError.ConstraintName carries
-- the index name for a partial unique index too).

-- Composite key so that a quote or invoice that names a job must name that
-- job's customer (see quotes/invoices below).
ALTER TABLE jobs ADD CONSTRAINT jobs_org_id_id_customer_id_key UNIQUE (org_id, id, customer_id);

-------------------------------------------------------------------------------
-- Invitations
-------------------------------------------------------------------------------

-- token_hash is SHA-256 of a random token of at least 128 bits; the token
-- itself is only ever in the email. Resend: the old row gets replaced_at now
-- and replaced_by the new row (in one transaction: mark the old one replaced,
-- insert the new one, then set replaced_by), so the old link dies.
CREATE TABLE invitations (
    org_id           bigint NOT NULL REFERENCES organisations (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    email            text NOT NULL,
    role             text NOT NULL,
    -- Per-user overrides to apply on acceptance: {"flag": "all"|"own"|"none"}.
    overrides        jsonb NOT NULL DEFAULT '{}',
    token_hash       bytea NOT NULL,
    invited_by       bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL DEFAULT now() + interval '7 days',
    accepted_at      timestamptz,
    accepted_user_id bigint REFERENCES users (id),
    revoked_at       timestamptz,
    revoked_by       bigint,
    replaced_at      timestamptz,
    replaced_by      bigint,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash),
    CONSTRAINT invitations_email_check
        CHECK (email = lower(btrim(email)) AND email LIKE '%_@_%' AND length(email) <= 254),
    CONSTRAINT invitations_role_check
        CHECK (role IN ('owner','admin','manager','engineer','office_staff','read_only','accountant')),
    CONSTRAINT invitations_overrides_check CHECK (jsonb_typeof(overrides) = 'object'),
    CONSTRAINT invitations_token_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT invitations_expires_after_created CHECK (expires_at > created_at),
    CONSTRAINT invitations_accepted_pair CHECK ((accepted_at IS NULL) = (accepted_user_id IS NULL)),
    CONSTRAINT invitations_revoked_by_needs_at CHECK (revoked_by IS NULL OR revoked_at IS NOT NULL),
    CONSTRAINT invitations_replaced_by_needs_at CHECK (replaced_by IS NULL OR replaced_at IS NOT NULL),
    CONSTRAINT invitations_not_replaced_by_self CHECK (replaced_by <> id),
    -- An invitation ends in one way only.
    CONSTRAINT invitations_one_ending CHECK (num_nonnulls(accepted_at, revoked_at, replaced_at) <= 1),
    FOREIGN KEY (org_id, invited_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, revoked_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, replaced_by) REFERENCES invitations (org_id, id)
);
-- One open invitation per email per organisation. "Open" here is not accepted,
-- revoked or replaced; an expired invitation still holds the slot (an index
-- cannot see now()), so inviting the same email again must first revoke or
-- replace the expired one.
CREATE UNIQUE INDEX invitations_one_pending ON invitations (org_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL AND replaced_at IS NULL;
CREATE INDEX invitations_org_created ON invitations (org_id, created_at DESC, id DESC);
CREATE INDEX invitations_open_expiry ON invitations (expires_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL AND replaced_at IS NULL;

-- The derived status: accepted, revoked, replaced, expired or pending.
-- Pending invitations take a seat.
CREATE VIEW invitations_with_status AS
SELECT i.*,
       CASE
           WHEN i.accepted_at IS NOT NULL THEN 'accepted'
           WHEN i.revoked_at IS NOT NULL THEN 'revoked'
           WHEN i.replaced_at IS NOT NULL THEN 'replaced'
           WHEN i.expires_at <= now() THEN 'expired'
           ELSE 'pending'
       END AS status
FROM invitations i;

-------------------------------------------------------------------------------
-- Sessions, API tokens, recovery codes
-------------------------------------------------------------------------------

-- The durable record of revoked sessions, so that Redis losing data cannot
-- bring a revoked session back. session_id is the session's identifier as
-- the session store keys it (for web sessions a hash of the cookie value,
-- never the cookie itself). A row may be deleted once expires_at (when the
-- session would have died anyway) has passed.
CREATE TABLE sessions_revoked (
    session_id text NOT NULL,
    org_id     bigint NOT NULL REFERENCES organisations (id),
    user_id    bigint NOT NULL,
    channel    text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    -- NULL: the system (member removed, password changed, ...).
    revoked_by bigint,
    reason     text NOT NULL DEFAULT '',
    expires_at timestamptz,
    CONSTRAINT sessions_revoked_pkey PRIMARY KEY (session_id),
    CONSTRAINT sessions_revoked_session_id_check CHECK (length(session_id) BETWEEN 1 AND 200),
    CONSTRAINT sessions_revoked_channel_check CHECK (channel IN ('web','api','telegram')),
    CONSTRAINT sessions_revoked_reason_check CHECK (length(reason) <= 200),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, revoked_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX sessions_revoked_org_user ON sessions_revoked (org_id, user_id, revoked_at DESC);
CREATE INDEX sessions_revoked_expires ON sessions_revoked (expires_at) WHERE expires_at IS NOT NULL;

-- Per-user floor: every session of user_id created before revoked_before is
-- revoked. org_id NULL: in every organisation (sign out everywhere, password
-- change); org_id set: sessions working for that organisation (member
-- removed, session.revoke_all by that organisation's admin). A session is
-- revoked when it was created before the greater of its user's two floors.
-- Upsert: ON CONFLICT (user_id, org_key) DO UPDATE SET revoked_before =
-- GREATEST(user_sessions_floor.revoked_before, EXCLUDED.revoked_before).
CREATE TABLE user_sessions_floor (
    user_id        bigint NOT NULL REFERENCES users (id),
    org_id         bigint REFERENCES organisations (id),
    org_key        bigint GENERATED ALWAYS AS (COALESCE(org_id, 0)) STORED,
    revoked_before timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_sessions_floor_pkey PRIMARY KEY (user_id, org_key),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id)
);

CREATE TABLE api_tokens (
    org_id       bigint NOT NULL REFERENCES organisations (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint NOT NULL,
    name         text NOT NULL,
    token_hash   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    last_used_ip inet,
    revoked_at   timestamptz,
    revoked_by   bigint,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT api_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_expires_after_created CHECK (expires_at IS NULL OR expires_at > created_at),
    CONSTRAINT api_tokens_revoked_by_needs_at CHECK (revoked_by IS NULL OR revoked_at IS NOT NULL),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, revoked_by) REFERENCES memberships (org_id, user_id)
);
-- A member's live tokens have distinct names.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (org_id, user_id, lower(name)) WHERE revoked_at IS NULL;

-- Not organisation-owned: 2FA belongs to the user. code_hash is a 32-byte
-- SHA-256 / HMAC-SHA-256 of the normalised code.
CREATE TABLE recovery_codes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (user_id, code_hash),
    CONSTRAINT recovery_codes_code_hash_check CHECK (octet_length(code_hash) = 32)
);

-------------------------------------------------------------------------------
-- Telegram
-------------------------------------------------------------------------------

-- A Telegram account tied to a member: this is the member's Telegram session.
-- active is false exactly when unlinked_at is set. blocked_at: the user
-- blocked the bot (the link stays, notifications fall back to email).
CREATE TABLE telegram_links (
    org_id           bigint NOT NULL REFERENCES organisations (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    user_id          bigint NOT NULL,
    telegram_user_id bigint NOT NULL,
    chat_id          bigint NOT NULL,
    username         text,
    linked_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz,
    active           boolean NOT NULL DEFAULT true,
    blocked_at       timestamptz,
    unlinked_at      timestamptz,
    unlinked_by      bigint,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT telegram_links_telegram_user_id_check CHECK (telegram_user_id > 0),
    CONSTRAINT telegram_links_username_check CHECK (username IS NULL OR length(username) BETWEEN 1 AND 64),
    CONSTRAINT telegram_links_active_check CHECK (active = (unlinked_at IS NULL)),
    CONSTRAINT telegram_links_unlinked_by_needs_at CHECK (unlinked_by IS NULL OR unlinked_at IS NOT NULL),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, unlinked_by) REFERENCES memberships (org_id, user_id)
);
-- One active link per Telegram account per organisation, and per member.
CREATE UNIQUE INDEX telegram_links_one_active_tg_user ON telegram_links (org_id, telegram_user_id) WHERE active;
CREATE UNIQUE INDEX telegram_links_one_active_member ON telegram_links (org_id, user_id) WHERE active;
-- The bot's hot path: an update arrives with from.id, across organisations.
CREATE INDEX telegram_links_active_by_tg_user ON telegram_links (telegram_user_id) WHERE active;

-- One-time deep-link tokens (t.me/<bot>?start=<token>); token_hash is the
-- SHA-256 of the token.
CREATE TABLE telegram_link_tokens (
    token_hash               bytea NOT NULL,
    org_id                   bigint NOT NULL REFERENCES organisations (id),
    user_id                  bigint NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    expires_at               timestamptz NOT NULL,
    used_at                  timestamptz,
    used_by_telegram_user_id bigint,
    CONSTRAINT telegram_link_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT telegram_link_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT telegram_link_tokens_expires_after_created CHECK (expires_at > created_at),
    CONSTRAINT telegram_link_tokens_used_pair CHECK ((used_at IS NULL) = (used_by_telegram_user_id IS NULL)),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX telegram_link_tokens_org_user ON telegram_link_tokens (org_id, user_id);
CREATE INDEX telegram_link_tokens_expires ON telegram_link_tokens (expires_at);

-- Not organisation-owned: keyed by Telegram account. For an account linked
-- in several organisations, the one the chat currently works for. The bot
-- must still check that an active link to active_org_id exists.
CREATE TABLE telegram_chats (
    telegram_user_id bigint NOT NULL,
    active_org_id    bigint REFERENCES organisations (id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT telegram_chats_pkey PRIMARY KEY (telegram_user_id),
    CONSTRAINT telegram_chats_telegram_user_id_check CHECK (telegram_user_id > 0)
);

-- The durable inbox of Telegram updates. Not organisation-owned: an update
-- arrives before we know which organisation (if any) it is for. The poller
-- inserts with ON CONFLICT (update_id) DO NOTHING and then advances
-- telegram_poll_state.next_offset in the same transaction; workers take
-- pending updates per chat in update_id order.
CREATE TABLE telegram_updates (
    update_id        bigint NOT NULL,
    chat_id          bigint,
    telegram_user_id bigint,
    payload          jsonb NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    done_at          timestamptz,
    CONSTRAINT telegram_updates_pkey PRIMARY KEY (update_id),
    CONSTRAINT telegram_updates_payload_check CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT telegram_updates_status_check CHECK (status IN ('pending','done','failed','set_aside')),
    CONSTRAINT telegram_updates_attempts_check CHECK (attempts >= 0),
    CONSTRAINT telegram_updates_done_at_check CHECK (status <> 'done' OR done_at IS NOT NULL)
);
CREATE INDEX telegram_updates_work ON telegram_updates (status, chat_id, update_id);
CREATE INDEX telegram_updates_received ON telegram_updates (received_at);

-- Single row: the getUpdates offset to ask for next.
CREATE TABLE telegram_poll_state (
    id          smallint NOT NULL DEFAULT 1,
    next_offset bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT telegram_poll_state_pkey PRIMARY KEY (id),
    CONSTRAINT telegram_poll_state_single_row CHECK (id = 1)
);
INSERT INTO telegram_poll_state (id, next_offset) VALUES (1, 0);

-------------------------------------------------------------------------------
-- Notification outbox
-------------------------------------------------------------------------------

-- Written in the same transaction as the change that causes it; a sender
-- delivers rows whose not_before has passed. sent_at or failed_at (gave up)
-- ends a row; a failed Telegram message may be re-queued as an email row.
-- user_id is the recipient member; it is NULL only for an email to someone
-- who is not a member yet (an invitation), addressed by email_to. A payload
-- that carries a secret (an invitation link) should be scrubbed once sent.
CREATE TABLE notifications (
    org_id      bigint NOT NULL REFERENCES organisations (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    user_id     bigint,
    email_to    text,
    channel     text NOT NULL,
    kind        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    dedupe_key  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    not_before  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz,
    failed_at   timestamptz,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT notifications_org_dedupe_key UNIQUE (org_id, dedupe_key),
    CONSTRAINT notifications_channel_check CHECK (channel IN ('telegram','email')),
    CONSTRAINT notifications_kind_check CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' AND length(kind) <= 100),
    CONSTRAINT notifications_payload_check CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT notifications_dedupe_key_check CHECK (dedupe_key IS NULL OR length(dedupe_key) BETWEEN 1 AND 300),
    CONSTRAINT notifications_recipient_check
        CHECK (user_id IS NOT NULL OR (channel = 'email' AND email_to IS NOT NULL)),
    CONSTRAINT notifications_email_to_check
        CHECK (email_to IS NULL OR (email_to LIKE '%_@_%' AND length(email_to) <= 254)),
    CONSTRAINT notifications_attempts_check CHECK (attempts >= 0),
    CONSTRAINT notifications_one_ending CHECK (num_nonnulls(sent_at, failed_at) <= 1),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id)
);
-- The sender's queue (across organisations).
CREATE INDEX notifications_due ON notifications (not_before, id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_org_user ON notifications (org_id, user_id, created_at DESC);

-------------------------------------------------------------------------------
-- Time on site
-------------------------------------------------------------------------------

-- Each engineer's own intervals on a job; the job's duration is the sum over
-- all of them. Location evidence exists only for the two ends; the
-- lat/lng/accuracy/distance/message_at columns are cleared after the
-- organisation's location retention period, keeping the times and flags.
CREATE TABLE time_entries (
    org_id                bigint NOT NULL REFERENCES organisations (id),
    id                    bigint GENERATED ALWAYS AS IDENTITY,
    job_id                bigint NOT NULL,
    user_id               bigint NOT NULL,
    check_in_at           timestamptz NOT NULL,
    check_out_at          timestamptz,
    check_in_lat          double precision,
    check_in_lng          double precision,
    check_in_accuracy_m   double precision,
    check_in_distance_m   double precision,
    check_in_message_at   timestamptz,
    check_in_flags        text[] NOT NULL DEFAULT '{}',
    check_out_lat         double precision,
    check_out_lng         double precision,
    check_out_accuracy_m  double precision,
    check_out_distance_m  double precision,
    check_out_message_at  timestamptz,
    check_out_flags       text[] NOT NULL DEFAULT '{}',
    source                text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    edited_by             bigint,
    edited_at             timestamptz,
    location_purged_at    timestamptz,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT time_entries_check_out_after_check_in CHECK (check_out_at IS NULL OR check_out_at > check_in_at),
    CONSTRAINT time_entries_source_check CHECK (source IN ('telegram','web','manual')),
    CONSTRAINT time_entries_edited_pair CHECK ((edited_by IS NULL) = (edited_at IS NULL)),
    CONSTRAINT time_entries_check_in_lat_check CHECK (check_in_lat BETWEEN -90 AND 90),
    CONSTRAINT time_entries_check_in_lng_check CHECK (check_in_lng BETWEEN -180 AND 180),
    CONSTRAINT time_entries_check_in_point CHECK ((check_in_lat IS NULL) = (check_in_lng IS NULL)),
    CONSTRAINT time_entries_check_in_accuracy_check CHECK (check_in_accuracy_m >= 0),
    CONSTRAINT time_entries_check_in_distance_check CHECK (check_in_distance_m >= 0),
    CONSTRAINT time_entries_check_in_flags_check CHECK (
        check_in_flags <@ ARRAY['off_site','forwarded','stale','poor_accuracy','venue','live']::text[]),
    CONSTRAINT time_entries_check_out_lat_check CHECK (check_out_lat BETWEEN -90 AND 90),
    CONSTRAINT time_entries_check_out_lng_check CHECK (check_out_lng BETWEEN -180 AND 180),
    CONSTRAINT time_entries_check_out_point CHECK ((check_out_lat IS NULL) = (check_out_lng IS NULL)),
    CONSTRAINT time_entries_check_out_accuracy_check CHECK (check_out_accuracy_m >= 0),
    CONSTRAINT time_entries_check_out_distance_check CHECK (check_out_distance_m >= 0),
    CONSTRAINT time_entries_check_out_flags_check CHECK (
        check_out_flags <@ ARRAY['off_site','forwarded','stale','poor_accuracy','venue','live']::text[]),
    -- No check-out evidence on an open entry.
    CONSTRAINT time_entries_open_has_no_check_out CHECK (
        check_out_at IS NOT NULL OR (
            check_out_lat IS NULL AND check_out_accuracy_m IS NULL AND check_out_distance_m IS NULL
            AND check_out_message_at IS NULL AND cardinality(check_out_flags) = 0)),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, edited_by) REFERENCES memberships (org_id, user_id)
);
-- At most one open entry per engineer per job.
CREATE UNIQUE INDEX time_entries_one_open ON time_entries (job_id, user_id) WHERE check_out_at IS NULL;
CREATE INDEX time_entries_org_job ON time_entries (org_id, job_id, check_in_at);
CREATE INDEX time_entries_org_user ON time_entries (org_id, user_id, check_in_at);
-- "Where am I checked in" and forgotten check-outs.
CREATE INDEX time_entries_open ON time_entries (org_id, user_id) WHERE check_out_at IS NULL;
-- Location retention.
CREATE INDEX time_entries_location_held ON time_entries (org_id, check_in_at)
    WHERE check_in_lat IS NOT NULL OR check_out_lat IS NOT NULL;

-------------------------------------------------------------------------------
-- Photos and notes
-------------------------------------------------------------------------------

CREATE TABLE photos (
    org_id           bigint NOT NULL REFERENCES organisations (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    job_id           bigint NOT NULL,
    user_id          bigint NOT NULL,
    sha256           bytea NOT NULL,
    size_bytes       bigint NOT NULL,
    content_type     text NOT NULL,
    storage_key      text NOT NULL,
    telegram_file_id text,
    taken_at         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    deleted_by       bigint,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    UNIQUE (org_id, id, job_id),
    -- The same picture is stored once per job (a deleted one still counts:
    -- sending it again should restore it, not add a second row).
    CONSTRAINT photos_org_job_sha256_key UNIQUE (org_id, job_id, sha256),
    CONSTRAINT photos_sha256_check CHECK (octet_length(sha256) = 32),
    CONSTRAINT photos_size_check CHECK (size_bytes BETWEEN 1 AND 104857600),
    CONSTRAINT photos_content_type_check CHECK (content_type ~ '^image/[a-z0-9.+-]+$' AND length(content_type) <= 100),
    CONSTRAINT photos_storage_key_check CHECK (length(storage_key) BETWEEN 1 AND 500),
    CONSTRAINT photos_telegram_file_id_check CHECK (telegram_file_id IS NULL OR length(telegram_file_id) BETWEEN 1 AND 200),
    CONSTRAINT photos_deleted_by_needs_at CHECK (deleted_by IS NULL OR deleted_at IS NOT NULL),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, deleted_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX photos_org_job ON photos (org_id, job_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX photos_org_user ON photos (org_id, user_id, created_at);

-- A note may carry a photo (a caption becomes a note); the photo must be of
-- the same job.
CREATE TABLE notes (
    org_id     bigint NOT NULL REFERENCES organisations (id),
    id         bigint GENERATED ALWAYS AS IDENTITY,
    job_id     bigint NOT NULL,
    user_id    bigint NOT NULL,
    body       text NOT NULL,
    photo_id   bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT notes_body_check CHECK (length(btrim(body)) >= 1 AND length(body) <= 4000),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, photo_id, job_id) REFERENCES photos (org_id, id, job_id)
);
CREATE INDEX notes_org_job ON notes (org_id, job_id, created_at);

-------------------------------------------------------------------------------
-- Certificates and defects
-------------------------------------------------------------------------------

-- draft -> awaiting_approval -> approved -> issued (a rejection goes back to
-- draft and clears approved_*). data holds the certificate's content.
CREATE TABLE certificates (
    org_id       bigint NOT NULL REFERENCES organisations (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    job_id       bigint NOT NULL,
    type         text NOT NULL,
    status       text NOT NULL DEFAULT 'draft',
    outcome      text,
    data         jsonb NOT NULL DEFAULT '{}',
    created_by   bigint NOT NULL,
    submitted_at timestamptz,
    approved_by  bigint,
    approved_at  timestamptz,
    issued_by    bigint,
    issued_at    timestamptz,
    next_due     date,
    reference    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    UNIQUE (org_id, id, job_id),
    CONSTRAINT certificates_org_reference_key UNIQUE (org_id, reference),
    CONSTRAINT certificates_type_check
        CHECK (type IN ('eicr','eic','minor_works','pat','fire_alarm','gas_safety','emergency_lighting')),
    CONSTRAINT certificates_status_check CHECK (status IN ('draft','awaiting_approval','approved','issued')),
    CONSTRAINT certificates_outcome_check CHECK (outcome IN ('satisfactory','unsatisfactory')),
    CONSTRAINT certificates_data_check CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT certificates_reference_check CHECK (reference IS NULL OR length(btrim(reference)) BETWEEN 1 AND 50),
    CONSTRAINT certificates_submitted_check CHECK (status = 'draft' OR submitted_at IS NOT NULL),
    CONSTRAINT certificates_approved_pair CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CONSTRAINT certificates_approved_check CHECK ((status IN ('approved','issued')) = (approved_at IS NOT NULL)),
    CONSTRAINT certificates_issued_pair CHECK ((issued_by IS NULL) = (issued_at IS NULL)),
    CONSTRAINT certificates_issued_check CHECK ((status = 'issued') = (issued_at IS NOT NULL)),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, approved_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, issued_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX certificates_org_job ON certificates (org_id, job_id);
CREATE INDEX certificates_org_creator ON certificates (org_id, created_by, status);
CREATE INDEX certificates_awaiting ON certificates (org_id, submitted_at) WHERE status = 'awaiting_approval';
-- Renewal reminders.
CREATE INDEX certificates_renewals ON certificates (org_id, next_due) WHERE status = 'issued' AND next_due IS NOT NULL;

-- EICR observation codes C1, C2, C3, FI; gas safety unsafe situations ID
-- (immediately dangerous) and AR (at risk). C1, C2 and FI need a remedial
-- due date. A defect on a certificate belongs to the certificate's job.
CREATE TABLE defects (
    org_id         bigint NOT NULL REFERENCES organisations (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    job_id         bigint NOT NULL,
    certificate_id bigint,
    code           text NOT NULL,
    description    text NOT NULL,
    location       text NOT NULL DEFAULT '',
    logged_by      bigint NOT NULL,
    logged_at      timestamptz NOT NULL DEFAULT now(),
    remedial_due   date,
    resolved_by    bigint,
    resolved_at    timestamptz,
    resolution     text,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT defects_code_check CHECK (code IN ('C1','C2','C3','FI','ID','AR')),
    CONSTRAINT defects_description_check CHECK (length(btrim(description)) >= 1 AND length(description) <= 2000),
    CONSTRAINT defects_location_check CHECK (length(location) <= 200),
    CONSTRAINT defects_remedial_due_required CHECK (code NOT IN ('C1','C2','FI') OR remedial_due IS NOT NULL),
    CONSTRAINT defects_resolved_pair CHECK ((resolved_by IS NULL) = (resolved_at IS NULL)),
    CONSTRAINT defects_resolution_check CHECK (
        resolution IS NULL OR (resolved_at IS NOT NULL AND length(resolution) <= 2000)),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id),
    FOREIGN KEY (org_id, certificate_id, job_id) REFERENCES certificates (org_id, id, job_id),
    FOREIGN KEY (org_id, logged_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, resolved_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX defects_org_job ON defects (org_id, job_id);
CREATE INDEX defects_org_certificate ON defects (org_id, certificate_id) WHERE certificate_id IS NOT NULL;
CREATE INDEX defects_org_logger ON defects (org_id, logged_by, logged_at DESC);
CREATE INDEX defects_open_remedials ON defects (org_id, remedial_due) WHERE resolved_at IS NULL;

-------------------------------------------------------------------------------
-- Quotes and invoices (money in pence)
-------------------------------------------------------------------------------

CREATE TABLE quotes (
    org_id         bigint NOT NULL REFERENCES organisations (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    customer_id    bigint NOT NULL,
    site_id        bigint,
    job_id         bigint,
    reference      text,
    title          text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'draft',
    subtotal_pence bigint NOT NULL DEFAULT 0,
    vat_pence      bigint NOT NULL DEFAULT 0,
    total_pence    bigint NOT NULL DEFAULT 0,
    valid_until    date,
    created_by     bigint NOT NULL,
    approved_by    bigint,
    approved_at    timestamptz,
    sent_at        timestamptz,
    responded_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT quotes_org_reference_key UNIQUE (org_id, reference),
    CONSTRAINT quotes_reference_check CHECK (reference IS NULL OR length(btrim(reference)) BETWEEN 1 AND 50),
    CONSTRAINT quotes_title_check CHECK (length(title) <= 200),
    CONSTRAINT quotes_status_check CHECK (status IN ('draft','approved','sent','accepted','declined')),
    CONSTRAINT quotes_amounts_check
        CHECK (subtotal_pence >= 0 AND vat_pence >= 0 AND total_pence >= 0 AND total_pence = subtotal_pence + vat_pence),
    CONSTRAINT quotes_approved_pair CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CONSTRAINT quotes_approved_check CHECK (status = 'draft' OR approved_at IS NOT NULL),
    CONSTRAINT quotes_sent_check CHECK (status NOT IN ('sent','accepted','declined') OR sent_at IS NOT NULL),
    CONSTRAINT quotes_responded_check CHECK ((status IN ('accepted','declined')) = (responded_at IS NOT NULL)),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    -- The site and the job, when given, are the customer's.
    FOREIGN KEY (org_id, site_id, customer_id) REFERENCES sites (org_id, id, customer_id),
    FOREIGN KEY (org_id, job_id, customer_id) REFERENCES jobs (org_id, id, customer_id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, approved_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX quotes_org_customer ON quotes (org_id, customer_id);
CREATE INDEX quotes_org_status ON quotes (org_id, status, created_at DESC);
CREATE INDEX quotes_org_job ON quotes (org_id, job_id) WHERE job_id IS NOT NULL;

CREATE TABLE quote_lines (
    org_id      bigint NOT NULL,
    quote_id    bigint NOT NULL,
    line_no     integer NOT NULL,
    description text NOT NULL,
    quantity    numeric(12,3) NOT NULL DEFAULT 1,
    unit_pence  bigint NOT NULL,
    vat_rate    text NOT NULL DEFAULT '20',
    CONSTRAINT quote_lines_pkey PRIMARY KEY (quote_id, line_no),
    CONSTRAINT quote_lines_line_no_check CHECK (line_no BETWEEN 1 AND 1000),
    CONSTRAINT quote_lines_description_check CHECK (length(btrim(description)) >= 1 AND length(description) <= 1000),
    CONSTRAINT quote_lines_quantity_check CHECK (quantity > 0),
    -- Negative for a discount line.
    CONSTRAINT quote_lines_unit_pence_check CHECK (unit_pence BETWEEN -100000000000 AND 100000000000),
    CONSTRAINT quote_lines_vat_rate_check CHECK (vat_rate IN ('20','5','0','exempt')),
    FOREIGN KEY (org_id, quote_id) REFERENCES quotes (org_id, id) ON DELETE CASCADE
);

CREATE TABLE invoices (
    org_id          bigint NOT NULL REFERENCES organisations (id),
    id              bigint GENERATED ALWAYS AS IDENTITY,
    customer_id     bigint NOT NULL,
    job_id          bigint,
    quote_id        bigint,
    number          text,
    status          text NOT NULL DEFAULT 'draft',
    issue_date      date,
    due_date        date,
    subtotal_pence  bigint NOT NULL DEFAULT 0,
    vat_pence       bigint NOT NULL DEFAULT 0,
    total_pence     bigint NOT NULL DEFAULT 0,
    xero_invoice_id text,
    approved_by     bigint,
    approved_at     timestamptz,
    posted_at       timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    created_by      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CONSTRAINT invoices_org_number_key UNIQUE (org_id, number),
    CONSTRAINT invoices_org_xero_invoice_id_key UNIQUE (org_id, xero_invoice_id),
    CONSTRAINT invoices_number_check CHECK (number IS NULL OR length(btrim(number)) BETWEEN 1 AND 50),
    CONSTRAINT invoices_status_check CHECK (status IN ('draft','approved','posted','paid','void')),
    CONSTRAINT invoices_dates_check CHECK (due_date IS NULL OR issue_date IS NULL OR due_date >= issue_date),
    CONSTRAINT invoices_amounts_check
        CHECK (subtotal_pence >= 0 AND vat_pence >= 0 AND total_pence >= 0 AND total_pence = subtotal_pence + vat_pence),
    CONSTRAINT invoices_xero_invoice_id_check
        CHECK (xero_invoice_id IS NULL OR (length(xero_invoice_id) BETWEEN 1 AND 100 AND posted_at IS NOT NULL)),
    CONSTRAINT invoices_approved_pair CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CONSTRAINT invoices_posted_check CHECK (status <> 'posted' OR posted_at IS NOT NULL),
    CONSTRAINT invoices_paid_check CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CONSTRAINT invoices_void_check CHECK ((status = 'void') = (voided_at IS NOT NULL)),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, job_id, customer_id) REFERENCES jobs (org_id, id, customer_id),
    FOREIGN KEY (org_id, quote_id) REFERENCES quotes (org_id, id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, approved_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX invoices_org_customer ON invoices (org_id, customer_id);
CREATE INDEX invoices_org_status ON invoices (org_id, status, issue_date DESC);
CREATE INDEX invoices_org_job ON invoices (org_id, job_id) WHERE job_id IS NOT NULL;

CREATE TABLE invoice_lines (
    org_id      bigint NOT NULL,
    invoice_id  bigint NOT NULL,
    line_no     integer NOT NULL,
    description text NOT NULL,
    quantity    numeric(12,3) NOT NULL DEFAULT 1,
    unit_pence  bigint NOT NULL,
    vat_rate    text NOT NULL DEFAULT '20',
    CONSTRAINT invoice_lines_pkey PRIMARY KEY (invoice_id, line_no),
    CONSTRAINT invoice_lines_line_no_check CHECK (line_no BETWEEN 1 AND 1000),
    CONSTRAINT invoice_lines_description_check CHECK (length(btrim(description)) >= 1 AND length(description) <= 1000),
    CONSTRAINT invoice_lines_quantity_check CHECK (quantity > 0),
    -- Negative for a discount line.
    CONSTRAINT invoice_lines_unit_pence_check CHECK (unit_pence BETWEEN -100000000000 AND 100000000000),
    CONSTRAINT invoice_lines_vat_rate_check CHECK (vat_rate IN ('20','5','0','exempt')),
    FOREIGN KEY (org_id, invoice_id) REFERENCES invoices (org_id, id) ON DELETE CASCADE
);

-------------------------------------------------------------------------------
-- Scheduler
-------------------------------------------------------------------------------

-- Not organisation-owned (org_id NULL: a task for the whole service). Each
-- instance claims (task, slot, organisation) with INSERT ... ON CONFLICT DO
-- NOTHING RETURNING; only the instance that got a row runs the task.
CREATE TABLE scheduler_runs (
    task        text NOT NULL,
    slot        timestamptz NOT NULL,
    org_id      bigint REFERENCES organisations (id),
    org_key     bigint GENERATED ALWAYS AS (COALESCE(org_id, 0)) STORED,
    claimed_by  text NOT NULL DEFAULT '',
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text,
    CONSTRAINT scheduler_runs_pkey PRIMARY KEY (task, slot, org_key),
    CONSTRAINT scheduler_runs_task_check CHECK (task ~ '^[a-z][a-z0-9_.]*$' AND length(task) <= 100),
    CONSTRAINT scheduler_runs_claimed_by_check CHECK (length(claimed_by) <= 200)
);
CREATE INDEX scheduler_runs_claimed ON scheduler_runs (claimed_at);

---- create above / drop below ----

DROP TABLE scheduler_runs;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE quote_lines;
DROP TABLE quotes;
DROP TABLE defects;
DROP TABLE certificates;
DROP TABLE notes;
DROP TABLE photos;
DROP TABLE time_entries;
DROP TABLE notifications;
DROP TABLE telegram_poll_state;
DROP TABLE telegram_updates;
DROP TABLE telegram_chats;
DROP TABLE telegram_link_tokens;
DROP TABLE telegram_links;
DROP TABLE recovery_codes;
DROP TABLE api_tokens;
DROP TABLE user_sessions_floor;
DROP TABLE sessions_revoked;
DROP VIEW invitations_with_status;
DROP TABLE invitations;
ALTER TABLE jobs DROP CONSTRAINT jobs_org_id_id_customer_id_key;
