package fieldops_test

import (
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

// mustPlan returns the named plan or stops the test.
func mustPlan(tb testing.TB, name string) fieldops.Plan {
	tb.Helper()
	p, err := fieldops.FindPlan(name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// checkRuleErr checks err's code (empty for nil) and that its message contains
// each of msg.
func checkRuleErr(tb testing.TB, err error, code string, msg ...string) {
	tb.Helper()
	if got := fieldops.ErrorCode(err); got != code {
		tb.Fatalf("error = %v, want code %q", err, code)
	}
	for _, m := range msg {
		if !strings.Contains(fieldops.ErrorMessage(err), m) {
			tb.Errorf("message %q does not contain %q", fieldops.ErrorMessage(err), m)
		}
	}
}

func TestCheckOverrides(t *testing.T) {
	type o = fieldops.Override
	starter, team, business := mustPlan(t, "starter"), mustPlan(t, "team"), mustPlan(t, "business")
	owner := fieldops.RoleGrants(fieldops.RoleOwner)
	admin := fieldops.RoleGrants(fieldops.RoleAdmin)
	manager := fieldops.RoleGrants(fieldops.RoleManager)
	// A manager given team.edit_permissions by an override.
	managerPlus := fieldops.EffectiveGrants(fieldops.RoleManager, []o{{fieldops.FlagTeamEditPermissions, fieldops.ScopeAll}})
	engineerPlus := fieldops.EffectiveGrants(fieldops.RoleEngineer, []o{{fieldops.FlagTeamEditPermissions, fieldops.ScopeAll}})
	for _, tt := range []struct {
		name      string
		plan      fieldops.Plan
		actor     fieldops.Grants
		role      fieldops.Role
		overrides []fieldops.Override
		code      string
		msg       string
	}{
		{"OK/Grant", team, admin, fieldops.RoleEngineer, []o{{fieldops.FlagQuoteView, fieldops.ScopeAll}}, "", ""},
		{"OK/Business", business, admin, fieldops.RoleEngineer, []o{{fieldops.FlagJobView, fieldops.ScopeAll}}, "", ""},
		{"OK/Revoke", team, admin, fieldops.RoleManager, []o{{fieldops.FlagJobDelete, fieldops.ScopeNone}}, "", ""},
		{"OK/Narrow", team, managerPlus, fieldops.RoleOfficeStaff, []o{{fieldops.FlagJobView, fieldops.ScopeOwn}}, "", ""},
		{"OK/RevokeWhatActorLacks", team, managerPlus, fieldops.RoleAccountant, []o{{fieldops.FlagInvoiceView, fieldops.ScopeNone}}, "", ""},
		{"OK/GrantOwnHoldingOwn", team, engineerPlus, fieldops.RoleReadOnly, []o{{fieldops.FlagTimeEdit, fieldops.ScopeOwn}}, "", ""},
		{"OK/Empty", starter, manager, fieldops.RoleEngineer, nil, "", ""},
		{"ErrPlan", starter, owner, fieldops.RoleEngineer, []o{{fieldops.FlagJobView, fieldops.ScopeAll}}, fieldops.ELIMIT, "Per-user permissions are on the Team and Business plans"},
		{"ErrLocked", team, admin, fieldops.RoleManager, []o{{fieldops.FlagBillingManage, fieldops.ScopeAll}}, fieldops.EINVALID, "billing.manage"},
		{"ErrLockedOwner", team, owner, fieldops.RoleAdmin, []o{{fieldops.FlagOrgDelete, fieldops.ScopeAll}}, fieldops.EINVALID, "make them an Owner"},
		{"ErrLockedRevoke", team, owner, fieldops.RoleOwner, []o{{fieldops.FlagBillingManage, fieldops.ScopeNone}}, fieldops.EINVALID, "billing.manage"},
		{"ErrDuplicate", team, admin, fieldops.RoleEngineer, []o{{fieldops.FlagJobView, fieldops.ScopeAll}, {fieldops.FlagJobView, fieldops.ScopeNone}}, fieldops.EINVALID, "more than once"},
		{"ErrUnknownFlag", team, admin, fieldops.RoleEngineer, []o{{fieldops.Flag(99), fieldops.ScopeAll}}, fieldops.EINVALID, "not known"},
		{"ErrUnknownScope", team, admin, fieldops.RoleEngineer, []o{{fieldops.FlagJobView, fieldops.Scope(7)}}, fieldops.EINVALID, "all, own or none"},
		{"ErrNoRole", team, admin, fieldops.RoleNone, []o{{fieldops.FlagJobView, fieldops.ScopeAll}}, fieldops.EINVALID, "role"},
		{"ErrForbidden", team, managerPlus, fieldops.RoleEngineer, []o{{fieldops.FlagInvoiceView, fieldops.ScopeAll}}, fieldops.EFORBIDDEN, "what you have yourself"},
		{"ErrForbiddenWider", team, engineerPlus, fieldops.RoleReadOnly, []o{{fieldops.FlagTimeEdit, fieldops.ScopeAll}}, fieldops.EFORBIDDEN, "choose own"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := fieldops.CheckOverrides(tt.plan, tt.actor, tt.role, tt.overrides)
			checkRuleErr(t, err, tt.code, tt.msg)
		})
	}
}

func TestCheckAssignRole(t *testing.T) {
	starter, team := mustPlan(t, "starter"), mustPlan(t, "team")
	g := fieldops.RoleGrants
	narrowedManager := fieldops.EffectiveGrants(fieldops.RoleManager, []fieldops.Override{{fieldops.FlagJobView, fieldops.ScopeOwn}})
	for _, tt := range []struct {
		name      string
		plan      fieldops.Plan
		actorRole fieldops.Role
		actor     fieldops.Grants
		target    fieldops.Role
		code      string
		msg       []string
	}{
		{"OK/OwnerMakesOwner", team, fieldops.RoleOwner, g(fieldops.RoleOwner), fieldops.RoleOwner, "", nil},
		{"OK/AdminMakesManager", team, fieldops.RoleAdmin, g(fieldops.RoleAdmin), fieldops.RoleManager, "", nil},
		{"OK/AdminMakesAdmin", team, fieldops.RoleAdmin, g(fieldops.RoleAdmin), fieldops.RoleAdmin, "", nil},
		{"OK/StarterEngineer", starter, fieldops.RoleOwner, g(fieldops.RoleOwner), fieldops.RoleEngineer, "", nil},
		{"ErrForbidden/AdminMakesOwner", team, fieldops.RoleAdmin, g(fieldops.RoleAdmin), fieldops.RoleOwner, fieldops.EFORBIDDEN, []string{"Only an Owner"}},
		{"ErrForbidden/ManagerMakesAccountant", team, fieldops.RoleManager, g(fieldops.RoleManager), fieldops.RoleAccountant, fieldops.EFORBIDDEN, []string{"Accountant", "see invoices"}},
		{"ErrForbidden/NarrowedManagerMakesReadOnly", team, fieldops.RoleManager, narrowedManager, fieldops.RoleReadOnly, fieldops.EFORBIDDEN, []string{"your own work"}},
		{"ErrPlan/StarterManager", starter, fieldops.RoleOwner, g(fieldops.RoleOwner), fieldops.RoleManager, fieldops.ELIMIT, []string{"Starter", "Owner, Engineer and Office Staff", "Team plan"}},
		{"ErrInvalid", team, fieldops.RoleOwner, g(fieldops.RoleOwner), fieldops.RoleNone, fieldops.EINVALID, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleErr(t, fieldops.CheckAssignRole(tt.plan, tt.actorRole, tt.actor, tt.target), tt.code, tt.msg...)
		})
	}
}

func TestCheckManageMember(t *testing.T) {
	for _, tt := range []struct {
		name          string
		actor, target fieldops.Role
		code          string
	}{
		{"OK/OwnerAdmin", fieldops.RoleOwner, fieldops.RoleAdmin, ""},
		{"OK/OwnerOwner", fieldops.RoleOwner, fieldops.RoleOwner, ""},
		{"OK/AdminEngineer", fieldops.RoleAdmin, fieldops.RoleEngineer, ""},
		{"OK/AdminAdmin", fieldops.RoleAdmin, fieldops.RoleAdmin, ""},
		{"ErrForbidden/AdminOwner", fieldops.RoleAdmin, fieldops.RoleOwner, fieldops.EFORBIDDEN},
		{"ErrForbidden/ManagerOwner", fieldops.RoleManager, fieldops.RoleOwner, fieldops.EFORBIDDEN},
		{"ErrForbidden/NoRole", fieldops.RoleNone, fieldops.RoleEngineer, fieldops.EFORBIDDEN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleErr(t, fieldops.CheckManageMember(tt.actor, tt.target), tt.code)
		})
	}
}

func TestCheckOwnersRemain(t *testing.T) {
	t.Run("OK", func(t *testing.T) { checkRuleErr(t, fieldops.CheckOwnersRemain(1), "") })
	t.Run("ErrConflict", func(t *testing.T) {
		checkRuleErr(t, fieldops.CheckOwnersRemain(0), fieldops.ECONFLICT,
			"An organisation needs at least one Owner. Make someone else an Owner first.")
	})
}

func TestTwoFactorRequired(t *testing.T) {
	withInvite := fieldops.EffectiveGrants(fieldops.RoleManager, []fieldops.Override{{Flag: fieldops.FlagTeamInvite, Scope: fieldops.ScopeAll}})
	withQuotes := fieldops.EffectiveGrants(fieldops.RoleEngineer, []fieldops.Override{{Flag: fieldops.FlagQuoteView, Scope: fieldops.ScopeAll}})
	tests := []struct {
		name   string
		role   fieldops.Role
		grants fieldops.Grants
		policy []fieldops.Role
		want   bool
	}{
		{"Owner", fieldops.RoleOwner, fieldops.RoleGrants(fieldops.RoleOwner), nil, true},
		{"Admin", fieldops.RoleAdmin, fieldops.RoleGrants(fieldops.RoleAdmin), nil, true},
		{"Engineer", fieldops.RoleEngineer, fieldops.RoleGrants(fieldops.RoleEngineer), nil, false},
		{"EngineerByPolicy", fieldops.RoleEngineer, fieldops.RoleGrants(fieldops.RoleEngineer), []fieldops.Role{fieldops.RoleOwner, fieldops.RoleAdmin, fieldops.RoleEngineer}, true},
		{"ManagerWithTeamInvite", fieldops.RoleManager, withInvite, nil, true},
		{"EngineerWithQuoteView", fieldops.RoleEngineer, withQuotes, nil, false},
		{"Accountant", fieldops.RoleAccountant, fieldops.RoleGrants(fieldops.RoleAccountant), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldops.TwoFactorRequired(tt.role, tt.grants, tt.policy); got != tt.want {
				t.Fatalf("TwoFactorRequired = %v, want %v", got, tt.want)
			}
		})
	}
}
