package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// scheduleRow returns the engineer's row of the board, failing when absent.
func scheduleRow(t *testing.T, s *fieldops.Schedule, userID int64) *fieldops.ScheduleRow {
	t.Helper()
	for i := range s.Engineers {
		if s.Engineers[i].UserID == userID {
			return &s.Engineers[i]
		}
	}
	t.Fatalf("engineer %d is not on the board of %s", userID, s.Day.Format(time.DateOnly))
	return nil
}

func boardHas(s *fieldops.Schedule, jobID int64) bool {
	for _, r := range s.Engineers {
		for _, j := range r.Jobs {
			if j.ID == jobID {
				return true
			}
		}
	}
	return false
}

func TestFindScheduleByRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			s, err := e.jobs.FindSchedule(o.ctx[role], fieldops.ScheduleQuery{Day: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)})
			if fieldops.RoleGrants(role).Scope(fieldops.FlagScheduleViewTeam) == fieldops.ScopeNone {
				wantCode(t, err, fieldops.EFORBIDDEN)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Engineers are those who can check in; the fixture's job is
			// on the engineer's row.
			for _, r := range fieldops.AllRoles() {
				on := false
				for _, row := range s.Engineers {
					on = on || row.UserID == o.user[r]
				}
				if want := fieldops.RoleGrants(r).Scope(fieldops.FlagJobCheckIn) != fieldops.ScopeNone; on != want {
					t.Errorf("%s on the board = %v, want %v", r, on, want)
				}
			}
			if got := jobIDs(scheduleRow(t, s, o.user[fieldops.RoleEngineer]).Jobs); len(got) != 1 || got[0] != o.job.ID {
				t.Errorf("engineer's jobs = %v, want [%d]", got, o.job.ID)
			}
		})
	}
}

func TestFindSchedule(t *testing.T) {
	t.Parallel()
	c := newCapEnv(t)
	o := c.o
	manager := o.ctx[fieldops.RoleManager]
	eng, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	utc := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	day := func(t *testing.T, d time.Time) *fieldops.Schedule {
		t.Helper()
		s, err := c.jobs.FindSchedule(manager, fieldops.ScheduleQuery{Day: d})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// London is on GMT in November: local days are UTC days.
	late := c.job(t, 0, utc(23, 22, 0), utc(24, 2, 0), 0, eng) // spans midnight
	morning := c.job(t, 0, utc(23, 8, 0), utc(23, 10, 0), 0, eng, mgr)
	cancelled := c.job(t, 0, utc(23, 12, 0), utc(23, 13, 0), 0, eng)
	if _, err := c.jobs.CancelJob(o.ctx[fieldops.RoleOwner], cancelled.ID); err != nil {
		t.Fatal(err)
	}
	deleted := c.job(t, 0, utc(23, 14, 0), utc(23, 15, 0), 0, eng)
	if err := c.jobs.DeleteJob(o.ctx[fieldops.RoleOwner], deleted.ID); err != nil {
		t.Fatal(err)
	}
	// Another organisation's job on the same day, for its own engineer.
	other := mustOrg(t, c.env)
	foreign := mustJob(t, c.env, other.ctx[fieldops.RoleOwner], other.customer.ID, other.site.ID, utc(23, 9, 0),
		fieldops.Assignment{UserID: other.user[fieldops.RoleEngineer], Primary: true})

	t.Run("OK", func(t *testing.T) {
		s := day(t, utc(23, 15, 0))
		if want := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC); !s.Day.Equal(want) {
			t.Errorf("day = %v, want %v", s.Day, want)
		}
		if got := jobIDs(scheduleRow(t, s, eng).Jobs); len(got) != 2 || got[0] != morning.ID || got[1] != late.ID {
			t.Errorf("engineer's jobs = %v, want [%d %d] (by start, without the cancelled and deleted jobs)", got, morning.ID, late.ID)
		}
		if got := jobIDs(scheduleRow(t, s, mgr).Jobs); len(got) != 1 || got[0] != morning.ID {
			t.Errorf("manager's jobs = %v, want [%d]", got, morning.ID)
		}
		if r := scheduleRow(t, s, eng); len(r.Jobs[0].Engineers) != 2 || r.Jobs[0].CustomerName == "" || r.Name == "" {
			t.Errorf("jobs are not loaded in full: %+v", r.Jobs[0])
		}
	})
	t.Run("Pages", func(t *testing.T) {
		all := day(t, utc(23, 12, 0))
		if all.Page != 1 || all.Pages != 1 || all.PerPage != fieldops.DefaultSchedulePerPage || all.Total != len(all.Engineers) || all.Total < 3 {
			t.Fatalf("one page of everyone: page %d of %d, %d per page, total %d, %d rows", all.Page, all.Pages, all.PerPage, all.Total, len(all.Engineers))
		}
		// One engineer a page: page n is the n-th engineer by name, with
		// that engineer's jobs; past the last page is the last page.
		for n := 1; n <= all.Total+1; n++ {
			s, err := c.jobs.FindSchedule(manager, fieldops.ScheduleQuery{Day: utc(23, 12, 0), Page: n, PerPage: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := all.Engineers[min(n, all.Total)-1]
			if s.Pages != all.Total || s.Total != all.Total || s.Page != min(n, all.Total) || len(s.Engineers) != 1 {
				t.Fatalf("page %d: page %d of %d, total %d, %d rows", n, s.Page, s.Pages, s.Total, len(s.Engineers))
			}
			if got := s.Engineers[0]; got.UserID != want.UserID || !slices.Equal(jobIDs(got.Jobs), jobIDs(want.Jobs)) {
				t.Errorf("page %d = engineer %d with jobs %v, want %d with %v", n, got.UserID, jobIDs(got.Jobs), want.UserID, jobIDs(want.Jobs))
			}
		}
		// The name filter ignores case; no match is an empty first page.
		eng := scheduleRow(t, all, eng)
		s, err := c.jobs.FindSchedule(manager, fieldops.ScheduleQuery{Day: utc(23, 12, 0), Name: " " + strings.ToUpper(eng.Name) + " "})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total != 1 || len(s.Engineers) != 1 || s.Engineers[0].UserID != eng.UserID || len(s.Engineers[0].Jobs) != len(eng.Jobs) {
			t.Errorf("engineers named %q: %+v", eng.Name, s.Engineers)
		}
		s, err = c.jobs.FindSchedule(manager, fieldops.ScheduleQuery{Day: utc(23, 12, 0), Name: "nobody-is-called-this", Page: 3})
		if err != nil || s.Total != 0 || s.Pages != 1 || s.Page != 1 || len(s.Engineers) != 0 {
			t.Errorf("no match = %+v, %v; want an empty page 1 of 1", s, err)
		}
		for _, q := range []fieldops.ScheduleQuery{{Page: -1}, {PerPage: -1}, {PerPage: fieldops.MaxSchedulePerPage + 1}} {
			q.Day = utc(23, 12, 0)
			_, err := c.jobs.FindSchedule(manager, q)
			wantCode(t, err, fieldops.EINVALID)
		}
	})
	t.Run("SpansMidnight", func(t *testing.T) {
		s := day(t, utc(24, 12, 0))
		if got := jobIDs(scheduleRow(t, s, eng).Jobs); len(got) != 1 || got[0] != late.ID {
			t.Errorf("engineer's jobs on the 24th = %v, want [%d]", got, late.ID)
		}
		if s := day(t, utc(25, 12, 0)); boardHas(s, late.ID) {
			t.Error("a job that ended at 02:00 on the 24th is on the 25th")
		}
		if s := day(t, utc(22, 12, 0)); boardHas(s, late.ID) || boardHas(s, morning.ID) {
			t.Error("jobs of the 23rd are on the 22nd")
		}
	})
	t.Run("OtherOrganisation", func(t *testing.T) {
		for _, d := range []int{23, 24} {
			s := day(t, utc(d, 12, 0))
			if boardHas(s, foreign.ID) {
				t.Errorf("another organisation's job is on the board of the %dth", d)
			}
			for _, r := range s.Engineers {
				if r.UserID == other.user[fieldops.RoleEngineer] {
					t.Error("another organisation's engineer is on the board")
				}
			}
		}
	})
	t.Run("TimeZone", func(t *testing.T) {
		mustExec(t, c.env, `UPDATE organisations SET time_zone = 'America/New_York' WHERE id = $1`, o.id)
		t.Cleanup(func() { mustExec(t, c.env, `UPDATE organisations SET time_zone = 'Europe/London' WHERE id = $1`, o.id) })
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		// 22:00–02:00 UTC on the 23rd is 17:00–21:00 in New York (EST):
		// only on the 23rd there.
		s := day(t, utc(24, 1, 0)) // 20:00 on the 23rd in New York
		if want := time.Date(2026, 11, 23, 0, 0, 0, 0, ny); !s.Day.Equal(want) {
			t.Errorf("day = %v, want %v", s.Day, want)
		}
		if !boardHas(s, late.ID) || !boardHas(s, morning.ID) {
			t.Error("the jobs of the 23rd in New York are missing")
		}
		if s := day(t, time.Date(2026, 11, 24, 12, 0, 0, 0, ny)); boardHas(s, late.ID) {
			t.Error("a job that ended at 21:00 New York time is on the next New York day")
		}
		// 08:00 UTC on the 23rd is 03:00 in New York, so the morning job
		// is not on the 22nd there, and a job at 03:00–04:30 UTC on the
		// 23rd (22:00–23:30 on the 22nd in New York) is.
		evening := c.job(t, 0, utc(23, 3, 0), utc(23, 4, 30), 0, eng)
		s = day(t, time.Date(2026, 11, 22, 12, 0, 0, 0, ny))
		if got := jobIDs(scheduleRow(t, s, eng).Jobs); len(got) != 1 || got[0] != evening.ID {
			t.Errorf("engineer's jobs on the 22nd in New York = %v, want [%d]", got, evening.ID)
		}
		if s := day(t, utc(23, 12, 0)); boardHas(s, evening.ID) {
			t.Error("a job of the 22nd in New York is on the 23rd")
		}
		// The day the clocks go forward is 23 hours long: 8 March 2026,
		// 05:00 to 04:00 UTC of the 9th.
		dst := c.job(t, 0, time.Date(2026, 3, 9, 3, 30, 0, 0, time.UTC), time.Date(2026, 3, 9, 3, 45, 0, 0, time.UTC), 0, eng) // 23:30 EDT on the 8th
		after := c.job(t, 0, time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 5, 0, 0, 0, time.UTC), 0, eng) // 00:00 EDT on the 9th
		s = day(t, time.Date(2026, 3, 8, 12, 0, 0, 0, ny))
		if !boardHas(s, dst.ID) || boardHas(s, after.ID) {
			t.Errorf("8 March in New York: want job %d and not %d, got %v", dst.ID, after.ID, jobIDs(scheduleRow(t, s, eng).Jobs))
		}
	})
}
