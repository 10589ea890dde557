package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

func (c *certEnv) mustDefect(tb testing.TB, jobID int64, code string) *fieldops.Defect {
	tb.Helper()
	d, err := c.defects.LogDefect(c.o.ctx[fieldops.RoleOwner], jobID, code, "Socket cracked, live parts exposed", "Kitchen")
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// TestDefectByRole runs each method as every role on the engineer's job,
// and for the engineer on a job they are not on.
func TestDefectByRole(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			ctx := o.ctx[role]
			for _, tt := range []struct {
				name string
				flag fieldops.Flag
				call func(d *fieldops.Defect) error
			}{
				{"Log", fieldops.FlagDefectLog, func(*fieldops.Defect) error {
					_, err := c.defects.LogDefect(ctx, o.job.ID, "C2", "No RCD protection for sockets", "Consumer unit")
					return err
				}},
				{"Resolve", fieldops.FlagDefectResolve, func(d *fieldops.Defect) error {
					_, err := c.defects.ResolveDefect(ctx, d.ID, "RCBOs fitted")
					return err
				}},
				{"FindByID", fieldops.FlagDefectView, func(d *fieldops.Defect) error {
					_, err := c.defects.FindDefectByID(ctx, d.ID)
					return err
				}},
				{"Find", fieldops.FlagDefectView, func(d *fieldops.Defect) error {
					got, err := c.defects.FindDefects(ctx, fieldops.DefectFilter{JobID: o.job.ID})
					if err == nil && (len(got) == 0 || got[0].ID != d.ID) {
						t.Errorf("FindDefects = %v, want defect %d first", got, d.ID)
					}
					return err
				}},
			} {
				code := want(role, tt.flag)
				t.Run(tt.name+"/"+outcome(code), func(t *testing.T) {
					d := c.mustDefect(t, o.job.ID, "C3")
					before := snapshot(t, c.env, o.id)
					n := count(t, c.env, `SELECT count(*) FROM defects WHERE org_id = $1`, o.id)
					wantCode(t, tt.call(d), code)
					if code != "" && (snapshot(t, c.env, o.id) != before || count(t, c.env, `SELECT count(*) FROM defects WHERE org_id = $1`, o.id) != n ||
						count(t, c.env, `SELECT count(*) FROM defects WHERE id = $1 AND resolved_at IS NULL`, d.ID) != 1) {
						t.Error("a refused call changed something")
					}
				})
			}
		})
	}
	t.Run("EngineerOtherJob/ErrNotFound", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleEngineer]
		_, err := c.defects.LogDefect(ctx, c.other.ID, "C2", "No earthing", "")
		wantCode(t, err, fieldops.ENOTFOUND)
		d := c.mustDefect(t, c.other.ID, "C2")
		_, err = c.defects.FindDefectByID(ctx, d.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		list, err := c.defects.FindDefects(ctx, fieldops.DefectFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range list {
			if x.JobID != o.job.ID {
				t.Errorf("the engineer's list holds defect %d of job %d", x.ID, x.JobID)
			}
		}
	})
	t.Run("EngineerLoggedBy/OK", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleEngineer]
		d, err := c.defects.LogDefect(ctx, o.job.ID, "FI", "  Circuit 7 untraced  ", "  Loft ")
		if err != nil {
			t.Fatal(err)
		}
		if d.Description != "Circuit 7 untraced" || d.Location != "Loft" || d.LoggedBy != o.user[fieldops.RoleEngineer] {
			t.Fatalf("defect = %+v", d)
		}
		list, err := c.defects.FindDefects(ctx, fieldops.DefectFilter{LoggedBy: o.user[fieldops.RoleEngineer]})
		if err != nil || len(list) == 0 || list[0].ID != d.ID {
			t.Fatalf("defects I logged = %v, %v", list, err)
		}
		for _, x := range list {
			if x.LoggedBy != o.user[fieldops.RoleEngineer] {
				t.Errorf("defects I logged holds %d, logged by %d", x.ID, x.LoggedBy)
			}
		}
		if action, actor, _ := lastAudit(t, c.env, o.id); action != "defect.log" || actor != o.user[fieldops.RoleEngineer] {
			t.Fatalf("last audit = %s by %d", action, actor)
		}
	})
}

// TestRemedialDue: C1, C2 and FI are due 28 days from the inspection day
// counted as day 1, in the organisation's zone; C3 opens none.
func TestRemedialDue(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	owner := c.o.ctx[fieldops.RoleOwner]
	for _, tt := range []struct {
		name string
		tz   string
		at   time.Time
		code string
		want string // "" for none
	}{
		{"C2", "Europe/London", time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC), "C2", "2026-04-06"},
		{"C1", "Europe/London", time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC), "C1", "2026-02-28"},
		{"FI", "Europe/London", time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC), "FI", "2027-01-16"},
		{"C3", "Europe/London", time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC), "C3", ""},
		// 23:30 UTC on 31 March is 00:30 on 1 April in London (BST).
		{"LondonSummer", "Europe/London", time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC), "C2", "2026-04-28"},
		// 03:00 UTC on 15 January is still the 14th in New York.
		{"NewYork", "America/New_York", time.Date(2026, 1, 15, 3, 0, 0, 0, time.UTC), "C2", "2026-02-10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mustExec(t, c.env, `UPDATE organisations SET time_zone = $2 WHERE id = $1`, c.o.id, tt.tz)
			c.db.Now = func() time.Time { return tt.at }
			d, err := c.defects.LogDefect(owner, c.o.job.ID, tt.code, "Observation", "")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if d.RemedialDue != nil {
				got = d.RemedialDue.Format(time.DateOnly)
			}
			if got != tt.want {
				t.Fatalf("remedial due = %q, want %q", got, tt.want)
			}
		})
	}
	if got, ok := fieldops.RemedialDue("C2", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); !ok || got.Format(time.DateOnly) != "2026-01-28" {
		t.Fatalf("RemedialDue(1 Jan) = %v, %v; want 28 Jan", got, ok)
	}
}

// TestDefectC1Alert: a C1 alerts every member who receives alerts, at
// once and in the same transaction; a C2 alerts no one.
func TestDefectC1Alert(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	eng := o.ctx[fieldops.RoleEngineer]
	d, err := c.defects.LogDefect(eng, o.job.ID, "C1", "Exposed live conductors at the meter tails", "Hallway")
	if err != nil {
		t.Fatal(err)
	}
	got, wantIDs := notified(t, c.env, o.id, "defect.c1", "defect_id", d.ID), holdersOf(o, fieldops.FlagAlertsReceive, fieldops.RoleEngineer)
	if !sameIDs(got, wantIDs) || len(got) != 3 {
		t.Fatalf("C1 told %v, want the owner, admin and manager %v", got, wantIDs)
	}
	if n := count(t, c.env, `SELECT count(*) FROM notifications n WHERE n.org_id = $1 AND n.kind = 'defect.c1'
		AND n.xmin::text = (SELECT xmin::text FROM defects WHERE id = $2)
		AND n.dedupe_key = 'defect.c1:' || $2 || ':' || n.user_id`, o.id, d.ID); n != 3 {
		t.Fatalf("%d of 3 alerts are in the defect's transaction with its dedupe key", n)
	}
	d2, err := c.defects.LogDefect(eng, o.job.ID, "C2", "No RCD", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := notified(t, c.env, o.id, "defect.c1", "defect_id", d2.ID); len(got) != 0 {
		t.Fatalf("a C2 alerted %v", got)
	}
	// An owner who logs a C1 is not told of their own find; the others are.
	d3, err := c.defects.LogDefect(o.ctx[fieldops.RoleOwner], o.job.ID, "C1", "Scorched socket", "Bedroom")
	if err != nil {
		t.Fatal(err)
	}
	if got := notified(t, c.env, o.id, "defect.c1", "defect_id", d3.ID); !sameIDs(got, holdersOf(o, fieldops.FlagAlertsReceive, fieldops.RoleOwner)) {
		t.Fatalf("owner's C1 told %v", got)
	}
}

// TestDefectOpenOverdueResolve: the Open and Overdue filters follow the
// organisation's day; a resolved defect cannot be resolved again.
func TestDefectOpenOverdueResolve(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	owner, mgr := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleManager]
	c.db.Now = func() time.Time { return time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC) }
	c2 := c.mustDefect(t, o.job.ID, "C2") // due 28 May
	c3 := c.mustDefect(t, o.job.ID, "C3")
	ids := func(f fieldops.DefectFilter) string {
		t.Helper()
		ds, err := c.defects.FindDefects(owner, f)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprint(d.ID))
		}
		return strings.Join(s, ",")
	}
	both := fmt.Sprintf("%d,%d", c3.ID, c2.ID)
	if got := ids(fieldops.DefectFilter{Open: true}); got != both {
		t.Fatalf("open = %s, want %s", got, both)
	}
	c.db.Now = func() time.Time { return time.Date(2026, 5, 28, 22, 59, 0, 0, time.UTC) } // 23:59 on the due day in London
	if got := ids(fieldops.DefectFilter{Overdue: true}); got != "" {
		t.Fatalf("overdue on the due day = %s, want none", got)
	}
	c.db.Now = func() time.Time { return time.Date(2026, 5, 28, 23, 0, 0, 0, time.UTC) } // 00:00 on 29 May in London
	if got := ids(fieldops.DefectFilter{Overdue: true}); got != fmt.Sprint(c2.ID) {
		t.Fatalf("overdue the day after = %s, want %d", got, c2.ID)
	}
	t.Run("Resolve/OK", func(t *testing.T) {
		d, err := c.defects.ResolveDefect(mgr, c2.ID, "  Replaced the socket  ")
		if err != nil {
			t.Fatal(err)
		}
		if d.Open() || d.Resolution != "Replaced the socket" || d.ResolvedBy != o.user[fieldops.RoleManager] {
			t.Fatalf("resolved = %+v", d)
		}
		if got := ids(fieldops.DefectFilter{Overdue: true}); got != "" {
			t.Fatalf("overdue after resolving = %s", got)
		}
		if got := ids(fieldops.DefectFilter{Open: true}); got != fmt.Sprint(c3.ID) {
			t.Fatalf("open after resolving = %s", got)
		}
		if action, _, _ := lastAudit(t, c.env, o.id); action != "defect.resolve" {
			t.Fatalf("last audit = %s", action)
		}
	})
	t.Run("ResolveAgain/ErrConflict", func(t *testing.T) {
		_, err := c.defects.ResolveDefect(mgr, c2.ID, "Again")
		wantCode(t, err, fieldops.ECONFLICT)
	})
	t.Run("NoResolution/ErrInvalid", func(t *testing.T) {
		_, err := c.defects.ResolveDefect(mgr, c3.ID, "   ")
		wantField(t, err, fieldops.EINVALID, "resolution")
	})
}

// TestDefectInvalid: bad input names the field and writes nothing.
func TestDefectInvalid(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	owner := o.ctx[fieldops.RoleOwner]
	before := snapshot(t, c.env, o.id)
	for _, tt := range []struct {
		name, code, description, location, field string
	}{
		{"UnknownCode", "C4", "Something", "", "code"},
		{"LowerCase", "c1", "Something", "", "code"},
		{"GasCode", "ID", "Something", "", "code"},
		{"EmptyDescription", "C2", "   ", "", "description"},
		{"LongDescription", "C2", strings.Repeat("x", 2001), "", "description"},
		{"LongLocation", "C2", "Something", strings.Repeat("y", 201), "location"},
	} {
		t.Run(tt.name+"/ErrInvalid", func(t *testing.T) {
			_, err := c.defects.LogDefect(owner, o.job.ID, tt.code, tt.description, tt.location)
			wantField(t, err, fieldops.EINVALID, tt.field)
		})
	}
	if snapshot(t, c.env, o.id) != before {
		t.Fatal("invalid input changed something")
	}
	if _, err := c.defects.LogDefect(owner, o.job.ID, "C3", strings.Repeat("x", 2000), ""); err != nil {
		t.Fatalf("2000 characters: %v", err)
	}
	if count(t, c.env, `SELECT count(*) FROM defects WHERE org_id = $1`, o.id) != 1 {
		t.Fatal("invalid defects were written")
	}
}

// TestDefectTenant: another organisation's defects are not found.
func TestDefectTenant(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	other := mustOrg(t, c.env)
	ctx := other.ctx[fieldops.RoleOwner]
	d := c.mustDefect(t, c.o.job.ID, "C2")
	before := snapshot(t, c.env, c.o.id)
	_, err := c.defects.LogDefect(ctx, c.o.job.ID, "C1", "Mine now", "")
	wantCode(t, err, fieldops.ENOTFOUND)
	_, err = c.defects.FindDefectByID(ctx, d.ID)
	wantCode(t, err, fieldops.ENOTFOUND)
	_, err = c.defects.ResolveDefect(ctx, d.ID, "Done")
	wantCode(t, err, fieldops.ENOTFOUND)
	list, err := c.defects.FindDefects(ctx, fieldops.DefectFilter{JobID: c.o.job.ID})
	if err != nil || len(list) != 0 {
		t.Fatalf("other organisation's list = %v, %v", list, err)
	}
	if snapshot(t, c.env, c.o.id) != before || count(t, c.env, `SELECT count(*) FROM defects WHERE id = $1 AND resolved_at IS NULL`, d.ID) != 1 {
		t.Error("the other organisation changed something")
	}
}
