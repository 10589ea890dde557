-- The dispatch board shows a page of engineers at a time: their
-- assignments overlapping a day, one index-only range scan per engineer
-- (a job's window is at most 31 days, so a scan covers at most 31 days
-- of one engineer's assignments).
CREATE INDEX job_assignments_user_window ON job_assignments (org_id, user_id, scheduled_start)
    INCLUDE (job_id, scheduled_end) WHERE live;

---- create above / drop below ----

DROP INDEX job_assignments_user_window;
