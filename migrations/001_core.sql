-- Core of the domain: organisations, users, memberships, customers, sites,
-- jobs, their assignments and the audit log.
--
-- Tenancy: every table that belongs to an organisation carries org_id and
-- has UNIQUE (org_id, id); every foreign key between such tables includes
-- org_id, so no row can point into another organisation.

CREATE TABLE organisations (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                    text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    plan                    text NOT NULL DEFAULT 'starter' CHECK (plan IN ('starter', 'team', 'business')),
    extra_seats             integer NOT NULL DEFAULT 0 CHECK (extra_seats BETWEEN 0 AND 500),
    time_zone               text NOT NULL DEFAULT 'Europe/London',
    geofence_radius_m       integer NOT NULL DEFAULT 250 CHECK (geofence_radius_m BETWEEN 10 AND 5000),
    capacity_amber_pct      integer NOT NULL DEFAULT 70 CHECK (capacity_amber_pct BETWEEN 1 AND 200),
    capacity_red_pct        integer NOT NULL DEFAULT 90 CHECK (capacity_red_pct BETWEEN 1 AND 200),
    require_2fa_roles       text[] NOT NULL DEFAULT '{owner,admin}'
        CHECK (require_2fa_roles <@ ARRAY['owner','admin','manager','engineer','office_staff','read_only','accountant']
               AND require_2fa_roles @> ARRAY['owner','admin']),
    location_retention_days integer NOT NULL DEFAULT 365 CHECK (location_retention_days BETWEEN 30 AND 3650),
    photo_retention_days    integer NOT NULL DEFAULT 2190 CHECK (photo_retention_days BETWEEN 2190 AND 36500),
    audit_seq               bigint NOT NULL DEFAULT 0,
    audit_head              bytea,
    demo                    boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (capacity_amber_pct < capacity_red_pct)
);

-- Only one demo organisation: `fieldops demo` is idempotent through this.
CREATE UNIQUE INDEX organisations_one_demo ON organisations (demo) WHERE demo;

CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL CHECK (email = lower(btrim(email)) AND email LIKE '%_@_%' AND length(email) <= 254),
    name            text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    password_hash   text,
    totp_secret_enc bytea,
    totp_enabled_at timestamptz,
    totp_last_step  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE memberships (
    org_id          bigint NOT NULL REFERENCES organisations (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    role            text NOT NULL CHECK (role IN ('owner','admin','manager','engineer','office_staff','read_only','accountant')),
    -- Per-user overrides: {"flag": "all"|"own"|"none"}.
    overrides       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(overrides) = 'object'),
    -- Working minutes per weekday, Monday first (default 8 h Monday to Friday).
    working_minutes integer[] NOT NULL DEFAULT '{480,480,480,480,480,0,0}'
        CHECK (cardinality(working_minutes) = 7 AND 0 <= ALL (working_minutes) AND 1440 >= ALL (working_minutes)),
    colour          text NOT NULL DEFAULT '#2563eb' CHECK (colour ~ '^#[0-9a-f]{6}$'),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    last_seen_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    PRIMARY KEY (org_id, user_id),
    CHECK ((status = 'removed') = (removed_at IS NOT NULL))
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE customers (
    org_id     bigint NOT NULL REFERENCES organisations (id),
    id         bigint GENERATED ALWAYS AS IDENTITY,
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    email      text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    phone      text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    notes      text NOT NULL DEFAULT '' CHECK (length(notes) <= 4000),
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX customers_org_name ON customers (org_id, lower(name), id) WHERE deleted_at IS NULL;

CREATE TABLE sites (
    org_id              bigint NOT NULL REFERENCES organisations (id),
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    customer_id         bigint NOT NULL,
    name                text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    address             text NOT NULL CHECK (length(btrim(address)) BETWEEN 1 AND 500),
    postcode            text NOT NULL DEFAULT '' CHECK (length(postcode) <= 10),
    latitude            double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude           double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    property_type       text NOT NULL DEFAULT 'owner_occupied'
        CHECK (property_type IN ('owner_occupied','rented','hmo','commercial','industrial','caravan','swimming_pool')),
    next_inspection_due date,
    created_by          bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    UNIQUE (org_id, id, customer_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX sites_org_customer ON sites (org_id, customer_id);

CREATE TABLE jobs (
    org_id            bigint NOT NULL REFERENCES organisations (id),
    id                bigint GENERATED ALWAYS AS IDENTITY,
    customer_id       bigint NOT NULL,
    site_id           bigint NOT NULL,
    type              text NOT NULL CHECK (type IN ('eicr','eic','minor_works','pat','fire_alarm','gas_safety','install','repair','emergency')),
    status            text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled','in_progress','completed','cancelled')),
    title             text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    scheduled_start   timestamptz NOT NULL,
    scheduled_end     timestamptz NOT NULL,
    estimated_minutes integer NOT NULL CHECK (estimated_minutes BETWEEN 1 AND 100000),
    created_by        bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    cancelled_at      timestamptz,
    deleted_at        timestamptz,
    PRIMARY KEY (id),
    UNIQUE (org_id, id),
    CHECK (scheduled_end > scheduled_start),
    -- The site must belong to the job's customer, in the same organisation.
    FOREIGN KEY (org_id, site_id, customer_id) REFERENCES sites (org_id, id, customer_id),
    FOREIGN KEY (org_id, created_by) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX jobs_org_start ON jobs (org_id, scheduled_start, id) WHERE deleted_at IS NULL;
CREATE INDEX jobs_org_site ON jobs (org_id, site_id);
CREATE INDEX jobs_org_customer ON jobs (org_id, customer_id);

CREATE TABLE job_assignments (
    org_id      bigint NOT NULL,
    job_id      bigint NOT NULL,
    user_id     bigint NOT NULL,
    is_primary  boolean NOT NULL DEFAULT false,
    assigned_by bigint NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, user_id),
    FOREIGN KEY (org_id, job_id) REFERENCES jobs (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id),
    FOREIGN KEY (org_id, assigned_by) REFERENCES memberships (org_id, user_id)
);
-- At most one primary per job ...
CREATE UNIQUE INDEX job_assignments_one_primary ON job_assignments (job_id) WHERE is_primary;
CREATE INDEX job_assignments_user ON job_assignments (org_id, user_id, job_id);

-- ... and at least one whenever the job has engineers, checked at commit so
-- that a transaction can move the primary from one engineer to another.
CREATE FUNCTION job_assignments_check_primary() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    j bigint;
BEGIN
    -- An UPDATE that moves a row to another job must leave both right.
    FOREACH j IN ARRAY ARRAY[NEW.job_id, OLD.job_id] LOOP
        CONTINUE WHEN j IS NULL;
        IF EXISTS (SELECT 1 FROM job_assignments WHERE job_id = j)
           AND NOT EXISTS (SELECT 1 FROM job_assignments WHERE job_id = j AND is_primary) THEN
            RAISE EXCEPTION 'job % has engineers but no primary engineer', j
                USING ERRCODE = 'check_violation', CONSTRAINT = 'job_assignments_primary_required';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER job_assignments_primary_required
    AFTER INSERT OR UPDATE OR DELETE ON job_assignments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION job_assignments_check_primary();

-- The audit log: append only, hash-chained per organisation (seq, prev_hash,
-- hash). actor_user_id is NULL for the system or an unknown visitor.
CREATE TABLE audit_events (
    org_id        bigint NOT NULL REFERENCES organisations (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    actor_user_id bigint,
    actor_label   text NOT NULL,
    channel       text NOT NULL CHECK (channel IN ('web','api','telegram','system','cli')),
    ip            inet,
    action        text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type   text NOT NULL,
    target_id     text NOT NULL,
    changes       jsonb NOT NULL DEFAULT '{}',
    prev_hash     bytea,
    hash          bytea NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (org_id, seq),
    FOREIGN KEY (org_id, actor_user_id) REFERENCES memberships (org_id, user_id)
);
CREATE INDEX audit_events_org_at ON audit_events (org_id, at DESC, id DESC);
CREATE INDEX audit_events_org_actor ON audit_events (org_id, actor_user_id, at DESC, id DESC);
CREATE INDEX audit_events_org_target ON audit_events (org_id, target_type, target_id, id);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

---- create above / drop below ----

DROP TABLE audit_events;
DROP FUNCTION audit_events_refuse_change();
DROP TABLE job_assignments;
DROP FUNCTION job_assignments_check_primary();
DROP TABLE jobs;
DROP TABLE sites;
DROP TABLE customers;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE organisations;
