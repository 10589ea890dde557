package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/scheduler"
)

// fakeWork records the slots each task ran for, in memory.
type fakeWork struct {
	orgs []fieldops.OrgClock

	mu      sync.Mutex
	claimed map[string]bool
	ran     map[string][]time.Time // "task/org" -> slots
}

func newFakeWork(orgs ...fieldops.OrgClock) *fakeWork {
	return &fakeWork{orgs: orgs, claimed: map[string]bool{}, ran: map[string][]time.Time{}}
}

func (f *fakeWork) Organisations(context.Context) ([]fieldops.OrgClock, error) { return f.orgs, nil }

func (f *fakeWork) ClaimSlot(_ context.Context, task string, orgID int64, slot time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fmt.Sprintf("%s/%d/%d", task, orgID, slot.UnixNano())
	if f.claimed[k] {
		return false, nil
	}
	f.claimed[k] = true
	return true, nil
}

func (f *fakeWork) FinishSlot(context.Context, string, int64, time.Time, error) error { return nil }

func (f *fakeWork) note(task string) func(context.Context, int64, time.Time) (int, error) {
	return func(_ context.Context, orgID int64, slot time.Time) (int, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		k := fmt.Sprintf("%s/%d", task, orgID)
		f.ran[k] = append(f.ran[k], slot)
		return 1, nil
	}
}

func (f *fakeWork) slots(task string, orgID int64) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran[fmt.Sprintf("%s/%d", task, orgID)])
}

func (f *fakeWork) MorningAgenda(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskMorningAgenda)(ctx, o, s)
}
func (f *fakeWork) JobReminders(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskJobReminders)(ctx, o, s)
}
func (f *fakeWork) NoShowAlerts(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskNoShowAlerts)(ctx, o, s)
}
func (f *fakeWork) ForgottenCheckOut(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskForgottenCheckOut)(ctx, o, s)
}
func (f *fakeWork) ExpireInvitations(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskExpireInvitations)(ctx, o, s)
}
func (f *fakeWork) RemedialReminders(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskRemedialReminders)(ctx, o, s)
}
func (f *fakeWork) InspectionReminders(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskInspectionReminders)(ctx, o, s)
}
func (f *fakeWork) OwnerDigest(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskOwnerDigest)(ctx, o, s)
}
func (f *fakeWork) PurgeExpired(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskPurgeExpired)(ctx, o, s)
}
func (f *fakeWork) VerifyAuditChain(ctx context.Context, o int64, s time.Time) (int, error) {
	return f.note(fieldops.TaskVerifyAuditChain)(ctx, o, s)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Each organisation gets its 07:30 agenda at 07:30 on its own clock,
// across the change from BST to GMT on 25 October 2026 and the change to
// BST on 29 March 2026; Tokyo has no daylight saving.
func TestScheduler_TimeZones(t *testing.T) {
	for _, tc := range []struct {
		name       string
		from, to   string
		london     []string
		tokyo      []string
		purgeLondn []string
	}{
		{
			name: "Autumn", from: "2026-10-24T00:00:00Z", to: "2026-10-27T00:00:00Z",
			london: []string{"2026-10-24T06:30:00Z", "2026-10-25T07:30:00Z", "2026-10-26T07:30:00Z"},
			tokyo:  []string{"2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z", "2026-10-26T22:30:00Z"},
			// 03:00 local: BST on the 24th, GMT on the 25th (after 02:00 BST became 01:00 GMT).
			purgeLondn: []string{"2026-10-24T02:00:00Z", "2026-10-25T03:00:00Z", "2026-10-26T03:00:00Z"},
		},
		{
			name: "Spring", from: "2026-03-28T00:00:00Z", to: "2026-03-30T00:00:00Z",
			london:     []string{"2026-03-28T07:30:00Z", "2026-03-29T06:30:00Z"},
			tokyo:      []string{"2026-03-28T22:30:00Z", "2026-03-29T22:30:00Z"},
			purgeLondn: []string{"2026-03-28T03:00:00Z", "2026-03-29T02:00:00Z"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWork(fieldops.OrgClock{OrgID: 1, TimeZone: "Europe/London"}, fieldops.OrgClock{OrgID: 2, TimeZone: "Asia/Tokyo"})
			s := scheduler.New(w, nil, scheduler.WithCatchUp(time.Minute))
			for now := utc(tc.from); now.Before(utc(tc.to)); now = now.Add(time.Minute) {
				s.RunDue(context.Background(), now)
			}
			check := func(task string, org int64, want []string, tz string) {
				t.Helper()
				loc, _ := time.LoadLocation(tz)
				got := w.slots(task, org)
				var gotS []string
				for _, g := range got {
					gotS = append(gotS, g.UTC().Format(time.RFC3339))
				}
				if !slices.Equal(gotS, want) {
					t.Errorf("%s for %s at %v, want %v", task, tz, gotS, want)
				}
				for _, g := range got {
					if task == fieldops.TaskMorningAgenda && g.In(loc).Format("15:04") != "07:30" {
						t.Errorf("%s for %s at %s local", task, tz, g.In(loc).Format(time.DateTime))
					}
				}
			}
			check(fieldops.TaskMorningAgenda, 1, tc.london, "Europe/London")
			check(fieldops.TaskMorningAgenda, 2, tc.tokyo, "Asia/Tokyo")
			check(fieldops.TaskPurgeExpired, 1, tc.purgeLondn, "Europe/London")
			days := int(utc(tc.to).Sub(utc(tc.from)) / (24 * time.Hour))
			if n := len(w.slots(fieldops.TaskJobReminders, 2)); n != days*24*12 {
				t.Errorf("job reminders ran %d times, want %d", n, days*24*12)
			}
		})
	}
}

// A tick after a gap catches up the slots it missed within the catch-up
// window, once; a clock that goes back runs nothing twice.
func TestScheduler_CatchUp(t *testing.T) {
	w := newFakeWork(fieldops.OrgClock{OrgID: 1, TimeZone: "Europe/London"})
	s := scheduler.New(w, nil, scheduler.WithCatchUp(time.Hour))
	s.RunDue(context.Background(), utc("2026-12-01T07:00:00Z"))
	s.RunDue(context.Background(), utc("2026-12-01T07:45:00Z")) // 07:30 was missed
	s.RunDue(context.Background(), utc("2026-12-01T07:40:00Z")) // clock went back
	s.RunDue(context.Background(), utc("2026-12-01T07:46:00Z"))
	if got := w.slots(fieldops.TaskMorningAgenda, 1); len(got) != 1 || !got[0].Equal(utc("2026-12-01T07:30:00Z")) {
		t.Errorf("agenda slots %v, want the missed 07:30 once", got)
	}
	// Reminders run for the latest slot only: they read what is due from the database.
	if got := w.slots(fieldops.TaskJobReminders, 1); len(got) != 2 {
		t.Errorf("reminder slots %v, want 07:00 and 07:45", got)
	}
}
