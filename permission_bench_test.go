package fieldops_test

import (
	"testing"

	"github.com/fieldops/fieldops"
)

// BenchmarkCan measures the permission check on the hot path; it must stay
// at or under 100 ns/op with 0 allocs/op.
func BenchmarkCan(b *testing.B) {
	engineer := &fieldops.Access{OrgID: 1, UserID: 10, Role: fieldops.RoleEngineer, Grants: fieldops.RoleGrants(fieldops.RoleEngineer)}
	office := &fieldops.Access{OrgID: 1, UserID: 10, Role: fieldops.RoleOfficeStaff, Grants: fieldops.RoleGrants(fieldops.RoleOfficeStaff)}
	job := &fieldops.Resource{OrgID: 1, CreatedBy: 7, Assignees: []int64{8, 9, 10}}
	for _, bb := range []struct {
		name string
		a    *fieldops.Access
		flag fieldops.Flag
		want bool
	}{
		{"Own", engineer, fieldops.FlagJobView, true},
		{"All", office, fieldops.FlagJobView, true},
		{"Denied", engineer, fieldops.FlagInvoiceView, false},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bb.a.Can(bb.flag, job) != bb.want {
					b.Fatal("unexpected result")
				}
			}
		})
	}
}

// BenchmarkEffectiveGrants measures building a member's grants from their
// role and overrides, done once per service call.
func BenchmarkEffectiveGrants(b *testing.B) {
	ovs := []fieldops.Override{
		{Flag: fieldops.FlagQuoteView, Scope: fieldops.ScopeAll},
		{Flag: fieldops.FlagPhotoDelete, Scope: fieldops.ScopeNone},
		{Flag: fieldops.FlagTimesheetView, Scope: fieldops.ScopeOwn},
	}
	b.ReportAllocs()
	for b.Loop() {
		if fieldops.EffectiveGrants(fieldops.RoleEngineer, ovs).Scope(fieldops.FlagQuoteView) != fieldops.ScopeAll {
			b.Fatal("override not applied")
		}
	}
}

// TestCanDoesNotAllocate keeps the hot path allocation-free in every test
// run, not only when the benchmarks are run.
func TestCanDoesNotAllocate(t *testing.T) {
	a := &fieldops.Access{OrgID: 1, UserID: 10, Role: fieldops.RoleEngineer, Grants: fieldops.RoleGrants(fieldops.RoleEngineer)}
	r := &fieldops.Resource{OrgID: 1, CreatedBy: 7, Assignees: []int64{8, 9, 10}}
	ovs := []fieldops.Override{{Flag: fieldops.FlagQuoteView, Scope: fieldops.ScopeAll}}
	allocs := testing.AllocsPerRun(1000, func() {
		if !a.Can(fieldops.FlagJobView, r) || a.Can(fieldops.FlagInvoiceView, r) {
			t.Fatal("wrong answer")
		}
		_ = fieldops.EffectiveGrants(fieldops.RoleEngineer, ovs)
	})
	if allocs != 0 {
		t.Fatalf("Can and EffectiveGrants allocate %.1f times per call; the hot path must not allocate", allocs)
	}
}
