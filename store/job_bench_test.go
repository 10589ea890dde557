package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// BenchmarkJobList is JobService.FindJobs, the whole service call, on the
// 1,000,000-job organisation of the capacity benchmark (bigOrg): the
// office's first page of the week, a page 20 pages deep by keyset, an
// engineer's own week, and the dispatch board of one day (about 2,750
// jobs over 500 engineers, first 200). Target: p95 ≤ 50 ms.
//
//	go test -run '^$' -bench JobList -benchtime 300x ./store/
func BenchmarkJobList(b *testing.B) {
	e, o, weekOf := bigOrg(b, nil)
	monday := fieldops.WeekStart(weekOf, london)
	sunday := monday.AddDate(0, 0, 7)
	var engineer int64
	if err := e.pool.QueryRow(context.Background(), `SELECT min(user_id) FROM memberships WHERE org_id = $1 AND role = 'engineer' AND user_id <> $2`,
		o.id, o.user[fieldops.RoleEngineer]).Scan(&engineer); err != nil {
		b.Fatal(err)
	}
	office := o.ctx[fieldops.RoleOfficeStaff]

	// The cursor of page 21 of the office's week, by following the pages.
	week := fieldops.JobFilter{From: monday, To: sunday, Limit: 50}
	deep := week
	for range 20 {
		jobs, next, err := e.jobs.FindJobs(office, deep)
		if err != nil || len(jobs) != 50 || next == "" {
			b.Fatalf("FindJobs = %d jobs, next %q, %v", len(jobs), next, err)
		}
		deep.After = next
	}
	day := monday.AddDate(0, 0, 2)

	for _, bc := range []struct {
		name string
		ctx  context.Context
		f    fieldops.JobFilter
		want int
	}{
		{"OfficeWeekFirstPage", office, week, 50},
		{"OfficeWeekPage21", office, deep, 50},
		{"EngineerOwnWeek", actorCtx(o.id, engineer), week, 0},
		{"DispatchBoardDay", o.ctx[fieldops.RoleManager], fieldops.JobFilter{From: day, To: day.AddDate(0, 0, 1), Limit: 200}, 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			jobs, _, err := e.jobs.FindJobs(bc.ctx, bc.f)
			if err != nil || len(jobs) == 0 || (bc.want != 0 && len(jobs) != bc.want) {
				b.Fatalf("FindJobs = %d jobs, %v; want %d", len(jobs), err, bc.want)
			}
			b.Logf("%d jobs on the page", len(jobs))
			var calls []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if _, _, err := e.jobs.FindJobs(bc.ctx, bc.f); err != nil {
					b.Fatal(err)
				}
				calls = append(calls, time.Since(t0))
			}
			b.ReportMetric(ms(percentile(calls, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(calls, 0.95)), "p95-ms")
		})
	}
}

// BenchmarkScheduleBoard is a page of the dispatch board of one local
// day at the same size: 500 engineers, about 2,750 jobs that day out of
// 1,000,000; the first, a middle and the last page of 50 engineers, and
// a page of 200 (the most a page may show). Target: p95 ≤ 50 ms.
//
//	go test -run '^$' -bench ScheduleBoard -benchtime 300x ./store/
func BenchmarkScheduleBoard(b *testing.B) {
	e, o, weekOf := bigOrg(b, nil)
	day := fieldops.WeekStart(weekOf, london).AddDate(0, 0, 2)
	ctx := o.ctx[fieldops.RoleManager]
	for _, bc := range []struct {
		name string
		q    fieldops.ScheduleQuery
	}{
		{"page=1", fieldops.ScheduleQuery{Day: day}},
		{"page=5", fieldops.ScheduleQuery{Day: day, Page: 5}},
		{"page=last", fieldops.ScheduleQuery{Day: day, Page: 1000}},
		{"perPage=200", fieldops.ScheduleQuery{Day: day, PerPage: fieldops.MaxSchedulePerPage}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := e.jobs.FindSchedule(ctx, bc.q)
			if err != nil || s.Total < 500 || len(s.Engineers) == 0 {
				b.Fatalf("FindSchedule = %+v, %v", s, err)
			}
			n := 0
			for _, r := range s.Engineers {
				n += len(r.Jobs)
			}
			b.Logf("page %d of %d: %d engineers, %d job placements", s.Page, s.Pages, len(s.Engineers), n)
			var calls []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if _, err := e.jobs.FindSchedule(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
				calls = append(calls, time.Since(t0))
			}
			b.ReportMetric(ms(percentile(calls, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(calls, 0.95)), "p95-ms")
		})
	}
}
