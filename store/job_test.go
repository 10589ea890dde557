package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// jobIDs returns the ids of jobs in order.
func jobIDs(js []*fieldops.Job) []int64 {
	ids := make([]int64, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

// sortedJobIDs returns the ids of jobs ordered by scheduled start, then id.
func sortedJobIDs(js ...*fieldops.Job) []int64 {
	js = slices.Clone(js)
	slices.SortFunc(js, func(a, b *fieldops.Job) int {
		if c := a.ScheduledStart.Compare(b.ScheduledStart); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return jobIDs(js)
}

// withMoreSeats moves the org fixture to the Team plan with 5 extra seats
// (10 seats, 7 used) and adds a second engineer.
func withMoreSeats(tb testing.TB, e *env, o *org) (eng2 int64) {
	tb.Helper()
	if _, err := e.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 5); err != nil {
		tb.Fatal(err)
	}
	return mustMember(tb, e, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer).UserID
}

func TestFindJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner := o.ctx[fieldops.RoleOwner]
	eng1 := o.user[fieldops.RoleEngineer]
	eng2 := withMoreSeats(t, e, o)
	cust2 := mustCustomer(t, e, owner, "Second Customer")
	site2 := mustSite(t, e, owner, cust2.ID)
	day := func(n int) time.Time { return time.Date(2027, 1, 10+n, 9, 0, 0, 0, time.UTC) }
	create := func(c *fieldops.Customer, s *fieldops.Site, typ string, start time.Time, as ...fieldops.Assignment) *fieldops.Job {
		t.Helper()
		j, err := e.jobs.CreateJob(owner, fieldops.NewJob{CustomerID: c.ID, SiteID: s.ID, Type: typ, Title: typ + " job",
			ScheduledStart: start, ScheduledEnd: start.Add(2 * time.Hour), Engineers: as})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	fx := o.job // customer 1, site 1, eicr, 2026-12-01, engineer 1
	j1 := create(o.customer, o.site, "eicr", day(1), fieldops.Assignment{UserID: eng1, Primary: true})
	j2 := create(o.customer, o.site, "pat", day(2), fieldops.Assignment{UserID: eng2, Primary: true})
	j3 := create(cust2, site2, "repair", day(3))
	j4 := create(cust2, site2, "eicr", day(4), fieldops.Assignment{UserID: eng2, Primary: true}, fieldops.Assignment{UserID: eng1})
	mustExec(t, e, `UPDATE jobs SET status = 'in_progress' WHERE id = $1`, j3.ID)

	mgr, engCtx1, engCtx2 := o.ctx[fieldops.RoleManager], o.ctx[fieldops.RoleEngineer], actorCtx(o.id, eng2)
	for _, tt := range []struct {
		name string
		ctx  context.Context
		f    fieldops.JobFilter
		want []*fieldops.Job
	}{
		{"Manager/All", mgr, fieldops.JobFilter{}, []*fieldops.Job{fx, j1, j2, j3, j4}},
		{"Engineer1/Own", engCtx1, fieldops.JobFilter{}, []*fieldops.Job{fx, j1, j4}},
		{"Engineer2/Own", engCtx2, fieldops.JobFilter{}, []*fieldops.Job{j2, j4}},
		{"Engineer1/OtherEngineer", engCtx1, fieldops.JobFilter{EngineerID: eng2}, []*fieldops.Job{j4}},
		{"Engineer1/Status", engCtx1, fieldops.JobFilter{Status: "in_progress"}, nil},
		{"Engineer1/Type", engCtx1, fieldops.JobFilter{Type: "eicr"}, []*fieldops.Job{fx, j1, j4}},
		{"Engineer2/Customer", engCtx2, fieldops.JobFilter{CustomerID: o.customer.ID}, []*fieldops.Job{j2}},
		{"Status/Scheduled", mgr, fieldops.JobFilter{Status: "scheduled"}, []*fieldops.Job{fx, j1, j2, j4}},
		{"Manager/Unassigned", mgr, fieldops.JobFilter{Unassigned: true}, []*fieldops.Job{j3}},
		{"Engineer1/Unassigned", engCtx1, fieldops.JobFilter{Unassigned: true}, nil},
		{"Status/InProgress", mgr, fieldops.JobFilter{Status: "in_progress"}, []*fieldops.Job{j3}},
		{"Status/Completed", mgr, fieldops.JobFilter{Status: "completed"}, nil},
		{"Type/PAT", mgr, fieldops.JobFilter{Type: "pat"}, []*fieldops.Job{j2}},
		{"Type/EICR", mgr, fieldops.JobFilter{Type: "eicr"}, []*fieldops.Job{fx, j1, j4}},
		{"Customer", mgr, fieldops.JobFilter{CustomerID: cust2.ID}, []*fieldops.Job{j3, j4}},
		{"Site", mgr, fieldops.JobFilter{SiteID: o.site.ID}, []*fieldops.Job{fx, j1, j2}},
		{"Engineer/1", mgr, fieldops.JobFilter{EngineerID: eng1}, []*fieldops.Job{fx, j1, j4}},
		{"Engineer/2", mgr, fieldops.JobFilter{EngineerID: eng2}, []*fieldops.Job{j2, j4}},
		{"From", mgr, fieldops.JobFilter{From: day(2)}, []*fieldops.Job{j2, j3, j4}},
		{"To", mgr, fieldops.JobFilter{To: day(2)}, []*fieldops.Job{fx, j1}},
		{"FromTo", mgr, fieldops.JobFilter{From: day(2), To: day(4)}, []*fieldops.Job{j2, j3}},
		{"FromToInside", mgr, fieldops.JobFilter{From: day(1).Add(time.Minute), To: day(2).Add(time.Minute)}, []*fieldops.Job{j2}},
		{"Combined", mgr, fieldops.JobFilter{CustomerID: o.customer.ID, EngineerID: eng1, Type: "eicr"}, []*fieldops.Job{fx, j1}},
		{"NoMatch", mgr, fieldops.JobFilter{SiteID: site2.ID, Type: "pat"}, nil},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			js, next, err := e.jobs.FindJobs(tt.ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := jobIDs(js), sortedJobIDs(tt.want...); !slices.Equal(got, want) {
				t.Fatalf("FindJobs(%+v) = %v, want %v", tt.f, got, want)
			}
			if next != "" {
				t.Fatalf("next = %q on the only page", next)
			}
		})
	}

	t.Run("Engineers/OK", func(t *testing.T) {
		j, err := e.jobs.FindJobByID(mgr, j4.ID)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := j.Primary()
		if len(j.Engineers) != 2 || !ok || p.UserID != eng2 || !j.Engineers[0].Primary {
			t.Fatalf("engineers = %+v, want engineer 2 first as primary, then engineer 1", j.Engineers)
		}
		if j.CustomerName != cust2.Name || j.SiteAddress != site2.Address {
			t.Fatalf("job carries customer %q, site %q", j.CustomerName, j.SiteAddress)
		}
	})
	t.Run("OtherEngineersJob/ErrNotFound", func(t *testing.T) {
		_, err := e.jobs.FindJobByID(engCtx1, j2.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		_, err = e.jobs.FindJobByID(engCtx1, j3.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
}

// TestFindJobsPages walks a keyset-paged list of 25 jobs, several with the
// same start time, created out of order.
func TestFindJobsPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner := o.ctx[fieldops.RoleOwner]
	cust := mustCustomer(t, e, owner, "Paging Ltd")
	site := mustSite(t, e, owner, cust.ID)
	base := time.Date(2027, 2, 1, 8, 0, 0, 0, time.UTC)
	var all []*fieldops.Job
	for i := range 25 {
		k := (i * 7) % 25 // a permutation, so ids do not follow start times
		start := base.Add(time.Duration(k/3) * time.Hour)
		all = append(all, mustJob(t, e, owner, cust.ID, site.ID, start, fieldops.Assignment{UserID: o.user[fieldops.RoleEngineer], Primary: true}))
	}
	want := sortedJobIDs(all...)

	for _, tt := range []struct {
		name  string
		ctx   context.Context
		limit int
		pages int
	}{
		{"Manager/Limit10", o.ctx[fieldops.RoleManager], 10, 3},
		{"Engineer/Limit10", o.ctx[fieldops.RoleEngineer], 10, 3},
		{"Manager/Limit5", o.ctx[fieldops.RoleManager], 5, 5},
		{"Manager/Limit25", o.ctx[fieldops.RoleManager], 25, 1},
		{"Manager/Limit1", o.ctx[fieldops.RoleManager], 1, 25},
	} {
		t.Run(tt.name+"/OK", func(t *testing.T) {
			var got []int64
			after := ""
			pages := 0
			for {
				js, next, err := e.jobs.FindJobs(tt.ctx, fieldops.JobFilter{CustomerID: cust.ID, Limit: tt.limit, After: after})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(js) == 0 || len(js) > tt.limit {
					t.Fatalf("page %d has %d jobs", pages, len(js))
				}
				got = append(got, jobIDs(js)...)
				if next == "" {
					break
				}
				if pages > 30 {
					t.Fatal("paging does not end")
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages gave %v, want %v", got, want)
			}
			if pages != tt.pages {
				t.Fatalf("%d pages, want %d", pages, tt.pages)
			}
		})
	}
}

// notification is one row of the outbox.
type notification struct {
	user      int64
	kind      string
	jobID     int64
	createdAt time.Time
}

// notifications returns an organisation's outbox rows after id, oldest
// first.
func notifications(tb testing.TB, e *env, orgID, afterID int64) []notification {
	tb.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT user_id, kind, (payload->>'job_id')::bigint, created_at FROM notifications
		WHERE org_id = $1 AND id > $2 ORDER BY id`, orgID, afterID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []notification
	for rows.Next() {
		var n notification
		if err := rows.Scan(&n.user, &n.kind, &n.jobID, &n.createdAt); err != nil {
			tb.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func lastNotificationID(tb testing.TB, e *env, orgID int64) int64 {
	tb.Helper()
	return int64(count(tb, e, `SELECT COALESCE(max(id), 0) FROM notifications WHERE org_id = $1`, orgID))
}

// wantNotified checks the kinds sent to each user (in any order).
func wantNotified(tb testing.TB, got []notification, jobID int64, want map[int64]string) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%d notifications %+v, want %d: %v", len(got), got, len(want), want)
	}
	for _, n := range got {
		if want[n.user] != n.kind || n.jobID != jobID {
			tb.Fatalf("notification %+v, want %v for job %d", n, want, jobID)
		}
	}
}

func TestJobNotifications(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, mgrCtx := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleManager]
	eng1, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	eng2 := withMoreSeats(t, e, o)
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

	mark := lastNotificationID(t, e, o.id)
	j := mustJob(t, e, owner, o.customer.ID, o.site.ID, start,
		fieldops.Assignment{UserID: eng1, Primary: true}, fieldops.Assignment{UserID: eng2})
	t.Run("CreateJob/OK", func(t *testing.T) {
		wantNotified(t, notifications(t, e, o.id, mark), j.ID, map[int64]string{eng1: "job.assigned", eng2: "job.assigned"})
	})

	t.Run("RescheduleJob/OK", func(t *testing.T) {
		mark := lastNotificationID(t, e, o.id)
		if _, err := e.jobs.RescheduleJob(mgrCtx, j.ID, start.Add(time.Hour), start.Add(4*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got := notifications(t, e, o.id, mark)
		wantNotified(t, got, j.ID, map[int64]string{eng1: "job.rescheduled", eng2: "job.rescheduled"})
		// Written in the transaction of the change: now() is the same.
		var updated time.Time
		if err := e.pool.QueryRow(context.Background(), `SELECT updated_at FROM jobs WHERE id = $1`, j.ID).Scan(&updated); err != nil {
			t.Fatal(err)
		}
		for _, n := range got {
			if !n.createdAt.Equal(updated) {
				t.Fatalf("notification at %v, job updated at %v: not one transaction", n.createdAt, updated)
			}
		}
	})
	t.Run("RescheduleJob/Unchanged/OK", func(t *testing.T) {
		mark := lastNotificationID(t, e, o.id)
		if _, err := e.jobs.RescheduleJob(mgrCtx, j.ID, start.Add(time.Hour), start.Add(4*time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantNotified(t, notifications(t, e, o.id, mark), j.ID, nil)
	})

	for _, tt := range []struct {
		name string
		code string
		op   func() error
	}{
		{"RescheduleJob/ErrForbidden", fieldops.EFORBIDDEN, func() error {
			_, err := e.jobs.RescheduleJob(o.ctx[fieldops.RoleEngineer], j.ID, start, start.Add(time.Hour))
			return err
		}},
		{"RescheduleJob/ErrInvalid", fieldops.EINVALID, func() error {
			_, err := e.jobs.RescheduleJob(mgrCtx, j.ID, start, start.Add(-time.Hour))
			return err
		}},
		{"AssignEngineers/ErrForbidden", fieldops.EFORBIDDEN, func() error {
			_, err := e.jobs.AssignEngineers(o.ctx[fieldops.RoleReadOnly], j.ID, []fieldops.Assignment{{UserID: mgr, Primary: true}})
			return err
		}},
		{"AssignEngineers/ErrInvalid", fieldops.EINVALID, func() error {
			_, err := e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{{UserID: mgr, Primary: true}, {UserID: o.user[fieldops.RoleReadOnly]}})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, e, o.id)
			wantCode(t, tt.op(), tt.code)
			if snapshot(t, e, o.id) != before {
				t.Fatal("a refused change wrote notifications or other rows")
			}
		})
	}

	t.Run("AssignEngineers/OK", func(t *testing.T) {
		mark := lastNotificationID(t, e, o.id)
		got, err := e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{{UserID: eng2, Primary: true}, {UserID: mgr}})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := got.Primary(); p.UserID != eng2 || len(got.Engineers) != 2 {
			t.Fatalf("engineers = %+v", got.Engineers)
		}
		ns := notifications(t, e, o.id, mark)
		wantNotified(t, ns, j.ID, map[int64]string{mgr: "job.assigned", eng1: "job.unassigned", eng2: "job.primary_changed"})
		var assignedAt time.Time
		if err := e.pool.QueryRow(context.Background(), `SELECT assigned_at FROM job_assignments WHERE job_id = $1 AND user_id = $2`,
			j.ID, mgr).Scan(&assignedAt); err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if !n.createdAt.Equal(assignedAt) {
				t.Fatalf("notification at %v, assignment at %v: not one transaction", n.createdAt, assignedAt)
			}
		}
		action, _, _ := lastAudit(t, e, o.id)
		if action != "job.assign" {
			t.Fatalf("last audit action = %s", action)
		}
	})
	t.Run("AssignEngineers/MovePrimary/OK", func(t *testing.T) {
		got, err := e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{{UserID: eng2}, {UserID: mgr, Primary: true}})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := got.Primary(); p.UserID != mgr || len(got.Engineers) != 2 {
			t.Fatalf("engineers = %+v, want the manager as primary", got.Engineers)
		}
		if n := count(t, e, `SELECT count(*) FROM job_assignments WHERE job_id = $1 AND is_primary`, j.ID); n != 1 {
			t.Fatalf("%d primaries", n)
		}
		// And straight to a new engineer as primary, dropping the others.
		got, err = e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{{UserID: eng1, Primary: true}})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := got.Primary(); p.UserID != eng1 || len(got.Engineers) != 1 {
			t.Fatalf("engineers = %+v, want engineer 1 alone", got.Engineers)
		}
	})
	t.Run("AssignEngineers/Unchanged/OK", func(t *testing.T) {
		before := snapshot(t, e, o.id)
		if _, err := e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{{UserID: eng1, Primary: true}}); err != nil {
			t.Fatal(err)
		}
		if snapshot(t, e, o.id) != before {
			t.Fatal("assigning the same engineers wrote something")
		}
	})
	t.Run("AssignEngineers/None/OK", func(t *testing.T) {
		mark := lastNotificationID(t, e, o.id)
		before := snapshot(t, e, o.id)
		got, err := e.jobs.AssignEngineers(mgrCtx, j.ID, []fieldops.Assignment{})
		if fieldops.ErrorField(err) == "primary" && snapshot(t, e, o.id) == before {
			t.Fatalf("AssignEngineers with an empty list cannot unassign everyone: assign binds a nil []int64 to "+
				"NOT (user_id = ANY($3)), which is NULL, so nothing is deleted and the deferred primary check fails: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Engineers) != 0 {
			t.Fatalf("engineers = %+v", got.Engineers)
		}
		wantNotified(t, notifications(t, e, o.id, mark), j.ID, map[int64]string{eng1: "job.unassigned"})
	})
}

// TestFinishedJobs: a completed or cancelled job cannot be changed.
func TestFinishedJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, mgr := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleManager]
	for _, status := range []string{"completed", "cancelled"} {
		start := time.Date(2027, 4, 1, 9, 0, 0, 0, time.UTC)
		j := mustJob(t, e, owner, o.customer.ID, o.site.ID, start, fieldops.Assignment{UserID: o.user[fieldops.RoleEngineer], Primary: true})
		mustExec(t, e, `UPDATE jobs SET status = $2 WHERE id = $1`, j.ID, status)
		for name, op := range map[string]func() error{
			"UpdateJob": func() error {
				_, err := e.jobs.UpdateJob(mgr, j.ID, fieldops.JobUpdate{Title: ptr("Changed")})
				return err
			},
			"RescheduleJob": func() error {
				_, err := e.jobs.RescheduleJob(mgr, j.ID, start.Add(time.Hour), start.Add(2*time.Hour))
				return err
			},
			"AssignEngineers": func() error {
				_, err := e.jobs.AssignEngineers(mgr, j.ID, []fieldops.Assignment{{UserID: o.user[fieldops.RoleManager], Primary: true}})
				return err
			},
		} {
			t.Run(fmt.Sprintf("%s/%s/ErrConflict", status, name), func(t *testing.T) {
				before := snapshot(t, e, o.id)
				wantCode(t, op(), fieldops.ECONFLICT)
				if snapshot(t, e, o.id) != before {
					t.Fatalf("%s of a %s job wrote something", name, status)
				}
			})
		}
		t.Run(status+"/FindJobByID/OK", func(t *testing.T) {
			got, err := e.jobs.FindJobByID(mgr, j.ID)
			if err != nil || got.Status != status {
				t.Fatalf("FindJobByID = %v, %v", got, err)
			}
		})
	}
}

// TestUpdateJob: a change is audited and told to the engineers.
func TestUpdateJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	mark := lastNotificationID(t, e, o.id)
	n := auditCount(t, e, o.id)
	j, err := e.jobs.UpdateJob(o.ctx[fieldops.RoleOfficeStaff], o.job.ID, fieldops.JobUpdate{Title: ptr("  EICR and PAT  "),
		Type: ptr("pat"), EstimatedMinutes: ptr(240), Description: ptr("Ring the bell twice")})
	if err != nil {
		t.Fatal(err)
	}
	if j.Title != "EICR and PAT" || j.Type != "pat" || j.EstimatedMinutes != 240 || j.Description != "Ring the bell twice" {
		t.Fatalf("job = %+v", j)
	}
	if got := auditCount(t, e, o.id); got != n+1 {
		t.Fatalf("%d audit events, want 1", got-n)
	}
	wantNotified(t, notifications(t, e, o.id, mark), o.job.ID, map[int64]string{o.user[fieldops.RoleEngineer]: "job.changed"})
	// The same values again change nothing.
	before := snapshot(t, e, o.id)
	if _, err := e.jobs.UpdateJob(o.ctx[fieldops.RoleOfficeStaff], o.job.ID, fieldops.JobUpdate{Title: ptr("EICR and PAT")}); err != nil {
		t.Fatal(err)
	}
	if snapshot(t, e, o.id) != before {
		t.Fatal("an update without changes wrote something")
	}
}
