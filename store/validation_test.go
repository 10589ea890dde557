package store_test

import (
	"context"
	"encoding/base64"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// TestValidation gives each create and update bad input: the answer is
// EINVALID naming the field at fault, and nothing is written.
func TestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	ctx := o.ctx[fieldops.RoleOwner]
	other := mustCustomer(t, e, ctx, "Other Customer")
	otherSite := mustSite(t, e, ctx, other.ID)
	eng, ro, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleReadOnly], o.user[fieldops.RoleManager]
	start := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	job := func(mod func(n *fieldops.NewJob)) func(context.Context) error {
		return func(ctx context.Context) error {
			n := fieldops.NewJob{CustomerID: o.customer.ID, SiteID: o.site.ID, Type: "eicr", Title: "EICR",
				ScheduledStart: start, ScheduledEnd: start.Add(3 * time.Hour),
				Engineers: []fieldops.Assignment{{UserID: eng, Primary: true}}}
			mod(&n)
			_, err := e.jobs.CreateJob(ctx, n)
			return err
		}
	}
	site := func(mod func(u *fieldops.SiteUpdate)) func(context.Context) error {
		return func(ctx context.Context) error {
			u := fieldops.SiteUpdate{CustomerID: o.customer.ID, Address: ptr("3 Oxford Rd, Manchester"), Postcode: ptr("M1 5QA"),
				Latitude: ptr(53.47), Longitude: ptr(-2.24)}
			mod(&u)
			_, err := e.sites.CreateSite(ctx, u)
			return err
		}
	}
	assign := func(as ...fieldops.Assignment) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.jobs.AssignEngineers(ctx, o.job.ID, as)
			return err
		}
	}
	updateOrg := func(u fieldops.OrganisationUpdate) func(context.Context) error {
		return func(ctx context.Context) error { _, err := e.orgs.UpdateOrganisation(ctx, u); return err }
	}
	long := strings.Repeat("x", 201)

	for _, tt := range []struct {
		name  string
		field string
		op    func(context.Context) error
	}{
		// Customers.
		{"CreateCustomer/NoName", "name", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Phone: ptr("0161 496 0000")})
			return err
		}},
		{"CreateCustomer/BlankName", "name", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("   ")})
			return err
		}},
		{"CreateCustomer/LongName", "name", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr(long)})
			return err
		}},
		{"CreateCustomer/Email", "email", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Acme"), Email: ptr("not an email")})
			return err
		}},
		{"CreateCustomer/EmailNoDomain", "email", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Acme"), Email: ptr("office@localhost")})
			return err
		}},
		{"CreateCustomer/Phone", "phone", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Acme"), Phone: ptr("call me")})
			return err
		}},
		{"CreateCustomer/LongPhone", "phone", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Acme"), Phone: ptr(strings.Repeat("0", 41))})
			return err
		}},
		{"CreateCustomer/LongNotes", "notes", func(ctx context.Context) error {
			_, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr("Acme"), Notes: ptr(strings.Repeat("n", 4001))})
			return err
		}},
		{"UpdateCustomer/BlankName", "name", func(ctx context.Context) error {
			_, err := e.customers.UpdateCustomer(ctx, o.customer.ID, fieldops.CustomerUpdate{Name: ptr("")})
			return err
		}},
		{"UpdateCustomer/Email", "email", func(ctx context.Context) error {
			_, err := e.customers.UpdateCustomer(ctx, o.customer.ID, fieldops.CustomerUpdate{Email: ptr("a@b@c.uk")})
			return err
		}},
		{"UpdateCustomer/Phone", "phone", func(ctx context.Context) error {
			_, err := e.customers.UpdateCustomer(ctx, o.customer.ID, fieldops.CustomerUpdate{Phone: ptr("0161;DROP")})
			return err
		}},
		{"FindCustomers/Limit", "limit", func(ctx context.Context) error {
			_, _, err := e.customers.FindCustomers(ctx, fieldops.CustomerFilter{Limit: 201})
			return err
		}},
		{"FindCustomers/After", "after", func(ctx context.Context) error {
			_, _, err := e.customers.FindCustomers(ctx, fieldops.CustomerFilter{After: "bogus!"})
			return err
		}},
		{"FindCustomers/AfterNoID", "after", func(ctx context.Context) error {
			_, _, err := e.customers.FindCustomers(ctx, fieldops.CustomerFilter{After: base64.RawURLEncoding.EncodeToString([]byte("x.acme"))})
			return err
		}},

		// Sites.
		{"CreateSite/NoCustomer", "customer_id", site(func(u *fieldops.SiteUpdate) { u.CustomerID = 0 })},
		{"CreateSite/UnknownCustomer", "customer_id", site(func(u *fieldops.SiteUpdate) { u.CustomerID = 1 << 40 })},
		{"CreateSite/NoAddress", "address", site(func(u *fieldops.SiteUpdate) { u.Address = nil })},
		{"CreateSite/BlankAddress", "address", site(func(u *fieldops.SiteUpdate) { u.Address = ptr("  ") })},
		{"CreateSite/NoLatitude", "latitude", site(func(u *fieldops.SiteUpdate) { u.Latitude = nil })},
		{"CreateSite/Latitude91", "latitude", site(func(u *fieldops.SiteUpdate) { u.Latitude = ptr(91.0) })},
		{"CreateSite/LatitudeNaN", "latitude", site(func(u *fieldops.SiteUpdate) { u.Latitude = ptr(math.NaN()) })},
		{"CreateSite/Longitude181", "longitude", site(func(u *fieldops.SiteUpdate) { u.Longitude = ptr(-181.0) })},
		{"CreateSite/LongitudeInf", "longitude", site(func(u *fieldops.SiteUpdate) { u.Longitude = ptr(math.Inf(1)) })},
		{"CreateSite/Postcode", "postcode", site(func(u *fieldops.SiteUpdate) { u.Postcode = ptr("M1 5QA EXTRA") })},
		{"CreateSite/LongName", "name", site(func(u *fieldops.SiteUpdate) { u.Name = ptr(long) })},
		{"CreateSite/PropertyType", "property_type", site(func(u *fieldops.SiteUpdate) { u.PropertyType = ptr("castle") })},
		{"UpdateSite/Latitude", "latitude", func(ctx context.Context) error {
			_, err := e.sites.UpdateSite(ctx, o.site.ID, fieldops.SiteUpdate{Latitude: ptr(-90.5)})
			return err
		}},
		{"UpdateSite/MoveCustomer", "customer_id", func(ctx context.Context) error {
			_, err := e.sites.UpdateSite(ctx, o.site.ID, fieldops.SiteUpdate{CustomerID: other.ID, Name: ptr("Moved")})
			return err
		}},
		{"UpdateSite/BlankAddress", "address", func(ctx context.Context) error {
			_, err := e.sites.UpdateSite(ctx, o.site.ID, fieldops.SiteUpdate{Address: ptr("")})
			return err
		}},

		// Jobs.
		{"CreateJob/NoCustomer", "customer_id", job(func(n *fieldops.NewJob) { n.CustomerID = 0 })},
		{"CreateJob/UnknownCustomer", "customer_id", job(func(n *fieldops.NewJob) { n.CustomerID = 1 << 40 })},
		{"CreateJob/NoSite", "site_id", job(func(n *fieldops.NewJob) { n.SiteID = 0 })},
		{"CreateJob/UnknownSite", "site_id", job(func(n *fieldops.NewJob) { n.SiteID = 1 << 40 })},
		{"CreateJob/SiteOfOtherCustomer", "site_id", job(func(n *fieldops.NewJob) { n.SiteID = otherSite.ID })},
		{"CreateJob/UnknownType", "type", job(func(n *fieldops.NewJob) { n.Type = "plumbing" })},
		{"CreateJob/NoTitle", "title", job(func(n *fieldops.NewJob) { n.Title = " " })},
		{"CreateJob/LongTitle", "title", job(func(n *fieldops.NewJob) { n.Title = long })},
		{"CreateJob/NoStart", "scheduled_start", job(func(n *fieldops.NewJob) { n.ScheduledStart = time.Time{} })},
		{"CreateJob/NoEnd", "scheduled_end", job(func(n *fieldops.NewJob) { n.ScheduledEnd = time.Time{} })},
		{"CreateJob/EndBeforeStart", "scheduled_end", job(func(n *fieldops.NewJob) { n.ScheduledEnd = start.Add(-time.Hour) })},
		{"CreateJob/EndAtStart", "scheduled_end", job(func(n *fieldops.NewJob) { n.ScheduledEnd = start })},
		{"CreateJob/Over31Days", "scheduled_end", job(func(n *fieldops.NewJob) { n.ScheduledEnd = start.Add(32 * 24 * time.Hour) })},
		{"CreateJob/NegativeEstimate", "estimated_minutes", job(func(n *fieldops.NewJob) { n.EstimatedMinutes = -5 })},
		{"CreateJob/HugeEstimate", "estimated_minutes", job(func(n *fieldops.NewJob) { n.EstimatedMinutes = 100001 })},
		{"CreateJob/TwoPrimaries", "primary", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: eng, Primary: true}, {UserID: mgr, Primary: true}}
		})},
		{"CreateJob/NoPrimary", "primary", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: eng}, {UserID: mgr}}
		})},
		{"CreateJob/DuplicateEngineer", "engineers", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: eng, Primary: true}, {UserID: eng}}
		})},
		{"CreateJob/ReadOnlyEngineer", "engineers", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: eng, Primary: true}, {UserID: ro}}
		})},
		{"CreateJob/UnknownEngineer", "engineers", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: 1 << 40, Primary: true}}
		})},
		{"CreateJob/ZeroEngineer", "engineers", job(func(n *fieldops.NewJob) {
			n.Engineers = []fieldops.Assignment{{UserID: 0, Primary: true}}
		})},
		{"UpdateJob/UnknownType", "type", func(ctx context.Context) error {
			_, err := e.jobs.UpdateJob(ctx, o.job.ID, fieldops.JobUpdate{Type: ptr("EICR")})
			return err
		}},
		{"UpdateJob/BlankTitle", "title", func(ctx context.Context) error {
			_, err := e.jobs.UpdateJob(ctx, o.job.ID, fieldops.JobUpdate{Title: ptr("")})
			return err
		}},
		{"UpdateJob/ZeroEstimate", "estimated_minutes", func(ctx context.Context) error {
			_, err := e.jobs.UpdateJob(ctx, o.job.ID, fieldops.JobUpdate{EstimatedMinutes: ptr(0)})
			return err
		}},
		{"UpdateJob/LongDescription", "description", func(ctx context.Context) error {
			_, err := e.jobs.UpdateJob(ctx, o.job.ID, fieldops.JobUpdate{Description: ptr(strings.Repeat("d", 4001))})
			return err
		}},
		{"RescheduleJob/EndBeforeStart", "scheduled_end", func(ctx context.Context) error {
			_, err := e.jobs.RescheduleJob(ctx, o.job.ID, start, start.Add(-time.Minute))
			return err
		}},
		{"RescheduleJob/NoStart", "scheduled_start", func(ctx context.Context) error {
			_, err := e.jobs.RescheduleJob(ctx, o.job.ID, time.Time{}, start)
			return err
		}},
		{"AssignEngineers/TwoPrimaries", "primary", assign(fieldops.Assignment{UserID: eng, Primary: true}, fieldops.Assignment{UserID: mgr, Primary: true})},
		{"AssignEngineers/NoPrimary", "primary", assign(fieldops.Assignment{UserID: eng}, fieldops.Assignment{UserID: mgr})},
		{"AssignEngineers/DuplicateEngineer", "engineers", assign(fieldops.Assignment{UserID: mgr, Primary: true}, fieldops.Assignment{UserID: mgr})},
		{"AssignEngineers/ReadOnly", "engineers", assign(fieldops.Assignment{UserID: ro, Primary: true})},
		{"AssignEngineers/Accountant", "engineers", assign(fieldops.Assignment{UserID: eng, Primary: true},
			fieldops.Assignment{UserID: o.user[fieldops.RoleAccountant]})},
		{"FindJobs/Limit", "limit", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{Limit: 201})
			return err
		}},
		{"FindJobs/NegativeLimit", "limit", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{Limit: -1})
			return err
		}},
		{"FindJobs/After", "after", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{After: "not-a-cursor"})
			return err
		}},
		{"FindJobs/AfterNoDot", "after", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{After: base64.RawURLEncoding.EncodeToString([]byte("12345"))})
			return err
		}},
		{"FindJobs/Status", "status", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{Status: "done"})
			return err
		}},
		{"FindJobs/Type", "type", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{Type: "plumbing"})
			return err
		}},
		{"FindJobs/ToBeforeFrom", "to", func(ctx context.Context) error {
			_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{From: start, To: start})
			return err
		}},
		{"FindAuditEvents/Limit", "limit", func(ctx context.Context) error {
			_, _, err := e.audit.FindAuditEvents(ctx, fieldops.AuditFilter{Limit: 501})
			return err
		}},
		{"FindAuditEvents/After", "after", func(ctx context.Context) error {
			_, _, err := e.audit.FindAuditEvents(ctx, fieldops.AuditFilter{After: "%%%"})
			return err
		}},
		{"FindAuditEvents/ToBeforeFrom", "to", func(ctx context.Context) error {
			_, _, err := e.audit.FindAuditEvents(ctx, fieldops.AuditFilter{From: start, To: start.Add(-time.Hour)})
			return err
		}},

		// Members.
		{"AddMember/Email", "email", func(ctx context.Context) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: "jo.bloggs", Name: "Jo", Role: fieldops.RoleEngineer})
			return err
		}},
		{"AddMember/NoEmail", "email", func(ctx context.Context) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: " ", Name: "Jo", Role: fieldops.RoleEngineer})
			return err
		}},
		{"AddMember/NoName", "name", func(ctx context.Context) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: "jo@example.co.uk", Name: "", Role: fieldops.RoleEngineer})
			return err
		}},
		{"AddMember/NoRole", "role", func(ctx context.Context) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: "jo@example.co.uk", Name: "Jo"})
			return err
		}},
		{"AddMember/UnknownRole", "role", func(ctx context.Context) error {
			_, err := e.members.AddMember(ctx, fieldops.NewMember{Email: "jo@example.co.uk", Name: "Jo", Role: fieldops.Role(42)})
			return err
		}},
		{"ChangeRole/NoRole", "role", func(ctx context.Context) error {
			_, err := e.members.ChangeRole(ctx, ro, fieldops.RoleNone)
			return err
		}},
		{"ChangeRole/UnknownRole", "role", func(ctx context.Context) error {
			_, err := e.members.ChangeRole(ctx, ro, fieldops.Role(8))
			return err
		}},
		{"SetOverrides/UnknownFlag", "flag", func(ctx context.Context) error {
			_, err := e.members.SetOverrides(ctx, ro, []fieldops.Override{{Flag: fieldops.Flag(200), Scope: fieldops.ScopeNone}})
			return err
		}},
		{"SetOverrides/UnknownScope", "scope", func(ctx context.Context) error {
			_, err := e.members.SetOverrides(ctx, ro, []fieldops.Override{{Flag: fieldops.FlagJobView, Scope: fieldops.Scope(7)}})
			return err
		}},
		{"SetOverrides/DuplicateFlag", "flag", func(ctx context.Context) error {
			_, err := e.members.SetOverrides(ctx, ro, []fieldops.Override{
				{Flag: fieldops.FlagJobView, Scope: fieldops.ScopeNone}, {Flag: fieldops.FlagJobView, Scope: fieldops.ScopeOwn}})
			return err
		}},
		{"SetOverrides/LockedFlag", "flag", func(ctx context.Context) error {
			_, err := e.members.SetOverrides(ctx, ro, []fieldops.Override{{Flag: fieldops.FlagBillingManage, Scope: fieldops.ScopeNone}})
			return err
		}},

		// The organisation.
		{"UpdateOrganisation/BlankName", "name", updateOrg(fieldops.OrganisationUpdate{Name: ptr(" ")})},
		{"UpdateOrganisation/TimeZone", "time_zone", updateOrg(fieldops.OrganisationUpdate{TimeZone: ptr("Mars/Olympus_Mons")})},
		{"UpdateOrganisation/EmptyTimeZone", "time_zone", updateOrg(fieldops.OrganisationUpdate{TimeZone: ptr("")})},
		{"UpdateOrganisation/Geofence", "geofence_radius_m", updateOrg(fieldops.OrganisationUpdate{GeofenceRadiusM: ptr(5)})},
		{"UpdateOrganisation/Amber0", "capacity_amber_pct", updateOrg(fieldops.OrganisationUpdate{CapacityAmberPct: ptr(0)})},
		{"UpdateOrganisation/Red201", "capacity_red_pct", updateOrg(fieldops.OrganisationUpdate{CapacityRedPct: ptr(201)})},
		{"UpdateOrganisation/AmberAboveRed", "capacity_red_pct", updateOrg(fieldops.OrganisationUpdate{CapacityAmberPct: ptr(95)})},
		{"UpdateOrganisation/AmberEqualsRed", "capacity_red_pct", updateOrg(fieldops.OrganisationUpdate{CapacityAmberPct: ptr(80), CapacityRedPct: ptr(80)})},
		{"UpdateOrganisation/RedBelowAmber", "capacity_red_pct", updateOrg(fieldops.OrganisationUpdate{CapacityRedPct: ptr(60)})},
		{"UpdateOrganisation/Retention", "location_retention_days", updateOrg(fieldops.OrganisationUpdate{LocationRetentionDays: ptr(7)})},
		{"UpdateOrganisation/2FAWithoutOwner", "require_2fa_roles", updateOrg(fieldops.OrganisationUpdate{
			Require2FARoles: []fieldops.Role{fieldops.RoleAdmin, fieldops.RoleEngineer}})},
		{"UpdateOrganisation/2FAUnknownRole", "require_2fa_roles", updateOrg(fieldops.OrganisationUpdate{
			Require2FARoles: []fieldops.Role{fieldops.RoleOwner, fieldops.RoleAdmin, fieldops.RoleNone}})},
		{"ChangePlan/Plan", "plan", func(ctx context.Context) error { _, err := e.orgs.ChangePlan(ctx, "enterprise", 0); return err }},
		{"ChangePlan/NegativeSeats", "extra_seats", func(ctx context.Context) error { _, err := e.orgs.ChangePlan(ctx, "team", -1); return err }},
		{"ChangePlan/TooManySeats", "extra_seats", func(ctx context.Context) error { _, err := e.orgs.ChangePlan(ctx, "team", 501); return err }},
	} {
		t.Run(tt.name+"/ErrInvalid", func(t *testing.T) {
			before := snapshot(t, e, o.id)
			users := count(t, e, `SELECT count(*) FROM users`)
			err := tt.op(ctx)
			wantField(t, err, fieldops.EINVALID, tt.field)
			if fieldops.ErrorMessage(err) == "" || strings.Contains(fieldops.ErrorMessage(err), "went wrong") {
				t.Fatalf("message %q does not say what to change", fieldops.ErrorMessage(err))
			}
			if snapshot(t, e, o.id) != before {
				t.Fatalf("%s wrote to the database", tt.name)
			}
			if got := count(t, e, `SELECT count(*) FROM users`); got != users {
				t.Fatalf("%s created a user", tt.name)
			}
		})
	}
}

// TestCreateOrganisationValidation: bad input creates nothing.
func TestCreateOrganisationValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, err := e.db.CreateUser(context.Background(), "founder@example.co.uk", "Founder", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := fieldops.NewContext(context.Background(), fieldops.Actor{UserID: u.ID, Channel: fieldops.ChannelWeb})
	for _, tt := range []struct {
		name, field string
		n           fieldops.NewOrganisation
	}{
		{"NoName", "name", fieldops.NewOrganisation{Name: "  "}},
		{"LongName", "name", fieldops.NewOrganisation{Name: strings.Repeat("n", 201)}},
		{"TimeZone", "time_zone", fieldops.NewOrganisation{Name: "Sparks", TimeZone: "Europe/Manchester"}},
		{"Plan", "plan", fieldops.NewOrganisation{Name: "Sparks", Plan: "gold"}},
	} {
		t.Run(tt.name+"/ErrInvalid", func(t *testing.T) {
			_, err := e.orgs.CreateOrganisation(ctx, tt.n)
			wantField(t, err, fieldops.EINVALID, tt.field)
			if n := count(t, e, `SELECT count(*) FROM organisations`); n != 0 {
				t.Fatalf("%d organisations written", n)
			}
		})
	}
	t.Run("NoUser/ErrUnauthorized", func(t *testing.T) {
		_, err := e.orgs.CreateOrganisation(context.Background(), fieldops.NewOrganisation{Name: "Sparks"})
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
}

// TestFindCustomersPages pages through customers whose names start with
// capitals and accented capitals: every customer exactly once, by name.
func TestFindCustomersPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	ctx := o.ctx[fieldops.RoleOwner]
	names := []string{"Acme Lettings", "Élan Homes", "Ébène Interiors", "Zeta Ltd", "Öko Haus", "zinc works", "École Primaire", "beta Co"}
	for _, n := range names[1:] {
		mustCustomer(t, e, ctx, n)
	}
	seen := map[int64]bool{}
	after := ""
	for page := 0; page < 20; page++ {
		cs, next, err := e.customers.FindCustomers(ctx, fieldops.CustomerFilter{Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if seen[c.ID] {
				t.Fatalf("customer %q listed twice", c.Name)
			}
			seen[c.ID] = true
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(seen) != len(names) {
		t.Fatalf("FindCustomers paging returned %d of %d customers: the cursor holds Go's strings.ToLower of the name "+
			"but the query compares it with Postgres lower(), which differ for non-ASCII letters (here, in a C-locale database)",
			len(seen), len(names))
	}
}
