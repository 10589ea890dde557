package store_test

import (
	"testing"

	"github.com/fieldops/fieldops"
)

// wantWindowsInStep checks that every assignment of the organisation
// carries exactly its job's window, estimate and "counts" flag (migration
// 005), and returns how many assignments count.
func wantWindowsInStep(t *testing.T, c *capEnv) (live int) {
	t.Helper()
	if n := count(t, c.env, `SELECT count(*) FROM job_assignments a JOIN jobs j ON j.id = a.job_id
		WHERE a.org_id = $1 AND (a.scheduled_start, a.scheduled_end, a.estimated_minutes, a.live)
		      IS DISTINCT FROM (j.scheduled_start, j.scheduled_end, j.estimated_minutes, j.status <> 'cancelled' AND j.deleted_at IS NULL)`, c.o.id); n != 0 {
		t.Fatalf("%d assignments out of step with their job", n)
	}
	return count(t, c.env, `SELECT count(*) FROM job_assignments WHERE org_id = $1 AND live`, c.o.id)
}

// TestCapacityWindow follows one job through the service calls that change
// what it books, checking the copy of its window on job_assignments and
// the capacity board after each (week of Monday 23 November 2026, London
// on GMT).
func TestCapacityWindow(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	owner := c.o.ctx[fieldops.RoleOwner]
	e, m := c.o.user[fieldops.RoleEngineer], c.o.user[fieldops.RoleManager]
	e2 := mustMember(t, c.env, owner, fieldops.RoleEngineer).UserID
	base := wantWindowsInStep(t, c) // mustOrg's own job, in December

	// Tuesday 09:00–12:00, E and E2.
	j := c.job(t, 0, at(2026, 11, 24, 9, 0), at(2026, 11, 24, 12, 0), 0, e, e2)
	if got := wantWindowsInStep(t, c); got != base+2 {
		t.Fatalf("live assignments = %d, want %d", got, base+2)
	}
	w := c.week(t, at(2026, 11, 23, 0, 0))
	wantDays(t, w, e, [7]int{0, 180, 0, 0, 0, 0, 0})
	wantDays(t, w, e2, [7]int{0, 180, 0, 0, 0, 0, 0})

	t.Run("Reschedule", func(t *testing.T) {
		// Wednesday 22:00 – Thursday 02:00: the estimate (180, the first
		// window) spread over 240 minutes, 90 on each side of midnight.
		if _, err := c.jobs.RescheduleJob(owner, j.ID, at(2026, 11, 25, 22, 0), at(2026, 11, 26, 2, 0)); err != nil {
			t.Fatal(err)
		}
		wantWindowsInStep(t, c)
		w := c.week(t, at(2026, 11, 23, 0, 0))
		wantDays(t, w, e, [7]int{0, 0, 90, 90, 0, 0, 0})
		wantDays(t, w, e2, [7]int{0, 0, 90, 90, 0, 0, 0})
	})

	t.Run("EstimateChange", func(t *testing.T) {
		// 120 minutes in a 240-minute window: half of each day's part.
		if _, err := c.jobs.UpdateJob(owner, j.ID, fieldops.JobUpdate{EstimatedMinutes: ptr(120)}); err != nil {
			t.Fatal(err)
		}
		wantWindowsInStep(t, c)
		w := c.week(t, at(2026, 11, 23, 0, 0))
		wantDays(t, w, e, [7]int{0, 0, 60, 60, 0, 0, 0})
	})

	t.Run("TitleChangeKeepsWindow", func(t *testing.T) {
		if _, err := c.jobs.UpdateJob(owner, j.ID, fieldops.JobUpdate{Title: ptr("Rewire")}); err != nil {
			t.Fatal(err)
		}
		wantWindowsInStep(t, c)
		wantDays(t, c.week(t, at(2026, 11, 23, 0, 0)), e, [7]int{0, 0, 60, 60, 0, 0, 0})
	})

	t.Run("AssignmentChanges", func(t *testing.T) {
		// E2 off, the manager on and primary: the new row gets the job's
		// current window and estimate.
		if _, err := c.jobs.AssignEngineers(owner, j.ID, []fieldops.Assignment{{UserID: m, Primary: true}, {UserID: e}}); err != nil {
			t.Fatal(err)
		}
		if got := wantWindowsInStep(t, c); got != base+2 {
			t.Fatalf("live assignments = %d, want %d", got, base+2)
		}
		w := c.week(t, at(2026, 11, 23, 0, 0))
		wantDays(t, w, e, [7]int{0, 0, 60, 60, 0, 0, 0})
		wantDays(t, w, m, [7]int{0, 0, 60, 60, 0, 0, 0})
		wantDays(t, w, e2, [7]int{})
	})

	t.Run("DirectWriteOfTheCopyIsOverwritten", func(t *testing.T) {
		mustExec(t, c.env, `UPDATE job_assignments SET live = false, scheduled_start = scheduled_start - interval '1 day' WHERE job_id = $1`, j.ID)
		if got := wantWindowsInStep(t, c); got != base+2 {
			t.Fatalf("live assignments = %d, want %d", got, base+2)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		if _, err := c.jobs.CancelJob(owner, j.ID); err != nil {
			t.Fatal(err)
		}
		if got := wantWindowsInStep(t, c); got != base {
			t.Fatalf("live assignments = %d, want %d", got, base)
		}
		w := c.week(t, at(2026, 11, 23, 0, 0))
		wantDays(t, w, e, [7]int{})
		wantDays(t, w, m, [7]int{})
	})

	t.Run("Delete", func(t *testing.T) {
		d := c.job(t, 0, at(2026, 11, 27, 8, 0), at(2026, 11, 27, 10, 0), 0, e)
		wantDays(t, c.week(t, at(2026, 11, 23, 0, 0)), e, [7]int{0, 0, 0, 0, 120, 0, 0})
		if err := c.jobs.DeleteJob(owner, d.ID); err != nil {
			t.Fatal(err)
		}
		if got := wantWindowsInStep(t, c); got != base {
			t.Fatalf("live assignments = %d, want %d", got, base)
		}
		wantDays(t, c.week(t, at(2026, 11, 23, 0, 0)), e, [7]int{})
	})

	t.Run("Completed", func(t *testing.T) {
		// A completed job still counts, as before.
		d := c.job(t, 0, at(2026, 11, 23, 8, 0), at(2026, 11, 23, 9, 0), 0, e)
		mustExec(t, c.env, `UPDATE jobs SET status = 'completed', completed_at = now() WHERE id = $1`, d.ID)
		if got := wantWindowsInStep(t, c); got != base+1 {
			t.Fatalf("live assignments = %d, want %d", got, base+1)
		}
		wantDays(t, c.week(t, at(2026, 11, 23, 0, 0)), e, [7]int{60, 0, 0, 0, 0, 0, 0})
	})
}

// TestCapacityWindowHardDelete: an assignment goes with its job.
func TestCapacityWindowHardDelete(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	e := c.o.user[fieldops.RoleEngineer]
	j := c.job(t, 0, at(2026, 11, 24, 9, 0), at(2026, 11, 24, 12, 0), 0, e)
	mustExec(t, c.env, `DELETE FROM jobs WHERE id = $1`, j.ID)
	wantWindowsInStep(t, c)
	wantDays(t, c.week(t, at(2026, 11, 23, 0, 0)), e, [7]int{})
}
