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
