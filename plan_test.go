package fieldops_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

func TestPlans(t *testing.T) {
	all := fieldops.AllRoles()
	want := []fieldops.Plan{
		{Name: "starter", PricePence: 2900, IncludedUsers: 3, Roles: []fieldops.Role{fieldops.RoleOwner, fieldops.RoleEngineer, fieldops.RoleOfficeStaff}, Overrides: false},
		{Name: "team", PricePence: 4900, IncludedUsers: 5, Roles: all, Overrides: true},
		{Name: "business", PricePence: 7900, IncludedUsers: 8, Roles: all, Overrides: true},
	}
	got := fieldops.Plans()
	if len(got) != len(want) {
		t.Fatalf("%d plans, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.PricePence != w.PricePence || g.IncludedUsers != w.IncludedUsers || g.Overrides != w.Overrides || !slices.Equal(g.Roles, w.Roles) {
			t.Errorf("plan %d = %+v, want %+v", i, g, w)
		}
	}
	got[0].Roles[0] = fieldops.RoleAdmin // a copy: must not change the plans
	if p := mustPlan(t, "starter"); p.Roles[0] != fieldops.RoleOwner || p.AllowsRole(fieldops.RoleAdmin) {
		t.Error("Plans returned the plans' own slices")
	}
	if l := mustPlan(t, "Team").Label(); l != "Team" {
		t.Errorf("Label = %q", l)
	}
	if _, err := fieldops.FindPlan("gold"); fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorField(err) != "plan" {
		t.Errorf("FindPlan(gold) = %v", err)
	}
}

func TestPlanPrice(t *testing.T) {
	team := mustPlan(t, "team")
	for _, tt := range []struct {
		extra, seats, pence int
	}{{0, 5, 4900}, {1, 6, 5900}, {2, 7, 6900}, {-1, 5, 4900}} {
		if got := team.Seats(tt.extra); got != tt.seats {
			t.Errorf("Seats(%d) = %d, want %d", tt.extra, got, tt.seats)
		}
		if got := team.MonthlyPricePence(tt.extra); got != tt.pence {
			t.Errorf("MonthlyPricePence(%d) = %d, want %d", tt.extra, got, tt.pence)
		}
	}
}

func TestCheckSeats(t *testing.T) {
	starter, team, business := mustPlan(t, "starter"), mustPlan(t, "team"), mustPlan(t, "business")
	for _, tt := range []struct {
		name                string
		plan                fieldops.Plan
		extra, used, adding int
		code                string
		msg                 []string
	}{
		{"OK/LastSeat", team, 0, 4, 1, "", nil},
		{"OK/Empty", starter, 0, 0, 3, "", nil},
		{"OK/ExtraSeat", team, 1, 5, 1, "", nil},
		{"OK/DowngradeFits", starter, 0, 3, 0, "", nil},
		{"ErrLimit/Full", team, 0, 5, 1, fieldops.ELIMIT, []string{"Team plan: 5 of 5 seats used", "extra seat for £10/month", "upgrade to the Business plan", "remove a member or revoke a pending invitation"}},
		{"ErrLimit/FullWithExtra", team, 2, 7, 1, fieldops.ELIMIT, []string{"Team plan: 7 of 7 seats used"}},
		{"ErrLimit/SeveralShort", starter, 0, 2, 3, fieldops.ELIMIT, []string{"Starter plan: 2 of 3 seats used", "2 extra seats for £20/month", "Team plan"}},
		{"ErrLimit/Largest", business, 0, 8, 1, fieldops.ELIMIT, []string{"Business plan: 8 of 8 seats used", "extra seat"}},
		{"ErrLimit/Downgrade", starter, 0, 5, 0, fieldops.ELIMIT, []string{"Starter plan", "2 extra seats"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleErr(t, fieldops.CheckSeats(tt.plan, tt.extra, tt.used, tt.adding), tt.code, tt.msg...)
		})
	}
	if err := fieldops.CheckSeats(business, 0, 8, 1); strings.Contains(fieldops.ErrorMessage(err), "upgrade") {
		t.Errorf("largest plan suggests an upgrade: %v", err)
	}
}

func TestCheckPlanFits(t *testing.T) {
	starter := mustPlan(t, "starter")
	three := []fieldops.Role{fieldops.RoleOwner, fieldops.RoleEngineer, fieldops.RoleOfficeStaff}
	for _, tt := range []struct {
		name      string
		extra     int
		roles     []fieldops.Role
		overrides int
		code      string
	}{
		{"OK", 0, three, 0, ""},
		{"ErrLimit/Role", 0, []fieldops.Role{fieldops.RoleOwner, fieldops.RoleManager}, 0, fieldops.ELIMIT},
		{"ErrLimit/Overrides", 0, three, 1, fieldops.ELIMIT},
		{"ErrLimit/Seats", 0, append(three, fieldops.RoleEngineer), 0, fieldops.ELIMIT},
		{"OK/ExtraSeat", 1, append(three, fieldops.RoleEngineer), 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleErr(t, fieldops.CheckPlanFits(starter, tt.extra, tt.roles, tt.overrides), tt.code)
		})
	}
}
