package store_test

import (
	"testing"

	"github.com/fieldops/fieldops"
)

// TestCancelJob: job.edit cancels an open job, audits it and tells every
// engineer in the same transaction; everyone else is refused and nothing
// changes.
func TestCancelJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		role fieldops.Role
		code string
	}{
		{fieldops.RoleOwner, ""},
		{fieldops.RoleAdmin, ""},
		{fieldops.RoleManager, ""},
		{fieldops.RoleOfficeStaff, ""},
		{fieldops.RoleEngineer, fieldops.EFORBIDDEN},
		{fieldops.RoleReadOnly, fieldops.EFORBIDDEN},
		{fieldops.RoleAccountant, fieldops.EFORBIDDEN},
	} {
		t.Run(tt.role.String()+"/"+outcome(tt.code), func(t *testing.T) {
			o := mustOrg(t, e)
			before := snapshot(t, e, o.id)
			j, err := e.jobs.CancelJob(o.ctx[tt.role], o.job.ID)
			wantCode(t, err, tt.code)
			if tt.code != "" {
				if after := snapshot(t, e, o.id); after != before {
					t.Fatal("a refused cancel changed the organisation's data")
				}
				return
			}
			if j.Status != "cancelled" || len(j.Engineers) != 1 {
				t.Fatalf("job = %+v", j)
			}
			if action, actor, _ := lastAudit(t, e, o.id); action != "job.cancel" || actor != o.user[tt.role] {
				t.Fatalf("last audit = %s by %d", action, actor)
			}
			if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND kind = 'job.cancelled'
				AND (payload->>'job_id')::bigint = $3`, o.id, o.user[fieldops.RoleEngineer], o.job.ID); n != 1 {
				t.Fatalf("%d job.cancelled notifications, want 1", n)
			}
			if n := count(t, e, `SELECT count(*) FROM jobs WHERE id = $1 AND cancelled_at IS NOT NULL`, o.job.ID); n != 1 {
				t.Fatal("cancelled_at not set")
			}
			// A cancelled job cannot be cancelled again, nor changed.
			_, err = e.jobs.CancelJob(o.ctx[tt.role], o.job.ID)
			wantCode(t, err, fieldops.ECONFLICT)
			_, err = e.jobs.UpdateJob(o.ctx[tt.role], o.job.ID, fieldops.JobUpdate{Title: ptr("Changed")})
			wantCode(t, err, fieldops.ECONFLICT)
		})
	}

	t.Run("Completed/ErrConflict", func(t *testing.T) {
		o := mustOrg(t, e)
		mustExec(t, e, `UPDATE jobs SET status = 'completed', completed_at = now() WHERE id = $1`, o.job.ID)
		_, err := e.jobs.CancelJob(o.ctx[fieldops.RoleOwner], o.job.ID)
		wantCode(t, err, fieldops.ECONFLICT)
	})
	t.Run("OtherOrganisation/ErrNotFound", func(t *testing.T) {
		o, other := mustOrg(t, e), mustOrg(t, e)
		_, err := e.jobs.CancelJob(other.ctx[fieldops.RoleOwner], o.job.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
	t.Run("NarrowedToOwn/ErrNotFound", func(t *testing.T) {
		// A manager whose job.edit is narrowed to own cannot cancel a job
		// they are not on: it is not found, as for scope own elsewhere.
		o := mustOrg(t, e)
		owner := o.ctx[fieldops.RoleOwner]
		if _, err := e.members.SetOverrides(owner, o.user[fieldops.RoleManager], []fieldops.Override{{Flag: fieldops.FlagJobEdit, Scope: fieldops.ScopeOwn}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.jobs.CancelJob(o.ctx[fieldops.RoleManager], o.job.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
}

// TestDeleteJob: job.delete removes a job that has no work on it; the
// engineers of a scheduled job are told, a job with work is kept.
func TestDeleteJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		role fieldops.Role
		code string
	}{
		{fieldops.RoleOwner, ""},
		{fieldops.RoleAdmin, ""},
		{fieldops.RoleManager, ""},
		{fieldops.RoleOfficeStaff, fieldops.EFORBIDDEN},
		{fieldops.RoleEngineer, fieldops.EFORBIDDEN},
		{fieldops.RoleReadOnly, fieldops.EFORBIDDEN},
		{fieldops.RoleAccountant, fieldops.EFORBIDDEN},
	} {
		t.Run(tt.role.String()+"/"+outcome(tt.code), func(t *testing.T) {
			o := mustOrg(t, e)
			before := snapshot(t, e, o.id)
			err := e.jobs.DeleteJob(o.ctx[tt.role], o.job.ID)
			wantCode(t, err, tt.code)
			if tt.code != "" {
				if after := snapshot(t, e, o.id); after != before {
					t.Fatal("a refused delete changed the organisation's data")
				}
				return
			}
			if action, actor, _ := lastAudit(t, e, o.id); action != "job.delete" || actor != o.user[tt.role] {
				t.Fatalf("last audit = %s by %d", action, actor)
			}
			if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND kind = 'job.cancelled'`,
				o.id, o.user[fieldops.RoleEngineer]); n != 1 {
				t.Fatalf("%d job.cancelled notifications, want 1", n)
			}
			_, err = e.jobs.FindJobByID(o.ctx[tt.role], o.job.ID)
			wantCode(t, err, fieldops.ENOTFOUND)
			js, _, err := e.jobs.FindJobs(o.ctx[tt.role], fieldops.JobFilter{})
			if err != nil || len(js) != 0 {
				t.Fatalf("FindJobs after delete = %d jobs, %v", len(js), err)
			}
			// Deleting it again: not found.
			wantCode(t, e.jobs.DeleteJob(o.ctx[tt.role], o.job.ID), fieldops.ENOTFOUND)
		})
	}

	t.Run("Cancelled/OK", func(t *testing.T) {
		// Its engineers were told when it was cancelled, not again.
		o := mustOrg(t, e)
		owner := o.ctx[fieldops.RoleOwner]
		if _, err := e.jobs.CancelJob(owner, o.job.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.jobs.DeleteJob(owner, o.job.ID); err != nil {
			t.Fatal(err)
		}
		if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'job.cancelled'`, o.id); n != 1 {
			t.Fatalf("%d job.cancelled notifications, want 1", n)
		}
	})
	for _, status := range []string{"in_progress", "completed"} {
		t.Run(status+"/ErrConflict", func(t *testing.T) {
			o := mustOrg(t, e)
			mustExec(t, e, `UPDATE jobs SET status = $2 WHERE id = $1`, o.job.ID, status)
			before := snapshot(t, e, o.id)
			wantCode(t, e.jobs.DeleteJob(o.ctx[fieldops.RoleOwner], o.job.ID), fieldops.ECONFLICT)
			if after := snapshot(t, e, o.id); after != before {
				t.Fatal("a refused delete changed the organisation's data")
			}
		})
	}
	t.Run("OtherOrganisation/ErrNotFound", func(t *testing.T) {
		o, other := mustOrg(t, e), mustOrg(t, e)
		wantCode(t, e.jobs.DeleteJob(other.ctx[fieldops.RoleOwner], o.job.ID), fieldops.ENOTFOUND)
	})
	t.Run("CustomerDeletableAfter/OK", func(t *testing.T) {
		// A customer whose only open job was deleted can be deleted.
		o := mustOrg(t, e)
		owner := o.ctx[fieldops.RoleOwner]
		wantCode(t, e.customers.DeleteCustomer(owner, o.customer.ID), fieldops.ECONFLICT)
		if err := e.jobs.DeleteJob(owner, o.job.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.customers.DeleteCustomer(owner, o.customer.ID); err != nil {
			t.Fatal(err)
		}
	})
}
