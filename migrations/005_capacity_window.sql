-- Capacity: each assignment carries its job's scheduled window, estimate
-- and whether the job counts (neither cancelled nor deleted), so that the
-- capacity board reads one index of job_assignments instead of joining
-- jobs and probing job_assignments once per job (store/capacity.go,
-- bookedQuery; docs/PERFORMANCE.md, "Capacity").
--
-- The copy is kept exact by triggers, in the writing transaction:
--   * BEFORE INSERT (or a change of job) on job_assignments copies the
--     job's values, reading the job FOR SHARE so that a concurrent change
--     of the job is waited for, not missed;
--   * AFTER UPDATE of the window, estimate, status or deletion on jobs
--     copies the new values to the job's assignments.
-- A row whose job does not exist (refused by the foreign key at the end
-- of the statement) gets live = false and no window.

ALTER TABLE job_assignments
    ADD COLUMN scheduled_start   timestamptz,
    ADD COLUMN scheduled_end     timestamptz,
    ADD COLUMN estimated_minutes integer,
    ADD COLUMN live              boolean NOT NULL DEFAULT false;

-- The primary-engineer check only cares about which job a row is on and
-- its primary flag; without this, every copied window (and the backfill
-- below) would queue a deferred check per row.
DROP TRIGGER job_assignments_primary_required ON job_assignments;
CREATE CONSTRAINT TRIGGER job_assignments_primary_required
    AFTER INSERT OR UPDATE OF job_id, is_primary OR DELETE ON job_assignments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION job_assignments_check_primary();

UPDATE job_assignments a
   SET scheduled_start = j.scheduled_start, scheduled_end = j.scheduled_end,
       estimated_minutes = j.estimated_minutes, live = (j.status <> 'cancelled' AND j.deleted_at IS NULL)
  FROM jobs j
 WHERE j.org_id = a.org_id AND j.id = a.job_id;

ALTER TABLE job_assignments ADD CONSTRAINT job_assignments_live_window
    CHECK (NOT live OR (scheduled_start IS NOT NULL AND scheduled_end IS NOT NULL AND estimated_minutes IS NOT NULL));

CREATE FUNCTION job_assignments_copy_window() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT j.scheduled_start, j.scheduled_end, j.estimated_minutes, j.status <> 'cancelled' AND j.deleted_at IS NULL
      INTO NEW.scheduled_start, NEW.scheduled_end, NEW.estimated_minutes, NEW.live
      FROM jobs j
     WHERE j.org_id = NEW.org_id AND j.id = NEW.job_id
       FOR SHARE;
    IF NOT FOUND THEN
        NEW.scheduled_start := NULL;
        NEW.scheduled_end := NULL;
        NEW.estimated_minutes := NULL;
        NEW.live := false;
    END IF;
    RETURN NEW;
END $$;

-- Every column of the copy is in the column list, so a direct UPDATE of
-- the copy is overwritten from the job too.
CREATE TRIGGER job_assignments_window
    BEFORE INSERT OR UPDATE OF org_id, job_id, scheduled_start, scheduled_end, estimated_minutes, live ON job_assignments
    FOR EACH ROW EXECUTE FUNCTION job_assignments_copy_window();

CREATE FUNCTION jobs_copy_window() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_assignments a
       SET scheduled_start = NEW.scheduled_start, scheduled_end = NEW.scheduled_end,
           estimated_minutes = NEW.estimated_minutes, live = (NEW.status <> 'cancelled' AND NEW.deleted_at IS NULL)
     WHERE a.job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_window
    AFTER UPDATE OF scheduled_start, scheduled_end, estimated_minutes, status, deleted_at ON jobs
    FOR EACH ROW
    WHEN ((OLD.scheduled_start, OLD.scheduled_end, OLD.estimated_minutes, OLD.status <> 'cancelled' AND OLD.deleted_at IS NULL)
          IS DISTINCT FROM
          (NEW.scheduled_start, NEW.scheduled_end, NEW.estimated_minutes, NEW.status <> 'cancelled' AND NEW.deleted_at IS NULL))
    EXECUTE FUNCTION jobs_copy_window();

-- The week's assignments, by start: one index-only range scan. Jobs
-- longer than a day are few and have their own small index, for the ones
-- that started before the range and still run into it (a job's window is
-- at most 31 days: jobs_window_at_most_31_days).
CREATE INDEX job_assignments_window ON job_assignments (org_id, scheduled_start)
    INCLUDE (user_id, scheduled_end, estimated_minutes) WHERE live;
CREATE INDEX job_assignments_window_long ON job_assignments (org_id, scheduled_start)
    INCLUDE (user_id, scheduled_end, estimated_minutes)
    WHERE live AND scheduled_end - scheduled_start > interval '24 hours';

---- create above / drop below ----

DROP INDEX job_assignments_window_long;
DROP INDEX job_assignments_window;
DROP TRIGGER jobs_window ON jobs;
DROP FUNCTION jobs_copy_window();
DROP TRIGGER job_assignments_window ON job_assignments;
DROP FUNCTION job_assignments_copy_window();
DROP TRIGGER job_assignments_primary_required ON job_assignments;
CREATE CONSTRAINT TRIGGER job_assignments_primary_required
    AFTER INSERT OR UPDATE OR DELETE ON job_assignments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION job_assignments_check_primary();
ALTER TABLE job_assignments
    DROP CONSTRAINT job_assignments_live_window,
    DROP COLUMN live,
    DROP COLUMN estimated_minutes,
    DROP COLUMN scheduled_end,
    DROP COLUMN scheduled_start;
