package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// permFixture is one organisation prepared for one acting role: the org
// fixture plus records that are not the engineer's, a customer that can be
// deleted and room for one more member.
type permFixture struct {
	o      *org
	self   int64 // the acting member
	target int64 // a member the Owner and Admin may manage, never an Owner

	deletable   *fieldops.Customer // no jobs
	otherCust   *fieldops.Customer // no job of the engineer's
	otherSite   *fieldops.Site
	otherJob    *fieldops.Job // not assigned to the engineer
	addEmail    string
	newJobStart time.Time
}

func mustPermFixture(tb testing.TB, e *env, role fieldops.Role) *permFixture {
	tb.Helper()
	o := mustOrg(tb, e)
	owner := o.ctx[fieldops.RoleOwner]
	if _, err := e.orgs.ChangePlan(owner, "team", 10); err != nil {
		tb.Fatal(err)
	}
	f := &permFixture{o: o, self: o.user[role], target: o.user[fieldops.RoleReadOnly]}
	if role == fieldops.RoleReadOnly {
		f.target = o.user[fieldops.RoleAccountant]
	}
	f.deletable = mustCustomer(tb, e, owner, "Delete Me Ltd")
	f.otherCust = mustCustomer(tb, e, owner, "Other Holdings")
	f.otherSite = mustSite(tb, e, owner, f.otherCust.ID)
	f.otherJob = mustJob(tb, e, owner, f.otherCust.ID, f.otherSite.ID, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		fieldops.Assignment{UserID: o.user[fieldops.RoleManager], Primary: true})
	f.addEmail = fmt.Sprintf("newcomer%d@example.co.uk", seq.Add(1))
	f.newJobStart = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	return f
}

// reach says what an operation acts on, which decides what scope own
// allows.
type reach int

const (
	orgWide reach = iota // the organisation as a whole: own is not enough
	mine                 // the engineer's own record, or a list narrowed to it
	others               // a record that is not the engineer's: own answers "not found"
	anyone               // allowed to every member, whatever they hold
)

// permOp is one service call with the flags it needs.
type permOp struct {
	name  string
	flags []fieldops.Flag
	reach reach
	audit string // the audit action it writes when allowed; "" for a read
	bug   string // a known bug that makes the outcome differ
	op    func(ctx context.Context, e *env, f *permFixture) error
}

func flags(fs ...fieldops.Flag) []fieldops.Flag { return fs }

// permOps are in an order where no call spoils a later one: reads first,
// then changes, then the destructive calls.
var permOps = []permOp{
	{name: "FindOrganisation", reach: anyone, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.orgs.FindOrganisation(ctx)
		return err
	}},
	{name: "FindMemberByID/Self", reach: anyone, op: func(ctx context.Context, e *env, f *permFixture) error {
		m, err := e.members.FindMemberByID(ctx, f.self)
		if err == nil && m.UserID != f.self {
			return fmt.Errorf("got member %d, want %d", m.UserID, f.self)
		}
		return err
	}},
	{name: "FindMemberByID/Other", flags: flags(fieldops.FlagTeamView), reach: orgWide, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.members.FindMemberByID(ctx, f.target)
		return err
	}},
	{name: "FindMembers", flags: flags(fieldops.FlagTeamView), reach: orgWide, op: func(ctx context.Context, e *env, f *permFixture) error {
		ms, err := e.members.FindMembers(ctx, fieldops.MemberFilter{})
		if err == nil && len(ms) != 7 {
			return fmt.Errorf("FindMembers returned %d members, want 7", len(ms))
		}
		return err
	}},
	{name: "FindCustomerByID/Mine", flags: flags(fieldops.FlagCustomerView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.customers.FindCustomerByID(ctx, f.o.customer.ID)
		return err
	}},
	{name: "FindCustomerByID/Others", flags: flags(fieldops.FlagCustomerView), reach: others, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.customers.FindCustomerByID(ctx, f.otherCust.ID)
		return err
	}},
	{name: "FindCustomers", flags: flags(fieldops.FlagCustomerView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, _, err := e.customers.FindCustomers(ctx, fieldops.CustomerFilter{})
		return err
	}},
	{name: "FindSiteByID/Mine", flags: flags(fieldops.FlagCustomerView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.sites.FindSiteByID(ctx, f.o.site.ID)
		return err
	}},
	{name: "FindSiteByID/Others", flags: flags(fieldops.FlagCustomerView), reach: others, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.sites.FindSiteByID(ctx, f.otherSite.ID)
		return err
	}},
	{name: "FindSites/Mine", flags: flags(fieldops.FlagCustomerView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		ss, err := e.sites.FindSites(ctx, f.o.customer.ID)
		if err == nil && (len(ss) != 1 || ss[0].ID != f.o.site.ID) {
			return fmt.Errorf("FindSites returned %d sites, want the fixture site", len(ss))
		}
		return err
	}},
	{name: "FindSites/Others", flags: flags(fieldops.FlagCustomerView), reach: others,
		bug: "SiteService.FindSites does not check customer.view against the customer, so scope own gets an empty list instead of ENOTFOUND",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.sites.FindSites(ctx, f.otherCust.ID)
			return err
		}},
	{name: "FindJobByID/Mine", flags: flags(fieldops.FlagJobView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.jobs.FindJobByID(ctx, f.o.job.ID)
		return err
	}},
	{name: "FindJobByID/Others", flags: flags(fieldops.FlagJobView), reach: others, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, err := e.jobs.FindJobByID(ctx, f.otherJob.ID)
		return err
	}},
	{name: "FindJobs", flags: flags(fieldops.FlagJobView), reach: mine, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{})
		return err
	}},
	{name: "FindAuditEvents", flags: flags(fieldops.FlagAuditView), reach: orgWide, op: func(ctx context.Context, e *env, f *permFixture) error {
		_, _, err := e.audit.FindAuditEvents(ctx, fieldops.AuditFilter{})
		return err
	}},
	{name: "VerifyChain", flags: flags(fieldops.FlagAuditView), reach: orgWide, op: func(ctx context.Context, e *env, f *permFixture) error {
		n, err := e.audit.VerifyChain(ctx)
		if err == nil && n != 0 {
			return fmt.Errorf("VerifyChain = %d, want 0", n)
		}
		return err
	}},

	{name: "UpdateOrganisation", flags: flags(fieldops.FlagSettingsEdit), reach: orgWide, audit: "org.update",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.orgs.UpdateOrganisation(ctx, fieldops.OrganisationUpdate{Name: ptr("Renamed Electrical Ltd"), GeofenceRadiusM: ptr(300)})
			return err
		}},
	{name: "UpdateOrganisation/Require2FARoles", flags: flags(fieldops.FlagSettingsEdit, fieldops.FlagSecurityPolicy), reach: orgWide, audit: "org.update",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.orgs.UpdateOrganisation(ctx, fieldops.OrganisationUpdate{
				Require2FARoles: []fieldops.Role{fieldops.RoleOwner, fieldops.RoleAdmin, fieldops.RoleManager}})
			return err
		}},
	{name: "AddMember", flags: flags(fieldops.FlagTeamInvite), reach: orgWide, audit: "member.add",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: f.addEmail, Name: "New Engineer", Role: fieldops.RoleEngineer})
			return err
		}},
	{name: "ChangeRole", flags: flags(fieldops.FlagTeamChangeRole), reach: orgWide, audit: "member.role_change",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.members.ChangeRole(ctx, f.target, fieldops.RoleOfficeStaff)
			return err
		}},
	{name: "SetOverrides", flags: flags(fieldops.FlagTeamEditPermissions), reach: orgWide, audit: "member.overrides_change",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.members.SetOverrides(ctx, f.target, []fieldops.Override{{Flag: fieldops.FlagJobView, Scope: fieldops.ScopeNone}})
			return err
		}},
	{name: "CreateCustomer", flags: flags(fieldops.FlagCustomerCreate), reach: orgWide, audit: "customer.create",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Northern Homes")})
			return err
		}},
	{name: "UpdateCustomer", flags: flags(fieldops.FlagCustomerEdit), reach: mine, audit: "customer.update",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.customers.UpdateCustomer(ctx, f.o.customer.ID, fieldops.CustomerUpdate{Phone: ptr("0161 496 0999")})
			return err
		}},
	{name: "CreateSite", flags: flags(fieldops.FlagSiteManage), reach: orgWide, audit: "site.create",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.sites.CreateSite(ctx, fieldops.SiteUpdate{CustomerID: f.o.customer.ID, Address: ptr("2 Market St, Manchester"),
				Latitude: ptr(53.4831), Longitude: ptr(-2.2400)})
			return err
		}},
	{name: "UpdateSite", flags: flags(fieldops.FlagSiteManage), reach: mine, audit: "site.update",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.sites.UpdateSite(ctx, f.o.site.ID, fieldops.SiteUpdate{Name: ptr("Head office")})
			return err
		}},
	{name: "CreateJob", flags: flags(fieldops.FlagJobCreate), reach: orgWide, audit: "job.create",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.jobs.CreateJob(ctx, fieldops.NewJob{CustomerID: f.o.customer.ID, SiteID: f.o.site.ID, Type: "pat", Title: "PAT testing",
				ScheduledStart: f.newJobStart, ScheduledEnd: f.newJobStart.Add(2 * time.Hour)})
			return err
		}},
	{name: "UpdateJob", flags: flags(fieldops.FlagJobEdit), reach: mine, audit: "job.update",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.jobs.UpdateJob(ctx, f.o.job.ID, fieldops.JobUpdate{Title: ptr("EICR, three floors")})
			return err
		}},
	{name: "RescheduleJob", flags: flags(fieldops.FlagJobSchedule), reach: mine, audit: "job.reschedule",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			start := f.o.job.ScheduledStart.Add(24 * time.Hour)
			_, err := e.jobs.RescheduleJob(ctx, f.o.job.ID, start, start.Add(4*time.Hour))
			return err
		}},
	{name: "AssignEngineers", flags: flags(fieldops.FlagJobAssign), reach: mine, audit: "job.assign",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.jobs.AssignEngineers(ctx, f.o.job.ID, []fieldops.Assignment{
				{UserID: f.o.user[fieldops.RoleEngineer], Primary: true}, {UserID: f.o.user[fieldops.RoleManager]}})
			return err
		}},

	{name: "DeleteCustomer", flags: flags(fieldops.FlagCustomerDelete), reach: orgWide, audit: "customer.delete",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			return e.customers.DeleteCustomer(ctx, f.deletable.ID)
		}},
	{name: "RemoveMember", flags: flags(fieldops.FlagTeamRemove), reach: orgWide, audit: "member.remove",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			return e.members.RemoveMember(ctx, f.target)
		}},
	{name: "ChangePlan", flags: flags(fieldops.FlagBillingManage), reach: orgWide, audit: "billing.plan_change",
		op: func(ctx context.Context, e *env, f *permFixture) error {
			_, err := e.orgs.ChangePlan(ctx, "business", 4)
			return err
		}},
}

// wantCodeFor derives the expected outcome of op for a role from the
// permission matrix.
func wantCodeFor(role fieldops.Role, op permOp) string {
	if op.reach == anyone {
		return ""
	}
	g := fieldops.RoleGrants(role)
	scope := fieldops.ScopeAll
	for _, fl := range op.flags {
		scope = min(scope, g.Scope(fl))
	}
	switch scope {
	case fieldops.ScopeAll:
		return ""
	case fieldops.ScopeOwn:
		switch op.reach {
		case mine:
			return ""
		case others:
			return fieldops.ENOTFOUND
		}
	}
	return fieldops.EFORBIDDEN
}

// TestPermissions runs every service method as every role and checks the
// outcome against the matrix: allowed calls write exactly one audit event
// (changes) or none (reads); refused calls change nothing at all.
func TestPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			t.Parallel()
			f := mustPermFixture(t, e, role)
			ctx := f.o.ctx[role]
			for _, op := range permOps {
				want := wantCodeFor(role, op)
				t.Run(op.name+"/"+outcome(want), func(t *testing.T) {
					before := snapshot(t, e, f.o.id)
					n := auditCount(t, e, f.o.id)
					err := op.op(ctx, e, f)
					if got := fieldops.ErrorCode(err); got != want {
						if op.bug != "" {
							t.Fatalf("%s: error code = %q (%v), want %q", op.bug, got, err, want)
						}
						t.Fatalf("%s as %s: error code = %q (%v), want %q", op.name, role, got, err, want)
					}
					switch {
					case err != nil || op.audit == "":
						if after := snapshot(t, e, f.o.id); after != before {
							t.Fatalf("%s as %s (%v) changed the organisation's data", op.name, role, err)
						}
					default:
						if got := auditCount(t, e, f.o.id); got != n+1 {
							t.Fatalf("%s wrote %d audit events, want 1", op.name, got-n)
						}
						action, actor, channel := lastAudit(t, e, f.o.id)
						if action != op.audit || actor != f.self || channel != string(fieldops.ChannelWeb) {
							t.Fatalf("audit event = %s by %d on %s, want %s by %d on web", action, actor, channel, op.audit, f.self)
						}
					}
				})
			}
		})
	}
}

// TestPermissionsFollowOverrides checks that the checks read the
// member's current grants, overrides included, on every call.
func TestPermissionsFollowOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]

	t.Run("Require2FARoles/ErrForbidden", func(t *testing.T) {
		// An Admin without security.policy may still edit settings but not
		// the two-factor policy.
		if _, err := e.members.SetOverrides(owner, o.user[fieldops.RoleAdmin],
			[]fieldops.Override{{Flag: fieldops.FlagSecurityPolicy, Scope: fieldops.ScopeNone}}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, e, o.id)
		_, err := e.orgs.UpdateOrganisation(admin, fieldops.OrganisationUpdate{Name: ptr("Changed"),
			Require2FARoles: []fieldops.Role{fieldops.RoleOwner, fieldops.RoleAdmin, fieldops.RoleEngineer}})
		wantCode(t, err, fieldops.EFORBIDDEN)
		if snapshot(t, e, o.id) != before {
			t.Fatal("refused UpdateOrganisation changed data")
		}
		if _, err := e.orgs.UpdateOrganisation(admin, fieldops.OrganisationUpdate{Name: ptr("Changed")}); err != nil {
			t.Fatalf("UpdateOrganisation without the policy: %v", err)
		}
	})

	t.Run("GrantedByOverride/OK", func(t *testing.T) {
		// A Read-Only member granted customer.create may create customers.
		ro := o.ctx[fieldops.RoleReadOnly]
		_, err := e.customers.CreateCustomer(ro, fieldops.CustomerUpdate{Name: ptr("Before")})
		wantCode(t, err, fieldops.EFORBIDDEN)
		if _, err := e.members.SetOverrides(owner, o.user[fieldops.RoleReadOnly],
			[]fieldops.Override{{Flag: fieldops.FlagCustomerCreate, Scope: fieldops.ScopeAll}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.customers.CreateCustomer(ro, fieldops.CustomerUpdate{Name: ptr("After")}); err != nil {
			t.Fatalf("CreateCustomer after the grant: %v", err)
		}
	})

	t.Run("NarrowedToOwn/OK", func(t *testing.T) {
		// Office Staff narrowed to job.create own should still be able to
		// create a job: Access.Can says a new record is checked with
		// CreatedBy set to the member, and it is theirs.
		staff := o.ctx[fieldops.RoleOfficeStaff]
		if _, err := e.members.SetOverrides(owner, o.user[fieldops.RoleOfficeStaff],
			[]fieldops.Override{{Flag: fieldops.FlagJobCreate, Scope: fieldops.ScopeOwn}}); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC)
		_, err := e.jobs.CreateJob(staff, fieldops.NewJob{CustomerID: o.customer.ID, SiteID: o.site.ID, Type: "repair", Title: "Socket repair",
			ScheduledStart: start, ScheduledEnd: start.Add(time.Hour)})
		if err != nil {
			t.Fatalf("CreateJob/CreateCustomer/CreateSite check creation with acc.require (a resource without CreatedBy), so a member whose create flag is narrowed to own can create nothing: %v", err)
		}
	})
}

// TestOwnScopeLists checks that lists narrow to the engineer's own work:
// the customers and sites of their jobs, and their jobs.
func TestOwnScopeLists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, eng := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleEngineer]
	other := mustCustomer(t, e, owner, "Not Yours Ltd")
	otherSite := mustSite(t, e, owner, other.ID)
	secondSite := mustSite(t, e, owner, o.customer.ID) // the engineer's customer, but no job of theirs
	mustJob(t, e, owner, other.ID, otherSite.ID, time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC))

	t.Run("FindCustomers/OK", func(t *testing.T) {
		cs, _, err := e.customers.FindCustomers(eng, fieldops.CustomerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != o.customer.ID {
			t.Fatalf("engineer sees %d customers, want only %d", len(cs), o.customer.ID)
		}
		all, _, err := e.customers.FindCustomers(owner, fieldops.CustomerFilter{})
		if err != nil || len(all) != 2 {
			t.Fatalf("owner sees %d customers (%v), want 2", len(all), err)
		}
	})
	t.Run("FindSites/OK", func(t *testing.T) {
		ss, err := e.sites.FindSites(eng, o.customer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 1 || ss[0].ID != o.site.ID {
			t.Fatalf("engineer sees %d sites, want only the site of their job", len(ss))
		}
		_, err = e.sites.FindSiteByID(eng, secondSite.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		all, err := e.sites.FindSites(owner, o.customer.ID)
		if err != nil || len(all) != 2 {
			t.Fatalf("owner sees %d sites (%v), want 2", len(all), err)
		}
	})
	t.Run("FindJobs/OK", func(t *testing.T) {
		js, next, err := e.jobs.FindJobs(eng, fieldops.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 1 || js[0].ID != o.job.ID || next != "" {
			t.Fatalf("engineer sees %d jobs, want only %d", len(js), o.job.ID)
		}
	})
}
