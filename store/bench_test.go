package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// benchOrg is an organisation with 5,000 jobs over 100 days, half of them
// assigned to the fixture's engineer.
func benchOrg(b *testing.B) (*env, *org) {
	b.Helper()
	e := newEnv(b)
	o := mustOrg(b, e)
	_, err := e.pool.Exec(context.Background(), `
		INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
		SELECT $1, $2, $3, 'repair', 'Job ' || g, $5::timestamptz + g * interval '29 minutes',
		       $5::timestamptz + g * interval '29 minutes' + interval '2 hours', 120, $4
		FROM generate_series(1, 5000) g`, o.id, o.customer.ID, o.site.ID, o.user[fieldops.RoleOwner], time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	_, err = e.pool.Exec(context.Background(), `
		INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by)
		SELECT org_id, id, $2, true, $3 FROM jobs WHERE org_id = $1 AND id % 2 = 0
		ON CONFLICT DO NOTHING`, o.id, o.user[fieldops.RoleEngineer], o.user[fieldops.RoleOwner])
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return e, o
}

// BenchmarkFindJobByID is one whole service call: transaction, membership
// load, permission check, job and engineers.
func BenchmarkFindJobByID(b *testing.B) {
	e, o := benchOrg(b)
	ctx := o.ctx[fieldops.RoleEngineer]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.jobs.FindJobByID(ctx, o.job.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindJobs is a page of 50 jobs, deep in the list, for an engineer
// (own scope) and for the office (all).
func BenchmarkFindJobs(b *testing.B) {
	e, o := benchOrg(b)
	for _, role := range []fieldops.Role{fieldops.RoleEngineer, fieldops.RoleOfficeStaff} {
		b.Run(role.String(), func(b *testing.B) {
			ctx := o.ctx[role]
			from := time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				jobs, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{From: from, Limit: 50})
				if err != nil || len(jobs) != 50 {
					b.Fatalf("FindJobs = %d jobs, %v", len(jobs), err)
				}
			}
		})
	}
}
