package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// Size of the capacity benchmark: 500 engineers, 400 days of 5 jobs each
// per engineer: 1,000,000 jobs, a tenth of them with a second engineer,
// and 1,000 multi-day jobs besides.
const (
	benchEngineers = 500
	benchDays      = 400
	benchPerDay    = 5
)

// sqlTimer is a pgx tracer that keeps the text, arguments and duration of
// the capacity aggregation each time it runs.
type sqlTimer struct {
	mu    sync.Mutex
	sql   string
	args  []any
	times []time.Duration
}

type sqlTimerKey struct{}

func (s *sqlTimer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(d.SQL, "WITH days AS") {
		return ctx
	}
	s.mu.Lock()
	s.sql, s.args = d.SQL, d.Args
	s.mu.Unlock()
	return context.WithValue(ctx, sqlTimerKey{}, time.Now())
}

func (s *sqlTimer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	// The query's rows are read after TraceQueryEnd for Query; the
	// aggregate returns at most 3,500 small rows, so this is close to
	// the whole SQL time as the client sees it.
	if t0, ok := ctx.Value(sqlTimerKey{}).(time.Time); ok {
		s.mu.Lock()
		s.times = append(s.times, time.Since(t0))
		s.mu.Unlock()
	}
}

// bigOrg builds the 1,000,000-job benchmark organisation (the capacity
// and job-list benchmarks share it) on a pool traced by tracer (nil for
// none) and returns the environment, the organisation and a Wednesday in
// the middle of the 400 days.
func bigOrg(b *testing.B, tracer pgx.QueryTracer) (*env, *org, time.Time) {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(storetest.MustDatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	db := store.NewDB(pool, nil)
	e := &env{pool: pool, db: db, orgs: store.NewOrganisationService(db), members: store.NewMemberService(db),
		customers: store.NewCustomerService(db), sites: store.NewSiteService(db), jobs: store.NewJobService(db), audit: store.NewAuditService(db)}
	o := mustOrg(b, e)
	first := time.Date(2026, 1, 5, 0, 0, 0, 0, london) // a Monday
	ctx := context.Background()
	t0 := time.Now()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	// Bulk load without triggers and foreign-key checks (the data is
	// consistent by construction); the deferred primary-engineer trigger
	// would otherwise queue a million events.
	exec(`SET session_replication_role = replica`)
	exec(`INSERT INTO users (email, name) SELECT 'bench' || k || '-' || $1::bigint || '@example.co.uk', 'Engineer ' || lpad(k::text, 3, '0')
		FROM generate_series(1, $2::int) k`, o.id, benchEngineers)
	exec(`INSERT INTO memberships (org_id, user_id, role) SELECT $1, id, 'engineer' FROM users WHERE email LIKE 'bench%-' || $1::bigint || '@example.co.uk'`, o.id)
	// Jobs in time order, as they would have been booked: each day, each
	// engineer, five 90-minute jobs from 07:00 UTC two hours apart. The
	// engineer is kept in created_by to assign them below.
	exec(`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
		SELECT $1, $2, $3, 'repair', 'Job', $4::timestamptz + d * interval '1 day' + (7 + 2 * s) * interval '1 hour',
		       $4::timestamptz + d * interval '1 day' + (7 + 2 * s) * interval '1 hour' + interval '90 minutes', 90, m.user_id
		FROM generate_series(0, $5::int - 1) d
		CROSS JOIN (SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'engineer' AND user_id <> $7) m
		CROSS JOIN generate_series(0, $6::int - 1) s
		ORDER BY d, m.user_id, s`, o.id, o.customer.ID, o.site.ID, first, benchDays, benchPerDay, o.user[fieldops.RoleEngineer])
	// A thousand three-day jobs, spread over the period.
	exec(`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
		SELECT $1, $2, $3, 'install', 'Long job', $4::timestamptz + g * interval '9 hours 36 minutes',
		       $4::timestamptz + g * interval '9 hours 36 minutes' + interval '3 days', 1440, $5
		FROM generate_series(0, 999) g`, o.id, o.customer.ID, o.site.ID, first, o.user[fieldops.RoleManager])
	// Triggers are off, so the assignments get their copy of the job's
	// window (migration 005) here, as the trigger would give it.
	exec(`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by, scheduled_start, scheduled_end, estimated_minutes, live)
		SELECT org_id, id, created_by, true, $2, scheduled_start, scheduled_end, estimated_minutes, true
		FROM jobs WHERE org_id = $1 AND title IN ('Job', 'Long job')`, o.id, o.user[fieldops.RoleOwner])
	// A tenth of the jobs have a second engineer: the next one by id.
	exec(`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by, scheduled_start, scheduled_end, estimated_minutes, live)
		SELECT j.org_id, j.id, (SELECT min(m.user_id) FROM memberships m WHERE m.org_id = j.org_id AND m.role = 'engineer' AND m.user_id > j.created_by), false, $2,
		       j.scheduled_start, j.scheduled_end, j.estimated_minutes, true
		FROM jobs j WHERE j.org_id = $1 AND j.title = 'Job' AND j.id % 10 = 0
		  AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = j.org_id AND m.role = 'engineer' AND m.user_id > j.created_by)`, o.id, o.user[fieldops.RoleOwner])
	exec(`RESET session_replication_role`)
	// As old rows of a live table are: frozen, all-visible (so that the
	// probes of job_assignments are index-only), and analysed.
	exec(`VACUUM (FREEZE, ANALYZE) jobs`)
	exec(`VACUUM (FREEZE, ANALYZE) job_assignments`)
	exec(`ANALYZE`)
	var jobs, assignments int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs WHERE org_id = $1), (SELECT count(*) FROM job_assignments WHERE org_id = $1)`, o.id).Scan(&jobs, &assignments); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d jobs, %d assignments, %d engineers, built in %s", jobs, assignments, benchEngineers, time.Since(t0).Round(time.Second))
	return e, o, first.AddDate(0, 0, 7*(benchDays/7/2)+2)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCapacityWeek is FindCapacityWeek for a week in the middle of
// 1,000,000 jobs and 500 engineers: the whole service call (transaction,
// membership load, permission, organisation, engineers, aggregation).
// Target: p95 ≤ 100 ms, of which SQL ≤ 20 ms.
//
//	go test -run '^$' -bench 'CapacityWeek' -benchtime 200x ./store/
func BenchmarkCapacityWeek(b *testing.B) {
	timer := &sqlTimer{}
	e, o, weekOf := bigOrg(b, timer)
	ctx := o.ctx[fieldops.RoleManager]
	w, err := store.NewCapacityService(e.db).FindCapacityWeek(ctx, weekOf)
	if err != nil {
		b.Fatal(err)
	}
	booked := 0
	for _, r := range w.Engineers {
		booked += r.BookedMinutes
	}
	b.Logf("week of %s: %d engineers, %d minutes booked", w.Start.Format("Mon 2 Jan 2006"), len(w.Engineers), booked)
	if len(w.Engineers) < benchEngineers {
		b.Fatalf("%d engineers on the board, want at least %d", len(w.Engineers), benchEngineers)
	}

	// The plan, once.
	timer.mu.Lock()
	sql, args := timer.sql, timer.args
	timer.mu.Unlock()
	rows, err := e.pool.Query(context.Background(), `EXPLAIN (ANALYZE, BUFFERS) `+sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(&plan, line)
	}
	rows.Close()
	b.Log("\n" + plan.String())

	svc := store.NewCapacityService(e.db)
	timer.mu.Lock()
	timer.times = nil
	timer.mu.Unlock()
	var calls []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := svc.FindCapacityWeek(ctx, weekOf); err != nil {
			b.Fatal(err)
		}
		calls = append(calls, time.Since(t0))
	}
	b.StopTimer()
	timer.mu.Lock()
	sqlTimes := slices.Clone(timer.times)
	timer.mu.Unlock()
	b.ReportMetric(ms(percentile(calls, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(calls, 0.95)), "p95-ms")
	b.ReportMetric(ms(percentile(sqlTimes, 0.95)), "sql-p95-ms")
}
