-- Capacity: the jobs whose scheduled window overlaps a week, found by
-- range scans (see store/capacity.go, jobsOverlapping).
--
-- A job is scheduled for at most 31 days (the service has always refused
-- longer windows); the constraint makes that an invariant the capacity
-- query can rely on for its lower bound on scheduled_start.
ALTER TABLE jobs ADD CONSTRAINT jobs_window_at_most_31_days
    CHECK (scheduled_end - scheduled_start <= interval '31 days');

-- Jobs longer than a day are few; this lets the capacity query find the
-- ones that started before the week and still run into it without
-- scanning a month of ordinary jobs.
CREATE INDEX jobs_org_long ON jobs (org_id, scheduled_start)
    WHERE deleted_at IS NULL AND scheduled_end - scheduled_start > interval '24 hours';

---- create above / drop below ----

DROP INDEX jobs_org_long;
ALTER TABLE jobs DROP CONSTRAINT jobs_window_at_most_31_days;
