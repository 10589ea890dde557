package store_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// capEnv is an organisation for capacity tests: the fixture of mustOrg
// with room for more engineers and the capacity service.
type capEnv struct {
	*env
	o   *org
	cap *store.CapacityService
}

func newCapEnv(t *testing.T) *capEnv {
	t.Helper()
	e := newEnv(t)
	o := mustOrg(t, e)
	if _, err := e.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 12); err != nil {
		t.Fatal(err)
	}
	return &capEnv{env: e, o: o, cap: store.NewCapacityService(e.db)}
}

// job books a job for the engineers (the first is primary). estimate 0
// is the length of the window.
func (c *capEnv) job(t *testing.T, siteID int64, start, end time.Time, estimate int, engineers ...int64) *fieldops.Job {
	t.Helper()
	as := make([]fieldops.Assignment, len(engineers))
	for i, id := range engineers {
		as[i] = fieldops.Assignment{UserID: id, Primary: i == 0}
	}
	if siteID == 0 {
		siteID = c.o.site.ID
	}
	j, err := c.jobs.CreateJob(c.o.ctx[fieldops.RoleOwner], fieldops.NewJob{CustomerID: c.o.customer.ID, SiteID: siteID, Type: "repair",
		Title: "Repair", ScheduledStart: start, ScheduledEnd: end, EstimatedMinutes: estimate, Engineers: as})
	if err != nil {
		t.Fatalf("create job %v–%v: %v", start, end, err)
	}
	return j
}

func (c *capEnv) week(t *testing.T, weekOf time.Time) *fieldops.CapacityWeek {
	t.Helper()
	w, err := c.cap.FindCapacityWeek(c.o.ctx[fieldops.RoleManager], weekOf)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// row returns the engineer's row of the board, failing when absent.
func row(t *testing.T, w *fieldops.CapacityWeek, userID int64) *fieldops.EngineerWeek {
	t.Helper()
	for i := range w.Engineers {
		if w.Engineers[i].UserID == userID {
			return &w.Engineers[i]
		}
	}
	t.Fatalf("engineer %d is not on the board", userID)
	return nil
}

func hasRow(w *fieldops.CapacityWeek, userID int64) bool {
	for _, e := range w.Engineers {
		if e.UserID == userID {
			return true
		}
	}
	return false
}

// wantDays compares an engineer's booked minutes, Monday to Sunday.
func wantDays(t *testing.T, w *fieldops.CapacityWeek, userID int64, booked [7]int) {
	t.Helper()
	r := row(t, w, userID)
	var got [7]int
	total := 0
	for i, d := range r.Days {
		got[i] = d.BookedMinutes
		total += booked[i]
	}
	if got != booked {
		t.Fatalf("%s: booked minutes Mon..Sun = %v, want %v", r.Name, got, booked)
	}
	if r.BookedMinutes != total {
		t.Fatalf("%s: week booked = %d, want %d", r.Name, r.BookedMinutes, total)
	}
}

// wantLevels compares an engineer's levels and percents, Monday to Sunday.
func wantLevels(t *testing.T, w *fieldops.CapacityWeek, userID int64, levels [7]string, percents [7]int) {
	t.Helper()
	r := row(t, w, userID)
	var gl [7]string
	var gp [7]int
	for i, d := range r.Days {
		gl[i], gp[i] = d.Level, d.Percent
	}
	if gl != levels || gp != percents {
		t.Fatalf("%s: levels %v %v, want %v %v", r.Name, gl, gp, levels, percents)
	}
}

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// at is a local time in London.
func at(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, london)
}

// capacityWeekFixture books the week of Monday 23 November 2026 (London
// is on GMT, so local = UTC). Hand-computed figures, in minutes:
//
//	engineer E   Mon 09:00–12:00 and 11:00–13:00, overlapping: 180 + 120 = 300
//	             Tue 08:00–14:00 with E2: 360
//	             Thu 08:00–18:00 estimated 300 (window 600): 600 × 300/600 = 300
//	             Sat 10:00–12:00: 120 on a day without working time
//	             Fri 09:00–17:00 cancelled, and Wed 09:00–17:00 deleted: 0
//	engineer E2  Sun 22 23:00 – Mon 00:00+01:00: 60 on Monday
//	             Tue with E: 360
//	             Wed 22:00 – Thu 02:00: 120 + 120
//	             Fri 20:00 – Sat 04:00 estimated 240 (window 480): 120 + 120
//	manager M    Fri 20 08:00 – Tue 24 08:00 (96 h, started before the week): Mon 1440, Tue 480
//	outside      Sun 22 20:00–23:00 and Mon 30 00:00–01:00 for E: not this week
func capacityWeekFixture(t *testing.T, c *capEnv) (e, e2, m int64) {
	t.Helper()
	e, m = c.o.user[fieldops.RoleEngineer], c.o.user[fieldops.RoleManager]
	e2 = mustMember(t, c.env, c.o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer).UserID
	c.job(t, 0, at(2026, 11, 23, 9, 0), at(2026, 11, 23, 12, 0), 0, e)
	c.job(t, 0, at(2026, 11, 23, 11, 0), at(2026, 11, 23, 13, 0), 0, e)
	c.job(t, 0, at(2026, 11, 24, 8, 0), at(2026, 11, 24, 14, 0), 0, e, e2)
	c.job(t, 0, at(2026, 11, 26, 8, 0), at(2026, 11, 26, 18, 0), 300, e)
	c.job(t, 0, at(2026, 11, 28, 10, 0), at(2026, 11, 28, 12, 0), 0, e)
	cancelled := c.job(t, 0, at(2026, 11, 27, 9, 0), at(2026, 11, 27, 17, 0), 0, e)
	mustExec(t, c.env, `UPDATE jobs SET status = 'cancelled', cancelled_at = now() WHERE id = $1`, cancelled.ID)
	deleted := c.job(t, 0, at(2026, 11, 25, 9, 0), at(2026, 11, 25, 17, 0), 0, e)
	mustExec(t, c.env, `UPDATE jobs SET deleted_at = now() WHERE id = $1`, deleted.ID)

	c.job(t, 0, at(2026, 11, 22, 23, 0), at(2026, 11, 23, 1, 0), 0, e2)
	c.job(t, 0, at(2026, 11, 25, 22, 0), at(2026, 11, 26, 2, 0), 0, e2)
	c.job(t, 0, at(2026, 11, 27, 20, 0), at(2026, 11, 28, 4, 0), 240, e2)

	c.job(t, 0, at(2026, 11, 20, 8, 0), at(2026, 11, 24, 8, 0), 0, m)

	c.job(t, 0, at(2026, 11, 22, 20, 0), at(2026, 11, 22, 23, 0), 0, e)
	c.job(t, 0, at(2026, 11, 30, 0, 0), at(2026, 11, 30, 1, 0), 0, e)
	return e, e2, m
}

func TestCapacityService_FindCapacityWeek(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	e, e2, m := capacityWeekFixture(t, c)
	// The admin has no working time and no bookings: not on the board.
	mustExec(t, c.env, `UPDATE memberships SET working_minutes = '{0,0,0,0,0,0,0}' WHERE org_id = $1 AND user_id = $2`, c.o.id, c.o.user[fieldops.RoleAdmin])

	// Any day of the week gives the same week, also a Sunday evening.
	for _, weekOf := range []time.Time{at(2026, 11, 23, 0, 0), at(2026, 11, 25, 15, 0), at(2026, 11, 29, 23, 59)} {
		w := c.week(t, weekOf)
		if !w.Start.Equal(at(2026, 11, 23, 0, 0)) || w.Start.Location().String() != "Europe/London" {
			t.Fatalf("Start = %v, want Monday 23 November 00:00 London", w.Start)
		}
		if w.AmberPct != 70 || w.RedPct != 90 {
			t.Fatalf("thresholds = %d/%d, want the defaults 70/90", w.AmberPct, w.RedPct)
		}
		wantDays(t, w, e, [7]int{300, 360, 0, 300, 0, 120, 0})
		wantDays(t, w, e2, [7]int{60, 360, 120, 120, 120, 120, 0})
		wantDays(t, w, m, [7]int{1440, 480, 0, 0, 0, 0, 0})
		wantDays(t, w, c.o.user[fieldops.RoleOwner], [7]int{})
	}
	w := c.week(t, at(2026, 11, 23, 0, 0))

	t.Run("Levels", func(t *testing.T) {
		// 300/480 = 62.5 % rounds to 63; 360/480 = 75 %; Saturday has no
		// working time, so a booking there is red; Sunday is off.
		wantLevels(t, w, e, [7]string{"green", "amber", "green", "green", "green", "red", "off"}, [7]int{63, 75, 0, 63, 0, 0, 0})
		wantLevels(t, w, m, [7]string{"red", "red", "green", "green", "green", "off", "off"}, [7]int{300, 100, 0, 0, 0, 0, 0})
		r := row(t, w, e)
		if r.WorkingMinutes != 2400 || r.BookedMinutes != 1080 {
			t.Fatalf("week = %d/%d, want 1080/2400", r.BookedMinutes, r.WorkingMinutes)
		}
		if p, l := r.Level(w.AmberPct, w.RedPct); p != 45 || l != "green" {
			t.Fatalf("week level = %d %s, want 45 green", p, l)
		}
		for i, d := range r.Days {
			if want := at(2026, 11, 23+i, 0, 0); !d.Date.Equal(want) {
				t.Fatalf("day %d = %v, want %v", i, d.Date, want)
			}
		}
	})

	t.Run("WhoIsOnTheBoard", func(t *testing.T) {
		// Owner, manager, engineers: they can check in. The admin can too
		// but has neither working time nor bookings. Office staff, read-only
		// and accountant cannot be put on jobs.
		for role, want := range map[fieldops.Role]bool{fieldops.RoleOwner: true, fieldops.RoleAdmin: false, fieldops.RoleManager: true,
			fieldops.RoleEngineer: true, fieldops.RoleOfficeStaff: false, fieldops.RoleReadOnly: false, fieldops.RoleAccountant: false} {
			if got := hasRow(w, c.o.user[role]); got != want {
				t.Errorf("%s on the board = %v, want %v", role, got, want)
			}
		}
		if len(w.Engineers) != 4 {
			t.Fatalf("%d engineers, want 4 (owner, manager, engineer, E2)", len(w.Engineers))
		}
		for i := 1; i < len(w.Engineers); i++ {
			if w.Engineers[i-1].Name > w.Engineers[i].Name {
				t.Fatalf("not by name: %q before %q", w.Engineers[i-1].Name, w.Engineers[i].Name)
			}
		}
	})

	t.Run("RemovedAndRevokedAreNotEngineers", func(t *testing.T) {
		if err := c.members.RemoveMember(c.o.ctx[fieldops.RoleOwner], e2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.members.SetOverrides(c.o.ctx[fieldops.RoleOwner], m, []fieldops.Override{{Flag: fieldops.FlagJobCheckIn, Scope: fieldops.ScopeNone}}); err != nil {
			t.Fatal(err)
		}
		w := c.week(t, at(2026, 11, 23, 0, 0))
		if hasRow(w, e2) || hasRow(w, m) {
			t.Fatal("a removed member, or one whose check-in was revoked, is still on the board")
		}
		wantDays(t, w, e, [7]int{300, 360, 0, 300, 0, 120, 0})
	})
}

func TestCapacityService_Thresholds(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	e, e2, _ := capacityWeekFixture(t, c)
	owner := c.o.ctx[fieldops.RoleOwner]
	if _, err := c.orgs.UpdateOrganisation(owner, fieldops.OrganisationUpdate{CapacityAmberPct: ptr(20), CapacityRedPct: ptr(70)}); err != nil {
		t.Fatal(err)
	}
	w := c.week(t, at(2026, 11, 23, 0, 0))
	if w.AmberPct != 20 || w.RedPct != 70 {
		t.Fatalf("thresholds = %d/%d, want 20/70", w.AmberPct, w.RedPct)
	}
	// E: 63 % amber now (was green), 75 % red (was amber).
	wantLevels(t, w, e, [7]string{"amber", "red", "green", "amber", "green", "red", "off"}, [7]int{63, 75, 0, 63, 0, 0, 0})
	// E2: Mon 60/480 = 12.5 → 13 green, Wed and Thu 25 % amber.
	wantLevels(t, w, e2, [7]string{"green", "red", "amber", "amber", "amber", "red", "off"}, [7]int{13, 75, 25, 25, 25, 0, 0})

	if _, err := c.orgs.UpdateOrganisation(owner, fieldops.OrganisationUpdate{CapacityAmberPct: ptr(80), CapacityRedPct: ptr(150)}); err != nil {
		t.Fatal(err)
	}
	w = c.week(t, at(2026, 11, 23, 0, 0))
	wantLevels(t, w, e, [7]string{"green", "green", "green", "green", "green", "red", "off"}, [7]int{63, 75, 0, 63, 0, 0, 0})
}

// TestCapacityService_DaylightSaving: days are local days of the
// organisation, 23 or 25 hours long when the clocks change.
func TestCapacityService_DaylightSaving(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	e, m := c.o.user[fieldops.RoleEngineer], c.o.user[fieldops.RoleManager]
	for _, tt := range []struct {
		name   string
		sunday time.Time
		day    int // minutes in the local Sunday
		night  int // minutes from Sunday 00:00 to 02:00 local
	}{
		{"AutumnBack", at(2026, 10, 25, 0, 0), 25 * 60, 180},  // 01:00–02:00 happens twice
		{"SpringForward", at(2027, 3, 28, 0, 0), 23 * 60, 60}, // 01:00–02:00 does not happen
	} {
		t.Run(tt.name, func(t *testing.T) {
			y, mo, d := tt.sunday.Date()
			c.job(t, 0, at(y, mo, d, 9, 0), at(y, mo, d, 17, 0), 0, e)
			c.job(t, 0, at(y, mo, d, 0, 0), at(y, mo, d+1, 0, 0), 0, m)
			// Saturday 22:00 to Sunday 02:00 local: 120 on Saturday and
			// the real time between local midnight and 02:00 on Sunday.
			c.job(t, 0, at(y, mo, d-1, 22, 0), at(y, mo, d, 2, 0), 0, e)
			if got := int(at(y, mo, d+1, 0, 0).Sub(at(y, mo, d, 0, 0)).Minutes()); got != tt.day {
				t.Fatalf("test clock: the local Sunday is %d minutes", got)
			}
			w := c.week(t, tt.sunday)
			if want := at(y, mo, d-6, 0, 0); !w.Start.Equal(want) {
				t.Fatalf("Start = %v, want %v", w.Start, want)
			}
			wantDays(t, w, e, [7]int{0, 0, 0, 0, 0, 120, 480 + tt.night})
			wantDays(t, w, m, [7]int{0, 0, 0, 0, 0, 0, tt.day})
			if got := row(t, w, m).Days[6].Date; !got.Equal(tt.sunday) {
				t.Fatalf("Sunday's date = %v", got)
			}
		})
	}

	t.Run("OrganisationZone", func(t *testing.T) {
		// The same instants in Tokyo (UTC+9): Monday 23 November 23:00 UTC
		// to 01:00 is Tuesday 08:00–10:00 there.
		o := mustOrg(t, c.env)
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Skip(err)
		}
		if _, err := c.orgs.UpdateOrganisation(o.ctx[fieldops.RoleOwner], fieldops.OrganisationUpdate{TimeZone: ptr("Asia/Tokyo")}); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC)
		if _, err := c.jobs.CreateJob(o.ctx[fieldops.RoleOwner], fieldops.NewJob{CustomerID: o.customer.ID, SiteID: o.site.ID, Type: "repair", Title: "Night",
			ScheduledStart: start, ScheduledEnd: start.Add(2 * time.Hour), Engineers: []fieldops.Assignment{{UserID: o.user[fieldops.RoleEngineer], Primary: true}}}); err != nil {
			t.Fatal(err)
		}
		w, err := c.cap.FindCapacityWeek(o.ctx[fieldops.RoleManager], start)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2026, 11, 23, 0, 0, 0, 0, tokyo); !w.Start.Equal(want) {
			t.Fatalf("Start = %v, want %v", w.Start, want)
		}
		wantDays(t, w, o.user[fieldops.RoleEngineer], [7]int{0, 120, 0, 0, 0, 0, 0})
	})
}

// TestCapacityService_OtherOrganisation: another organisation's jobs and
// people never appear, even for the same week.
func TestCapacityService_OtherOrganisation(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	e := c.o.user[fieldops.RoleEngineer]
	c.job(t, 0, at(2026, 11, 23, 9, 0), at(2026, 11, 23, 12, 0), 0, e)
	other := mustOrg(t, c.env)
	for i := range 3 {
		mustJob(t, c.env, other.ctx[fieldops.RoleOwner], other.customer.ID, other.site.ID, at(2026, 11, 23+i, 8, 0),
			fieldops.Assignment{UserID: other.user[fieldops.RoleEngineer], Primary: true})
	}
	w := c.week(t, at(2026, 11, 23, 0, 0))
	wantDays(t, w, e, [7]int{180, 0, 0, 0, 0, 0, 0})
	for _, u := range other.user {
		if hasRow(w, u) {
			t.Fatalf("a member of another organisation (%d) is on the board", u)
		}
	}
	ow, err := c.cap.FindCapacityWeek(other.ctx[fieldops.RoleManager], at(2026, 11, 23, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	wantDays(t, ow, other.user[fieldops.RoleEngineer], [7]int{180, 180, 180, 0, 0, 0, 0})
	if hasRow(ow, e) {
		t.Fatal("this organisation's engineer is on the other's board")
	}
}

func TestCapacityService_Roles(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	allowed := map[fieldops.Role]bool{fieldops.RoleOwner: true, fieldops.RoleAdmin: true, fieldops.RoleManager: true, fieldops.RoleOfficeStaff: true}
	for _, role := range fieldops.AllRoles() {
		if allowed[role] != (fieldops.RoleGrants(role).Scope(fieldops.FlagCapacityView) != fieldops.ScopeNone) {
			t.Fatalf("%s: the matrix and this test disagree about capacity.view", role)
		}
		want := fieldops.EFORBIDDEN
		if allowed[role] {
			want = ""
		}
		t.Run(role.String()+"/"+outcome(want), func(t *testing.T) {
			_, err := c.cap.FindCapacityWeek(c.o.ctx[role], at(2026, 11, 23, 0, 0))
			wantCode(t, err, want)
			_, err = c.cap.FindFreeNow(c.o.ctx[role], nil)
			wantCode(t, err, want)
		})
	}
	t.Run("Unauthorized", func(t *testing.T) {
		_, err := c.cap.FindCapacityWeek(context.Background(), at(2026, 11, 23, 0, 0))
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
	t.Run("OverrideGrants", func(t *testing.T) {
		// capacity.view granted to one engineer by an override.
		if _, err := c.members.SetOverrides(c.o.ctx[fieldops.RoleOwner], c.o.user[fieldops.RoleEngineer],
			[]fieldops.Override{{Flag: fieldops.FlagCapacityView, Scope: fieldops.ScopeAll}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.cap.FindCapacityWeek(c.o.ctx[fieldops.RoleEngineer], at(2026, 11, 23, 0, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCapacityService_FindFreeNow(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	owner := c.o.ctx[fieldops.RoleOwner]
	far, err := c.sites.CreateSite(owner, fieldops.SiteUpdate{CustomerID: c.o.customer.ID, Address: ptr("1 Whitehall, London"),
		Postcode: ptr("sw1a 2aa"), Latitude: ptr(51.5072), Longitude: ptr(-0.1276)})
	if err != nil {
		t.Fatal(err)
	}
	near := c.o.site // Manchester, 53.4794,-2.2453
	e, m, a, ow := c.o.user[fieldops.RoleEngineer], c.o.user[fieldops.RoleManager], c.o.user[fieldops.RoleAdmin], c.o.user[fieldops.RoleOwner]
	e2 := mustMember(t, c.env, owner, fieldops.RoleEngineer).UserID
	e3 := mustMember(t, c.env, owner, fieldops.RoleEngineer).UserID
	c.db.Now = func() time.Time { return at(2026, 11, 25, 13, 0) } // Wednesday 13:00

	c.job(t, far.ID, at(2026, 11, 25, 12, 0), at(2026, 11, 25, 14, 0), 0, e)  // E: on a job now
	c.job(t, near.ID, at(2026, 11, 25, 4, 0), at(2026, 11, 25, 12, 0), 0, e2) // E2: 480 min today, red
	c.job(t, far.ID, at(2026, 11, 25, 9, 0), at(2026, 11, 25, 11, 0), 0, e3)  // E3: finished in London, 120
	c.job(t, far.ID, at(2026, 11, 25, 7, 0), at(2026, 11, 25, 8, 0), 0, m)    // M: earlier in London ...
	c.job(t, near.ID, at(2026, 11, 25, 8, 0), at(2026, 11, 25, 10, 0), 0, m)  // ... last in Manchester
	c.job(t, far.ID, at(2026, 11, 25, 15, 0), at(2026, 11, 25, 16, 0), 0, m)  // ... and later: 240 today
	c.job(t, near.ID, at(2026, 11, 24, 9, 0), at(2026, 11, 24, 10, 0), 0, a)  // Admin: yesterday only ...
	c.job(t, near.ID, at(2026, 11, 25, 16, 0), at(2026, 11, 25, 17, 0), 0, a) // ... and later today: 60
	cancelled := c.job(t, far.ID, at(2026, 11, 25, 12, 30), at(2026, 11, 25, 14, 0), 0, a)
	mustExec(t, c.env, `UPDATE jobs SET status = 'cancelled', cancelled_at = now() WHERE id = $1`, cancelled.ID)
	// The owner does not work on Wednesdays and has nothing booked: off.
	mustExec(t, c.env, `UPDATE memberships SET working_minutes = '{480,480,0,480,480,0,0}' WHERE org_id = $1 AND user_id = $2`, c.o.id, ow)

	names := func(fs []*fieldops.FreeEngineer) []int64 {
		ids := make([]int64, len(fs))
		for i, f := range fs {
			ids[i] = f.UserID
		}
		return ids
	}

	t.Run("Nearest", func(t *testing.T) {
		free, err := c.cap.FindFreeNow(c.o.ctx[fieldops.RoleOfficeStaff], &fieldops.LatLng{Lat: 53.4794, Lng: -2.2453})
		if err != nil {
			t.Fatal(err)
		}
		// M finished last in Manchester (0 m), E3 in London (about 262 km);
		// the owner and the admin have no finished job today, so come
		// after, by booked minutes: owner 0, admin 60.
		if got, want := names(free), []int64{m, e3, ow, a}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("free = %v, want %v (m, e3, owner, admin)", got, want)
		}
		if d := free[0].DistanceM; d == nil || *d > 1 {
			t.Fatalf("M's distance = %v, want 0", d)
		}
		if d := free[1].DistanceM; d == nil || math.Abs(*d-262_000) > 2_000 {
			t.Fatalf("E3's distance = %v, want about 262 km", d)
		}
		if free[2].DistanceM != nil || free[3].DistanceM != nil {
			t.Fatal("unknown distances should be nil")
		}
		want := []struct {
			booked int
			level  string
		}{{240, "green"}, {120, "green"}, {0, "off"}, {60, "green"}}
		for i, w := range want {
			if free[i].BookedTodayMinutes != w.booked || free[i].Level != w.level {
				t.Fatalf("%s: booked %d %s, want %d %s", free[i].Name, free[i].BookedTodayMinutes, free[i].Level, w.booked, w.level)
			}
		}
	})

	t.Run("ByBookedWithoutLocation", func(t *testing.T) {
		free, err := c.cap.FindFreeNow(c.o.ctx[fieldops.RoleManager], nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := names(free), []int64{ow, a, e3, m}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("free = %v, want %v (owner, admin, e3, m)", got, want)
		}
		for _, f := range free {
			if f.DistanceM != nil {
				t.Fatalf("%s has a distance without a location", f.Name)
			}
		}
	})

	t.Run("TiesByBooked", func(t *testing.T) {
		// E3 finishes a second job in Manchester at 12:30: same site as M,
		// same distance, fewer minutes (120 + 30 < 240) go first.
		c.job(t, near.ID, at(2026, 11, 25, 12, 0), at(2026, 11, 25, 12, 30), 0, e3)
		free, err := c.cap.FindFreeNow(c.o.ctx[fieldops.RoleManager], &fieldops.LatLng{Lat: 53.4794, Lng: -2.2453})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := names(free), []int64{e3, m, ow, a}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("free = %v, want %v (e3, m, owner, admin)", got, want)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := c.cap.FindFreeNow(c.o.ctx[fieldops.RoleManager], &fieldops.LatLng{Lat: 95, Lng: 0})
		wantField(t, err, fieldops.EINVALID, "near")
	})
}
