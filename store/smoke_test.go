package store_test

import (
	"testing"

	"github.com/fieldops/fieldops"
)

func TestOrgFixture(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	if len(o.job.Engineers) != 1 || !o.job.Engineers[0].Primary {
		t.Fatalf("engineers = %+v", o.job.Engineers)
	}
	jobs, _, err := e.jobs.FindJobs(o.ctx[fieldops.RoleEngineer], fieldops.JobFilter{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("FindJobs = %v, %v", jobs, err)
	}
	// Scope all takes another query path than own.
	if jobs, _, err := e.jobs.FindJobs(o.ctx[fieldops.RoleOfficeStaff], fieldops.JobFilter{}); err != nil || len(jobs) != 1 {
		t.Fatalf("FindJobs as office = %v, %v", jobs, err)
	}
	if n, err := e.audit.VerifyChain(o.ctx[fieldops.RoleOwner]); err != nil || n != 0 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}
