package scheduler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/scheduler"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// env is one test's database.
type env struct {
	pool *pgxpool.Pool
	db   *store.DB
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	pool := storetest.MustOpenDB(tb)
	return &env{pool: pool, db: store.NewDB(pool, nil)}
}

var seq atomic.Int64

// org is an organisation with an owner, a manager and an engineer, and a
// job for the engineer.
type org struct {
	id                       int64
	owner, manager, engineer int64
	job                      *fieldops.Job
}

func ptr[T any](v T) *T { return &v }

// mustOrg starts an organisation in tz with a job at jobStart.
func mustOrg(tb testing.TB, e *env, tz string, jobStart time.Time) *org {
	tb.Helper()
	ctx := context.Background()
	n := seq.Add(1)
	u, err := e.db.CreateUser(ctx, fmt.Sprintf("owner%d@example.co.uk", n), fmt.Sprintf("Owner %d", n), "")
	if err != nil {
		tb.Fatal(err)
	}
	uctx := fieldops.NewContext(ctx, fieldops.Actor{UserID: u.ID, Channel: fieldops.ChannelWeb})
	o, err := store.NewOrganisationService(e.db).CreateOrganisation(uctx, fieldops.NewOrganisation{Name: fmt.Sprintf("Sparks %d Ltd", n), Plan: "team", TimeZone: tz})
	if err != nil {
		tb.Fatal(err)
	}
	res := &org{id: o.ID, owner: u.ID}
	octx := fieldops.NewContext(ctx, fieldops.Actor{UserID: u.ID, OrgID: o.ID, Channel: fieldops.ChannelWeb})
	members := store.NewMemberService(e.db)
	for _, m := range []struct {
		role fieldops.Role
		id   *int64
	}{{fieldops.RoleManager, &res.manager}, {fieldops.RoleEngineer, &res.engineer}} {
		mem, err := members.AddMember(octx, fieldops.NewMember{Email: fmt.Sprintf("%s%d@example.co.uk", m.role, n), Name: fmt.Sprintf("%s %d", m.role.Label(), n), Role: m.role})
		if err != nil {
			tb.Fatal(err)
		}
		*m.id = mem.UserID
	}
	c, err := store.NewCustomerService(e.db).CreateCustomer(octx, fieldops.CustomerUpdate{Name: ptr("Acme Lettings")})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.NewSiteService(e.db).CreateSite(octx, fieldops.SiteUpdate{CustomerID: c.ID, Address: ptr("1 Deansgate, Manchester"),
		Latitude: ptr(53.4794), Longitude: ptr(-2.2453)})
	if err != nil {
		tb.Fatal(err)
	}
	res.job, err = store.NewJobService(e.db).CreateJob(octx, fieldops.NewJob{CustomerID: c.ID, SiteID: s.ID, Type: "eicr", Title: "EICR",
		ScheduledStart: jobStart, ScheduledEnd: jobStart.Add(3 * time.Hour), Engineers: []fieldops.Assignment{{UserID: res.engineer, Primary: true}}})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func count(tb testing.TB, e *env, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// counter records every task run, across instances.
type counter struct {
	mu   sync.Mutex
	runs map[string]int
}

func (c *counter) note(task string, orgID int64, slot time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[fmt.Sprintf("%s/%d/%s", task, orgID, slot.UTC().Format(time.RFC3339))]++
}

// counted is one instance's work, noting each run in a shared counter.
type counted struct {
	fieldops.ScheduledWork
	c *counter
}

func (w counted) MorningAgenda(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	w.c.note(fieldops.TaskMorningAgenda, orgID, slot)
	return w.ScheduledWork.MorningAgenda(ctx, orgID, slot)
}

func (w counted) JobReminders(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	w.c.note(fieldops.TaskJobReminders, orgID, slot)
	return w.ScheduledWork.JobReminders(ctx, orgID, slot)
}

func (w counted) NoShowAlerts(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	w.c.note(fieldops.TaskNoShowAlerts, orgID, slot)
	return w.ScheduledWork.NoShowAlerts(ctx, orgID, slot)
}

func (w counted) OwnerDigest(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	w.c.note(fieldops.TaskOwnerDigest, orgID, slot)
	return w.ScheduledWork.OwnerDigest(ctx, orgID, slot)
}

// simulate ticks every step in [from, to), all instances at once on each
// tick.
func simulate(ctx context.Context, from, to time.Time, step time.Duration, scheds ...*scheduler.Scheduler) {
	for now := from; now.Before(to); now = now.Add(step) {
		var wg sync.WaitGroup
		for _, s := range scheds {
			wg.Go(func() { s.RunDue(ctx, now) })
		}
		wg.Wait()
	}
}

// Three instances on one database run each slot once: the claims, the
// task calls and the messages sent all come out once.
func TestScheduler_ThreeInstancesRunEachSlotOnce(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	london := mustOrg(t, e, "Europe/London", day.Add(9*time.Hour))
	tokyo := mustOrg(t, e, "Asia/Tokyo", day.Add(24*time.Hour)) // 09:00 on 2 December in Tokyo

	c := &counter{runs: map[string]int{}}
	var scheds []*scheduler.Scheduler
	for i := range 3 {
		w := store.NewScheduledWork(e.db)
		w.Instance = fmt.Sprintf("instance-%d", i)
		scheds = append(scheds, scheduler.New(counted{w, c}, nil))
	}
	start := time.Now()
	simulate(context.Background(), day, day.Add(24*time.Hour), time.Minute, scheds...)
	t.Logf("simulated a day with 3 instances in %s", time.Since(start))

	for k, n := range c.runs {
		if n != 1 {
			t.Errorf("%s ran %d times", k, n)
		}
	}
	if n := count(t, e, `SELECT count(*) FROM scheduler_runs WHERE task IN ($1, $2, $3, $4)`, fieldops.TaskMorningAgenda,
		fieldops.TaskJobReminders, fieldops.TaskNoShowAlerts, fieldops.TaskOwnerDigest); n != len(c.runs) {
		t.Errorf("claimed %d slots of the counted tasks, ran %d", n, len(c.runs))
	}
	if n := count(t, e, `SELECT count(DISTINCT claimed_by) FROM scheduler_runs`); n < 2 {
		t.Logf("only %d instance(s) won claims", n)
	}
	if n := count(t, e, `SELECT count(*) FROM scheduler_runs WHERE finished_at IS NULL OR error IS NOT NULL`); n != 0 {
		t.Errorf("%d runs unfinished or failed", n)
	}
	for _, o := range []*org{london, tokyo} {
		for task, want := range map[string]int{
			fieldops.TaskJobReminders: 24 * 12, fieldops.TaskNoShowAlerts: 24 * 12, fieldops.TaskForgottenCheckOut: 24 * 4,
			fieldops.TaskExpireInvitations: 24, fieldops.TaskMorningAgenda: 1, fieldops.TaskOwnerDigest: 1,
			fieldops.TaskPurgeExpired: 1, fieldops.TaskVerifyAuditChain: 1, fieldops.TaskRemedialReminders: 1,
			fieldops.TaskInspectionReminders: 1,
		} {
			if n := count(t, e, `SELECT count(*) FROM scheduler_runs WHERE task = $1 AND org_id = $2 AND slot >= $3 AND slot < $4`,
				task, o.id, day, day.Add(24*time.Hour)); n != want {
				t.Errorf("org %d: %s ran for %d slots, want %d", o.id, task, n, want)
			}
		}
	}
	for _, w := range []struct {
		org  *org
		kind string
		n    int
	}{
		{london, "agenda.morning", 1}, // one engineer with a job today
		{london, "digest.owner", 1},   // one owner
		{london, "job.reminder", 1},
		{london, "alert.no_show", 2}, // owner and manager
		{tokyo, "agenda.morning", 1},
		{tokyo, "digest.owner", 1},
		{tokyo, "job.reminder", 1},  // 23:00 UTC
		{tokyo, "alert.no_show", 0}, // due at 00:30 UTC, after the day
	} {
		if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = $2`, w.org.id, w.kind); n != w.n {
			t.Errorf("org %d: %d %s messages, want %d", w.org.id, n, w.kind, w.n)
		}
	}
	// The morning agendas went out at 07:30 local.
	for _, w := range []struct {
		org  *org
		slot time.Time
	}{{london, day.Add(7*time.Hour + 30*time.Minute)}, {tokyo, day.Add(22*time.Hour + 30*time.Minute)}} {
		if n := count(t, e, `SELECT count(*) FROM scheduler_runs WHERE task = $1 AND org_id = $2 AND slot = $3`,
			fieldops.TaskMorningAgenda, w.org.id, w.slot); n != 1 {
			t.Errorf("org %d: no agenda slot at %s", w.org.id, w.slot)
		}
	}
}

// panicky panics in the morning agenda of one organisation.
type panicky struct {
	fieldops.ScheduledWork
	org int64
}

func (p panicky) MorningAgenda(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	if orgID == p.org {
		panic("agenda exploded")
	}
	return p.ScheduledWork.MorningAgenda(ctx, orgID, slot)
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A task that panics is recovered and logged; the other organisations
// and the other tasks still run.
func TestScheduler_PanickingTaskIsRecovered(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	bad := mustOrg(t, e, "Europe/London", day.Add(9*time.Hour))
	good := mustOrg(t, e, "Europe/London", day.Add(10*time.Hour))
	var logs syncBuffer
	s := scheduler.New(panicky{store.NewScheduledWork(e.db), bad.id}, slog.New(slog.NewTextHandler(&logs, nil)))
	simulate(context.Background(), day, day.Add(24*time.Hour), time.Minute, s)

	if got := strings.Count(logs.String(), "task panicked"); got != 1 {
		t.Errorf("%d panics logged, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "agenda exploded") {
		t.Error("the panic value is not logged")
	}
	var errText string
	if err := e.pool.QueryRow(context.Background(), `SELECT COALESCE(error, '') FROM scheduler_runs WHERE task = $1 AND org_id = $2`,
		fieldops.TaskMorningAgenda, bad.id).Scan(&errText); err != nil || !strings.Contains(errText, "agenda exploded") {
		t.Errorf("the panicked run records %q, %v", errText, err)
	}
	for _, w := range []struct {
		org  *org
		kind string
		n    int
	}{
		{bad, "agenda.morning", 0},
		{good, "agenda.morning", 1},
		{bad, "digest.owner", 1},
		{bad, "job.reminder", 1},
		{good, "job.reminder", 1},
		{bad, "alert.no_show", 2},
	} {
		if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = $2`, w.org.id, w.kind); n != w.n {
			t.Errorf("org %d: %d %s messages, want %d", w.org.id, n, w.kind, w.n)
		}
	}
}

// Start and Stop run the cron entries and stop cleanly.
func TestScheduler_StartStop(t *testing.T) {
	e := newEnv(t)
	s := scheduler.New(store.NewScheduledWork(e.db), nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // a second stop is harmless
}

// flaky fails the morning agenda of one organisation the first times it
// runs, then does it.
type flaky struct {
	fieldops.ScheduledWork
	org      int64
	failures *atomic.Int32
}

func (f flaky) MorningAgenda(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	if orgID == f.org && f.failures.Add(-1) >= 0 {
		return 0, errors.New("database went away")
	}
	return f.ScheduledWork.MorningAgenda(ctx, orgID, slot)
}

// A failed run is tried again at later ticks, after the retry delay, until
// it succeeds or runs out of attempts; the slot's record ends with the
// last outcome, and the agenda is sent once.
func TestScheduler_FailedRunIsRetried(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		failures  int32
		wantSent  int
		wantError bool
	}{
		{"SecondAttemptSucceeds", 1, 1, false},
		{"ThirdAttemptSucceeds", 2, 1, false},
		{"GivesUpAfterThree", 5, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustOrg(t, e, "Europe/London", day.Add(9*time.Hour))
			failures := &atomic.Int32{}
			failures.Store(tc.failures)
			var logs syncBuffer
			s := scheduler.New(flaky{store.NewScheduledWork(e.db), o.id, failures}, slog.New(slog.NewTextHandler(&logs, nil)),
				scheduler.WithRetry(3, 10*time.Minute))
			simulate(context.Background(), day, day.Add(12*time.Hour), time.Minute, s)
			if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'agenda.morning'`, o.id); n != tc.wantSent {
				t.Errorf("%d morning agendas, want %d\n%s", n, tc.wantSent, logs.String())
			}
			var errText string
			if err := e.pool.QueryRow(context.Background(), `SELECT COALESCE(error, '') FROM scheduler_runs WHERE task = $1 AND org_id = $2`,
				fieldops.TaskMorningAgenda, o.id).Scan(&errText); err != nil || (errText != "") != tc.wantError {
				t.Errorf("the run records error %q, %v; want an error: %v", errText, err, tc.wantError)
			}
			if got := strings.Count(logs.String(), "database went away"); got != min(int(tc.failures), 3) {
				t.Errorf("%d failures logged, want %d", got, min(int(tc.failures), 3))
			}
		})
	}
}
