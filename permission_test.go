package fieldops_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

// -update rewrites the golden files instead of comparing. It is defined
// only if no other test file of this package has defined it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

// updating reports whether -update was given.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestMatrixGolden compares the JSON matrix with the golden file, the
// contract checked by hand against PRODUCT.md §2 and §3. Regenerate with
// go test -run TestMatrixGolden -update, then review the diff cell by cell.
func TestMatrixGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := fieldops.WriteMatrix(&buf, "json"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "permissions.golden.json")
	if updating() {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestMatrixGolden -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("permission matrix differs from %s; if the change is intended, run go test -run TestMatrixGolden -update and review the diff against PRODUCT.md\n got:\n%s", path, buf.String())
	}
}

// TestMatrixSample checks, independently of the golden file, cells of
// PRODUCT.md §2 that are easy to get wrong. Cells: role order Owner,
// Admin, Manager, Engineer, Office Staff, Read-Only, Accountant; A all,
// O own, . none.
func TestMatrixSample(t *testing.T) {
	for _, tt := range []struct {
		flag   fieldops.Flag
		cells  string
		locked bool
	}{
		{fieldops.FlagJobView, "AAAOAAA", false},
		{fieldops.FlagJobCheckIn, "OOOO...", false},
		{fieldops.FlagJobComplete, "AAAOA..", false},
		{fieldops.FlagTimeEdit, "AAAO...", false},
		{fieldops.FlagPhotoView, "AAAOAA.", false},
		{fieldops.FlagPhotoDelete, "AAAO...", false},
		{fieldops.FlagCustomerView, "AAAOAAA", false},
		{fieldops.FlagCustomerDelete, "AA.....", false},
		{fieldops.FlagQuoteView, "AAA.AAA", false},
		{fieldops.FlagCertificateCreate, "AAAO...", false},
		{fieldops.FlagCertificateIssue, "AAA.A..", false},
		{fieldops.FlagDefectView, "AAAOAA.", false},
		{fieldops.FlagInvoiceView, "AA..A.A", false},
		{fieldops.FlagInvoiceEdit, "AA....A", false},
		{fieldops.FlagTimesheetView, "AAAO..A", false},
		{fieldops.FlagTimesheetExport, "AAA...A", false},
		{fieldops.FlagTeamView, "AAA.AAA", false},
		{fieldops.FlagTeamInvite, "AA.....", false},
		{fieldops.FlagScheduleViewTeam, "AAA.AA.", false},
		{fieldops.FlagAlertsReceive, "AAA....", false},
		{fieldops.FlagBillingView, "AA....A", false},
		{fieldops.FlagBillingManage, "A......", true},
		{fieldops.FlagOrgTransferOwnership, "A......", true},
		{fieldops.FlagOrgDelete, "A......", true},
	} {
		t.Run(tt.flag.String(), func(t *testing.T) {
			for i, r := range fieldops.AllRoles() {
				want := map[byte]fieldops.Scope{'A': fieldops.ScopeAll, 'O': fieldops.ScopeOwn, '.': fieldops.ScopeNone}[tt.cells[i]]
				if got := fieldops.RoleGrants(r).Scope(tt.flag); got != want {
					t.Errorf("%s: got %s, want %s", r, got, want)
				}
			}
			if got := tt.flag.Locked(); got != tt.locked {
				t.Errorf("Locked() = %v, want %v", got, tt.locked)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	all := fieldops.AllFlags()
	if len(all) != fieldops.NumFlags || fieldops.NumFlags != 56 {
		t.Fatalf("AllFlags has %d flags, NumFlags = %d; want 56", len(all), fieldops.NumFlags)
	}
	if all[0] != fieldops.FlagJobView || all[55] != fieldops.FlagOrgDelete {
		t.Errorf("flags out of table order: first %s, last %s", all[0], all[55])
	}
	seen := map[string]bool{}
	var locked []string
	for _, f := range all {
		name := f.String()
		if seen[name] {
			t.Errorf("duplicate flag %s", name)
		}
		seen[name] = true
		if area, action, ok := strings.Cut(name, "."); !ok || area == "" || action == "" {
			t.Errorf("flag %q is not area.action", name)
		}
		if d := f.Description(); d == "" || !strings.HasSuffix(d, ".") {
			t.Errorf("%s: description %q is not a sentence", name, d)
		}
		if got, err := fieldops.ParseFlag(" " + strings.ToUpper(name) + " "); err != nil || got != f {
			t.Errorf("ParseFlag(%q) = %v, %v", name, got, err)
		}
		if f.Locked() {
			locked = append(locked, name)
		}
	}
	if want := []string{"billing.manage", "org.transfer_ownership", "org.delete"}; !slices.Equal(locked, want) {
		t.Errorf("locked flags = %v, want %v", locked, want)
	}
	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := fieldops.ParseFlag("job.fly")
		if fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorField(err) != "flag" {
			t.Errorf("ParseFlag(job.fly) = %v, want EINVALID on flag", err)
		}
	})
}

func TestRoles(t *testing.T) {
	names := []string{"owner", "admin", "manager", "engineer", "office_staff", "read_only", "accountant"}
	labels := []string{"Owner", "Admin", "Manager", "Engineer", "Office Staff", "Read-Only", "Accountant"}
	roles := fieldops.AllRoles()
	if len(roles) != 7 {
		t.Fatalf("AllRoles has %d roles", len(roles))
	}
	for i, r := range roles {
		if r != fieldops.RoleOwner+fieldops.Role(i) || r.String() != names[i] || r.Label() != labels[i] {
			t.Errorf("role %d = %d %q %q, want %q %q", i, r, r.String(), r.Label(), names[i], labels[i])
		}
		for _, s := range []string{names[i], labels[i], strings.ToUpper(names[i])} {
			if got, err := fieldops.ParseRole(s); err != nil || got != r {
				t.Errorf("ParseRole(%q) = %v, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "none", "boss"} {
		t.Run("ErrInvalid/"+s, func(t *testing.T) {
			_, err := fieldops.ParseRole(s)
			if fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorField(err) != "role" ||
				!strings.Contains(fieldops.ErrorMessage(err), "office_staff") {
				t.Errorf("ParseRole(%q) = %v, want EINVALID on role listing the roles", s, err)
			}
		})
	}
	if g := fieldops.RoleGrants(fieldops.RoleNone); g != (fieldops.Grants{}) {
		t.Errorf("RoleNone holds %v", g)
	}
}

func TestScopes(t *testing.T) {
	for _, s := range []fieldops.Scope{fieldops.ScopeNone, fieldops.ScopeOwn, fieldops.ScopeAll} {
		if got, err := fieldops.ParseScope(s.String()); err != nil || got != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := fieldops.ParseScope("some"); fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorField(err) != "scope" {
		t.Errorf("ParseScope(some) = %v", err)
	}
}

func TestGrantsCovers(t *testing.T) {
	g := fieldops.RoleGrants
	for _, tt := range []struct {
		name string
		a, b fieldops.Grants
		want bool
	}{
		{"OwnerCoversAll", g(fieldops.RoleOwner), g(fieldops.RoleAccountant), true},
		{"AdminCoversAdmin", g(fieldops.RoleAdmin), g(fieldops.RoleAdmin), true},
		{"AdminNotOwner", g(fieldops.RoleAdmin), g(fieldops.RoleOwner), false},
		{"ManagerNotAccountant", g(fieldops.RoleManager), g(fieldops.RoleAccountant), false},
		{"ManagerCoversEngineer", g(fieldops.RoleManager), g(fieldops.RoleEngineer), true},
		{"EngineerNotManager", g(fieldops.RoleEngineer), g(fieldops.RoleManager), false},
		{"OwnNotAll", fieldops.EffectiveGrants(fieldops.RoleManager, []fieldops.Override{{fieldops.FlagJobView, fieldops.ScopeOwn}}), g(fieldops.RoleOfficeStaff), false},
		{"AnythingCoversNone", fieldops.Grants{}, fieldops.Grants{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Covers(tt.b); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEffectiveGrants(t *testing.T) {
	type o = fieldops.Override
	for _, tt := range []struct {
		name      string
		role      fieldops.Role
		overrides []fieldops.Override
		flag      fieldops.Flag
		want      fieldops.Scope
	}{
		{"Default", fieldops.RoleEngineer, nil, fieldops.FlagJobView, fieldops.ScopeOwn},
		{"Grant", fieldops.RoleEngineer, []o{{fieldops.FlagQuoteView, fieldops.ScopeAll}}, fieldops.FlagQuoteView, fieldops.ScopeAll},
		{"GrantOwn", fieldops.RoleEngineer, []o{{fieldops.FlagJobEdit, fieldops.ScopeOwn}}, fieldops.FlagJobEdit, fieldops.ScopeOwn},
		{"Widen", fieldops.RoleEngineer, []o{{fieldops.FlagJobView, fieldops.ScopeAll}}, fieldops.FlagJobView, fieldops.ScopeAll},
		{"Revoke", fieldops.RoleManager, []o{{fieldops.FlagJobDelete, fieldops.ScopeNone}}, fieldops.FlagJobDelete, fieldops.ScopeNone},
		{"Narrow", fieldops.RoleOfficeStaff, []o{{fieldops.FlagJobView, fieldops.ScopeOwn}}, fieldops.FlagJobView, fieldops.ScopeOwn},
		{"OtherFlagsKept", fieldops.RoleOfficeStaff, []o{{fieldops.FlagJobView, fieldops.ScopeOwn}}, fieldops.FlagJobEdit, fieldops.ScopeAll},
		{"LastWins", fieldops.RoleEngineer, []o{{fieldops.FlagQuoteView, fieldops.ScopeAll}, {fieldops.FlagQuoteView, fieldops.ScopeNone}}, fieldops.FlagQuoteView, fieldops.ScopeNone},
		{"LockedGrantIgnored", fieldops.RoleAdmin, []o{{fieldops.FlagBillingManage, fieldops.ScopeAll}}, fieldops.FlagBillingManage, fieldops.ScopeNone},
		{"LockedRevokeIgnored", fieldops.RoleOwner, []o{{fieldops.FlagOrgDelete, fieldops.ScopeNone}}, fieldops.FlagOrgDelete, fieldops.ScopeAll},
		{"UnknownScopeRevokes", fieldops.RoleManager, []o{{fieldops.FlagJobView, fieldops.Scope(9)}}, fieldops.FlagJobView, fieldops.ScopeNone},
		{"UnknownFlagIgnored", fieldops.RoleEngineer, []o{{fieldops.Flag(200), fieldops.ScopeAll}}, fieldops.FlagJobView, fieldops.ScopeOwn},
		{"NoRoleNothing", fieldops.RoleNone, []o{{fieldops.FlagJobView, fieldops.ScopeAll}}, fieldops.FlagJobView, fieldops.ScopeNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldops.EffectiveGrants(tt.role, tt.overrides).Scope(tt.flag); got != tt.want {
				t.Errorf("%s with %v: %s = %s, want %s", tt.role, tt.overrides, tt.flag, got, tt.want)
			}
		})
	}
}

func TestAccessCan(t *testing.T) {
	const org, other, me, someone = 1, 2, 10, 11
	engineer := &fieldops.Access{OrgID: org, UserID: me, Role: fieldops.RoleEngineer, Grants: fieldops.RoleGrants(fieldops.RoleEngineer)}
	office := &fieldops.Access{OrgID: org, UserID: me, Role: fieldops.RoleOfficeStaff, Grants: fieldops.RoleGrants(fieldops.RoleOfficeStaff)}
	for _, tt := range []struct {
		name string
		a    *fieldops.Access
		flag fieldops.Flag
		r    *fieldops.Resource
		want bool
	}{
		{"AllOK", office, fieldops.FlagJobView, &fieldops.Resource{OrgID: org, CreatedBy: someone}, true},
		{"AllOrgWide", office, fieldops.FlagTeamView, nil, true},
		{"OwnCreatedBy", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: org, CreatedBy: me}, true},
		{"OwnAssignee", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: org, CreatedBy: someone, Assignees: []int64{someone, me}}, true},
		{"ErrOwnNotMine", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: org, CreatedBy: someone, Assignees: []int64{someone}}, false},
		{"ErrOwnOrgWide", engineer, fieldops.FlagJobView, nil, false},
		{"ErrNone", engineer, fieldops.FlagJobEdit, &fieldops.Resource{OrgID: org, CreatedBy: me, Assignees: []int64{me}}, false},
		{"ErrNoneOffice", office, fieldops.FlagJobCheckIn, &fieldops.Resource{OrgID: org, Assignees: []int64{me}}, false},
		{"ErrOtherOrgAll", office, fieldops.FlagJobView, &fieldops.Resource{OrgID: other}, false},
		{"ErrOtherOrgOwn", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: other, CreatedBy: me, Assignees: []int64{me}}, false},
		{"ErrUnknownFlag", office, fieldops.Flag(fieldops.NumFlags), &fieldops.Resource{OrgID: org}, false},
		{"ErrNilAccess", nil, fieldops.FlagJobView, &fieldops.Resource{OrgID: org}, false},
		{"ErrNoUser", &fieldops.Access{OrgID: org, Grants: fieldops.RoleGrants(fieldops.RoleEngineer)}, fieldops.FlagJobView, &fieldops.Resource{OrgID: org}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Can(tt.flag, tt.r); got != tt.want {
				t.Errorf("Can(%s) = %v, want %v", tt.flag, got, tt.want)
			}
		})
	}
	if engineer.Scope(fieldops.FlagJobView) != fieldops.ScopeOwn || office.Scope(fieldops.FlagJobView) != fieldops.ScopeAll || engineer.Scope(fieldops.FlagJobEdit) != fieldops.ScopeNone {
		t.Error("Access.Scope does not follow the matrix")
	}
}

func TestAccessRequire(t *testing.T) {
	engineer := &fieldops.Access{OrgID: 1, UserID: 10, Role: fieldops.RoleEngineer, Grants: fieldops.RoleGrants(fieldops.RoleEngineer)}
	admin := &fieldops.Access{OrgID: 1, UserID: 20, Role: fieldops.RoleAdmin, Grants: fieldops.RoleGrants(fieldops.RoleAdmin)}
	for _, tt := range []struct {
		name string
		a    *fieldops.Access
		flag fieldops.Flag
		r    *fieldops.Resource
		code string
		msg  string
	}{
		{"OK", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: 1, Assignees: []int64{10}}, "", ""},
		{"ErrForbidden", engineer, fieldops.FlagInvoiceView, &fieldops.Resource{OrgID: 1}, fieldops.EFORBIDDEN, "see invoices. Ask an Owner or Admin"},
		{"ErrForbiddenOwn", engineer, fieldops.FlagJobView, &fieldops.Resource{OrgID: 1, Assignees: []int64{11}}, fieldops.EFORBIDDEN, "only where you are assigned to the job"},
		{"ErrForbiddenLocked", admin, fieldops.FlagBillingManage, nil, fieldops.EFORBIDDEN, "Only an Owner can manage billing"},
		{"ErrNotFound", admin, fieldops.FlagJobView, &fieldops.Resource{OrgID: 2}, fieldops.ENOTFOUND, "couldn't find"},
		{"ErrNotFoundNoGrant", engineer, fieldops.FlagInvoiceView, &fieldops.Resource{OrgID: 2}, fieldops.ENOTFOUND, "couldn't find"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Require(tt.flag, tt.r)
			if got := fieldops.ErrorCode(err); got != tt.code {
				t.Fatalf("Require = %v, want code %q", err, tt.code)
			}
			if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
			if tt.code == fieldops.ENOTFOUND && strings.Contains(strings.ToLower(fieldops.ErrorMessage(err)), "organisation") {
				t.Errorf("not-found message mentions an organisation: %q", fieldops.ErrorMessage(err))
			}
		})
	}
}
