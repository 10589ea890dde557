// Package scheduler runs the timed work of fieldops (fieldops.ScheduledWork)
// on robfig/cron: one cron entry per task, each organisation in its own
// time zone, each (task, slot, organisation) run once however many
// instances of the service are running.
//
// Cron ticks in UTC. A task due at a local time of day (the 07:30 morning
// agenda) is ticked every minute; on each tick the scheduler works out, per
// organisation, which local slots fell between the previous tick and now,
// claims each in Postgres (ClaimSlot) and runs the ones it won. A task
// with a fixed cadence (every 5 minutes) runs for its latest slot only: it
// finds what is due from the database, so a missed slot needs no replay.
// A run that fails is tried again by the instance that claimed it, at the
// task's ticks after a growing delay (WithRetry); one that panics is not.
//
// The clock is injectable: RunDue does one tick at a given instant, so a
// test can run a day in a loop.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/fieldops/fieldops"
)

// Default settings; see the options.
const (
	DefaultCatchUp     = time.Hour
	DefaultTaskTimeout = 5 * time.Minute
	DefaultStopTimeout = 30 * time.Second
	// A run that fails (an error, not a panic) is tried again at the
	// task's later ticks, after DefaultRetryDelay, twice the delay, and
	// so on, DefaultAttempts times in all.
	DefaultAttempts   = 3
	DefaultRetryDelay = 2 * time.Minute
)

// task is one kind of scheduled work and when it is due.
type task struct {
	name string
	spec string // the cron entry that ticks it (UTC)
	// Either a fixed cadence in UTC ...
	every time.Duration
	// ... or a local time of day in each organisation's time zone.
	hour, minute int
	run          func(ctx context.Context, orgID int64, slot time.Time) (int, error)
}

// slots returns the task's slots in (from, to] for an organisation in loc.
func (t *task) slots(loc *time.Location, from, to time.Time) []time.Time {
	if t.every > 0 {
		s := to.UTC().Truncate(t.every)
		if s.After(from) {
			return []time.Time{s}
		}
		return nil
	}
	var out []time.Time
	f := from.In(loc)
	for d := time.Date(f.Year(), f.Month(), f.Day()-1, 0, 0, 0, 0, loc); !d.After(to); d = d.AddDate(0, 0, 1) {
		s := time.Date(d.Year(), d.Month(), d.Day(), t.hour, t.minute, 0, 0, loc)
		if s.After(from) && !s.After(to) {
			out = append(out, s.UTC())
		}
	}
	return out
}

// Scheduler runs fieldops.ScheduledWork on its cadences.
type Scheduler struct {
	work   fieldops.ScheduledWork
	logger *slog.Logger
	// Now is the clock of the cron ticks; tests replace it (or call RunDue).
	Now func() time.Time

	catchUp     time.Duration
	taskTimeout time.Duration
	stopTimeout time.Duration
	attempts    int
	retryDelay  time.Duration
	tasks       []*task

	mu      sync.Mutex
	last    map[string]time.Time // per task: the previous tick
	locs    map[string]*time.Location
	retries []retry // failed runs this instance claimed, to try again

	cron   *cron.Cron
	cancel context.CancelFunc
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(s *Scheduler) { s.Now = now } }

// WithCatchUp sets how far back the first tick, or a tick after a gap
// (a stopped process, a suspended host), looks for slots it missed.
func WithCatchUp(d time.Duration) Option { return func(s *Scheduler) { s.catchUp = d } }

// WithTaskTimeout bounds one task run for one organisation.
func WithTaskTimeout(d time.Duration) Option { return func(s *Scheduler) { s.taskTimeout = d } }

// WithStopTimeout bounds how long Stop waits for running tasks before it
// cancels them.
func WithStopTimeout(d time.Duration) Option { return func(s *Scheduler) { s.stopTimeout = d } }

// WithRetry sets how many times in all a failed run is tried (1: never
// again) and the delay before the first retry, which doubles each time.
func WithRetry(attempts int, delay time.Duration) Option {
	return func(s *Scheduler) { s.attempts, s.retryDelay = max(attempts, 1), delay }
}

// retry is a failed run to try again at the task's first tick from at.
type retry struct {
	task    string
	orgID   int64
	slot    time.Time
	attempt int // the attempts made so far
	at      time.Time
}

// New returns a scheduler of work. It does nothing until Start or RunDue.
func New(work fieldops.ScheduledWork, logger *slog.Logger, opts ...Option) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		work: work, logger: logger, Now: time.Now,
		catchUp: DefaultCatchUp, taskTimeout: DefaultTaskTimeout, stopTimeout: DefaultStopTimeout,
		attempts: DefaultAttempts, retryDelay: DefaultRetryDelay,
		last: map[string]time.Time{}, locs: map[string]*time.Location{},
	}
	for _, o := range opts {
		o(s)
	}
	daily := func(name string, h, m int, run func(context.Context, int64, time.Time) (int, error)) *task {
		return &task{name: name, spec: "* * * * *", hour: h, minute: m, run: run}
	}
	every := func(name, spec string, d time.Duration, run func(context.Context, int64, time.Time) (int, error)) *task {
		return &task{name: name, spec: spec, every: d, run: run}
	}
	s.tasks = []*task{
		daily(fieldops.TaskVerifyAuditChain, 2, 0, work.VerifyAuditChain),
		daily(fieldops.TaskPurgeExpired, 3, 0, work.PurgeExpired),
		daily(fieldops.TaskOwnerDigest, 7, 0, work.OwnerDigest),
		daily(fieldops.TaskMorningAgenda, 7, 30, work.MorningAgenda),
		daily(fieldops.TaskRemedialReminders, 8, 0, work.RemedialReminders),
		daily(fieldops.TaskInspectionReminders, 8, 0, work.InspectionReminders),
		every(fieldops.TaskJobReminders, "*/5 * * * *", 5*time.Minute, work.JobReminders),
		every(fieldops.TaskNoShowAlerts, "*/5 * * * *", 5*time.Minute, work.NoShowAlerts),
		every(fieldops.TaskForgottenCheckOut, "*/15 * * * *", 15*time.Minute, work.ForgottenCheckOut),
		every(fieldops.TaskExpireInvitations, "0 * * * *", time.Hour, work.ExpireInvitations),
	}
	return s
}

// Start starts the cron entries, one per task, ticking in UTC. Tasks run
// with ctx (until Stop). It returns at once.
func (s *Scheduler) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	cl := cronLogger{s.logger}
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cl),
		cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)))
	for _, t := range s.tasks {
		if _, err := c.AddFunc(t.spec, func() { s.tick(ctx, t, s.Now()) }); err != nil {
			cancel()
			return fmt.Errorf("scheduler: task %s: %w", t.name, err)
		}
	}
	s.mu.Lock()
	s.cron, s.cancel = c, cancel
	s.mu.Unlock()
	c.Start()
	s.logger.Info("scheduler started", "tasks", len(s.tasks))
	return nil
}

// Stop stops the ticks and waits for running tasks, up to the stop
// timeout; then it cancels them and waits for them to return.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	c, cancel := s.cron, s.cancel
	s.cron, s.cancel = nil, nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	done := c.Stop().Done()
	select {
	case <-done:
	case <-time.After(s.stopTimeout):
		s.logger.Warn("scheduler: tasks still running at stop; cancelling them")
	}
	cancel()
	<-done
	s.logger.Info("scheduler stopped")
}

// RunDue does one tick of every task at now: whatever fell due since the
// previous tick (or within the catch-up window) runs, in task order.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) {
	orgs, err := s.work.Organisations(ctx)
	if err != nil {
		s.logger.Error("scheduler: list organisations", "error", err)
		return
	}
	for _, t := range s.tasks {
		s.runTask(ctx, t, orgs, now)
	}
}

// Methods per task, as the cron entries call them: each does its task's
// tick at the scheduler's clock.

// MorningAgenda ticks the 07:30 local morning agenda.
func (s *Scheduler) MorningAgenda(ctx context.Context) { s.tickNamed(ctx, fieldops.TaskMorningAgenda) }

// JobReminders ticks the reminders before jobs (every 5 minutes).
func (s *Scheduler) JobReminders(ctx context.Context) { s.tickNamed(ctx, fieldops.TaskJobReminders) }

// NoShowAlerts ticks the no-show alerts (every 5 minutes).
func (s *Scheduler) NoShowAlerts(ctx context.Context) { s.tickNamed(ctx, fieldops.TaskNoShowAlerts) }

// ForgottenCheckOut ticks the forgotten check-out alerts (every 15 minutes).
func (s *Scheduler) ForgottenCheckOut(ctx context.Context) {
	s.tickNamed(ctx, fieldops.TaskForgottenCheckOut)
}

// ExpireInvitations ticks invitation expiry (hourly).
func (s *Scheduler) ExpireInvitations(ctx context.Context) {
	s.tickNamed(ctx, fieldops.TaskExpireInvitations)
}

// RemedialReminders ticks the 08:00 local remedial reminders.
func (s *Scheduler) RemedialReminders(ctx context.Context) {
	s.tickNamed(ctx, fieldops.TaskRemedialReminders)
}

// InspectionReminders ticks the 08:00 local inspection reminders.
func (s *Scheduler) InspectionReminders(ctx context.Context) {
	s.tickNamed(ctx, fieldops.TaskInspectionReminders)
}

// OwnerDigest ticks the 07:00 local owners' digest.
func (s *Scheduler) OwnerDigest(ctx context.Context) { s.tickNamed(ctx, fieldops.TaskOwnerDigest) }

// PurgeExpired ticks the 03:00 local retention purge.
func (s *Scheduler) PurgeExpired(ctx context.Context) { s.tickNamed(ctx, fieldops.TaskPurgeExpired) }

// VerifyAuditChain ticks the 02:00 local audit chain check.
func (s *Scheduler) VerifyAuditChain(ctx context.Context) {
	s.tickNamed(ctx, fieldops.TaskVerifyAuditChain)
}

func (s *Scheduler) tickNamed(ctx context.Context, name string) {
	for _, t := range s.tasks {
		if t.name == name {
			s.tick(ctx, t, s.Now())
			return
		}
	}
}

// tick runs one task at now for every organisation.
func (s *Scheduler) tick(ctx context.Context, t *task, now time.Time) {
	orgs, err := s.work.Organisations(ctx)
	if err != nil {
		s.logger.Error("scheduler: list organisations", "task", t.name, "error", err)
		return
	}
	s.runTask(ctx, t, orgs, now)
}

// window returns the interval (from, now] a task's tick covers and
// remembers now as the task's previous tick. ok is false when the clock
// went backwards.
func (s *Scheduler) window(name string, now time.Time) (from time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.last[name]
	if !last.IsZero() && !now.After(last) {
		return time.Time{}, false
	}
	s.last[name] = now
	from = last
	if from.IsZero() || now.Sub(from) > s.catchUp {
		from = now.Add(-s.catchUp)
	}
	return from, true
}

func (s *Scheduler) location(name string) (*time.Location, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc, ok := s.locs[name]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	s.locs[name] = loc
	return loc, nil
}

// runTask runs the task's due slots for each organisation; one
// organisation's failure or panic does not keep the others from running.
func (s *Scheduler) runTask(ctx context.Context, t *task, orgs []fieldops.OrgClock, now time.Time) {
	from, ok := s.window(t.name, now)
	if !ok {
		return
	}
	for _, o := range orgs {
		if ctx.Err() != nil {
			return
		}
		loc, err := s.location(o.TimeZone)
		if err != nil {
			s.logger.Error("scheduler: unknown time zone", "task", t.name, "org_id", o.OrgID, "time_zone", o.TimeZone)
			continue
		}
		for _, slot := range t.slots(loc, from, now) {
			s.runSlot(ctx, t, o.OrgID, slot, now)
		}
	}
	for _, r := range s.dueRetries(t.name, now) {
		if ctx.Err() != nil {
			return
		}
		s.runClaimed(ctx, t, r.orgID, r.slot, r.attempt+1, now)
	}
}

// dueRetries takes the task's retries that are due at now.
func (s *Scheduler) dueRetries(task string, now time.Time) []retry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due, keep []retry
	for _, r := range s.retries {
		if r.task == task && !r.at.After(now) {
			due = append(due, r)
		} else {
			keep = append(keep, r)
		}
	}
	s.retries = keep
	return due
}

// runSlot claims one slot and runs it if this instance won the claim.
func (s *Scheduler) runSlot(ctx context.Context, t *task, orgID int64, slot, now time.Time) {
	won, err := s.work.ClaimSlot(ctx, t.name, orgID, slot)
	if err != nil {
		s.logger.Error("scheduler: claim slot", "task", t.name, "org_id", orgID, "slot", slot, "error", err)
		return
	}
	if won {
		s.runClaimed(ctx, t, orgID, slot, 1, now)
	}
}

// runClaimed makes attempt number attempt at a slot this instance
// claimed, recovering a panic of the task and recording the outcome. A
// failure (not a panic: it would only panic again) is queued to be tried
// again at a later tick, up to the scheduler's attempts.
func (s *Scheduler) runClaimed(ctx context.Context, t *task, orgID int64, slot time.Time, attempt int, now time.Time) {
	log := s.logger.With("task", t.name, "org_id", orgID, "slot", slot, "attempt", attempt)
	ctx, cancel := context.WithTimeout(ctx, s.taskTimeout)
	defer cancel()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		log.Error("scheduler: task panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.finish(ctx, log, t, orgID, slot, fmt.Errorf("panic: %v", r))
	}()
	start := time.Now()
	n, err := t.run(ctx, orgID, slot)
	switch {
	case err != nil && attempt < s.attempts:
		at := now.Add(s.retryDelay << (attempt - 1))
		log.Error("scheduler: task failed, will try again", "error", err, "duration", time.Since(start), "retry_at", at)
		s.mu.Lock()
		s.retries = append(s.retries, retry{task: t.name, orgID: orgID, slot: slot, attempt: attempt, at: at})
		s.mu.Unlock()
	case err != nil:
		log.Error("scheduler: task failed", "error", err, "duration", time.Since(start))
	case n > 0:
		log.Info("scheduler: task done", "count", n, "duration", time.Since(start))
	}
	s.finish(ctx, log, t, orgID, slot, err)
}

func (s *Scheduler) finish(ctx context.Context, log *slog.Logger, t *task, orgID int64, slot time.Time, runErr error) {
	// Record the end even when the run's context has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.work.FinishSlot(ctx, t.name, orgID, slot, runErr); err != nil {
		log.Error("scheduler: record finish", "error", err)
	}
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
