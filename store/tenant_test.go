package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// TestTenantIsolation acts as organisation B's Owner on organisation A's
// records: every call answers "not found" and changes nothing.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := mustOrg(t, e), mustOrg(t, e)
	bOwner := b.ctx[fieldops.RoleOwner]
	aEngineer, aReadOnly := a.user[fieldops.RoleEngineer], a.user[fieldops.RoleReadOnly]
	start := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)

	for _, tt := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"FindJobByID", func(ctx context.Context) error { _, err := e.jobs.FindJobByID(ctx, a.job.ID); return err }},
		{"UpdateJob", func(ctx context.Context) error {
			_, err := e.jobs.UpdateJob(ctx, a.job.ID, fieldops.JobUpdate{Title: ptr("Taken over")})
			return err
		}},
		{"RescheduleJob", func(ctx context.Context) error {
			_, err := e.jobs.RescheduleJob(ctx, a.job.ID, start, start.Add(time.Hour))
			return err
		}},
		{"AssignEngineers", func(ctx context.Context) error {
			_, err := e.jobs.AssignEngineers(ctx, a.job.ID, []fieldops.Assignment{{UserID: b.user[fieldops.RoleEngineer], Primary: true}})
			return err
		}},
		{"AssignEngineers/None", func(ctx context.Context) error {
			_, err := e.jobs.AssignEngineers(ctx, a.job.ID, nil)
			return err
		}},
		{"FindCustomerByID", func(ctx context.Context) error {
			_, err := e.customers.FindCustomerByID(ctx, a.customer.ID)
			return err
		}},
		{"UpdateCustomer", func(ctx context.Context) error {
			_, err := e.customers.UpdateCustomer(ctx, a.customer.ID, fieldops.CustomerUpdate{Name: ptr("Taken over")})
			return err
		}},
		{"DeleteCustomer", func(ctx context.Context) error { return e.customers.DeleteCustomer(ctx, a.customer.ID) }},
		{"FindSiteByID", func(ctx context.Context) error { _, err := e.sites.FindSiteByID(ctx, a.site.ID); return err }},
		{"FindSites", func(ctx context.Context) error { _, err := e.sites.FindSites(ctx, a.customer.ID); return err }},
		{"UpdateSite", func(ctx context.Context) error {
			_, err := e.sites.UpdateSite(ctx, a.site.ID, fieldops.SiteUpdate{Address: ptr("Elsewhere")})
			return err
		}},
		{"FindMemberByID", func(ctx context.Context) error { _, err := e.members.FindMemberByID(ctx, aEngineer); return err }},
		{"ChangeRole", func(ctx context.Context) error {
			_, err := e.members.ChangeRole(ctx, aReadOnly, fieldops.RoleAdmin)
			return err
		}},
		{"SetOverrides", func(ctx context.Context) error {
			_, err := e.members.SetOverrides(ctx, aReadOnly, []fieldops.Override{{Flag: fieldops.FlagJobView, Scope: fieldops.ScopeNone}})
			return err
		}},
		{"RemoveMember", func(ctx context.Context) error { return e.members.RemoveMember(ctx, aReadOnly) }},
		{"RemoveMember/Owner", func(ctx context.Context) error { return e.members.RemoveMember(ctx, a.user[fieldops.RoleOwner]) }},
	} {
		t.Run(tt.name+"/ErrNotFound", func(t *testing.T) {
			beforeA, beforeB := snapshot(t, e, a.id), snapshot(t, e, b.id)
			wantCode(t, tt.op(bOwner), fieldops.ENOTFOUND)
			if snapshot(t, e, a.id) != beforeA {
				t.Fatalf("%s changed organisation A", tt.name)
			}
			if snapshot(t, e, b.id) != beforeB {
				t.Fatalf("%s changed organisation B", tt.name)
			}
		})
	}

	t.Run("FindJobs/OK", func(t *testing.T) {
		for _, f := range []fieldops.JobFilter{{}, {CustomerID: a.customer.ID}, {SiteID: a.site.ID}, {EngineerID: aEngineer}} {
			js, _, err := e.jobs.FindJobs(bOwner, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range js {
				if j.OrgID != b.id {
					t.Fatalf("FindJobs(%+v) returned job %d of organisation %d", f, j.ID, j.OrgID)
				}
			}
		}
	})
	t.Run("FindJobs/Engineer/OK", func(t *testing.T) {
		js, _, err := e.jobs.FindJobs(b.ctx[fieldops.RoleEngineer], fieldops.JobFilter{EngineerID: aEngineer})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 0 {
			t.Fatalf("FindJobs by A's engineer returned %d jobs", len(js))
		}
	})
	t.Run("FindCustomers/OK", func(t *testing.T) {
		cs, _, err := e.customers.FindCustomers(bOwner, fieldops.CustomerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != b.customer.ID {
			t.Fatalf("FindCustomers returned %d customers, want only B's", len(cs))
		}
	})
	t.Run("FindMembers/OK", func(t *testing.T) {
		ms, err := e.members.FindMembers(bOwner, fieldops.MemberFilter{IncludeRemoved: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 7 {
			t.Fatalf("FindMembers returned %d members, want B's 7", len(ms))
		}
		for _, m := range ms {
			if m.OrgID != b.id {
				t.Fatalf("FindMembers returned %s of organisation %d", m.Email, m.OrgID)
			}
		}
	})
	t.Run("FindAuditEvents/OK", func(t *testing.T) {
		for _, f := range []fieldops.AuditFilter{{Limit: 500}, {ActorUserID: a.user[fieldops.RoleOwner]},
			{TargetType: "job", TargetID: fmt.Sprint(a.job.ID)}} {
			evs, _, err := e.audit.FindAuditEvents(bOwner, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.OrgID != b.id {
					t.Fatalf("FindAuditEvents(%+v) returned event %d of organisation %d", f, ev.ID, ev.OrgID)
				}
			}
		}
		if n, err := e.audit.VerifyChain(bOwner); err != nil || n != 0 {
			t.Fatalf("VerifyChain = %d, %v", n, err)
		}
	})

	t.Run("CreateJob/ErrInvalid", func(t *testing.T) {
		for _, tt := range []struct {
			name               string
			customerID, siteID int64
			field              string
		}{
			{"ACustomer", a.customer.ID, b.site.ID, "customer_id"},
			{"ASite", b.customer.ID, a.site.ID, "site_id"},
			{"ABoth", a.customer.ID, a.site.ID, "customer_id"},
		} {
			before := snapshot(t, e, b.id)
			_, err := e.jobs.CreateJob(bOwner, fieldops.NewJob{CustomerID: tt.customerID, SiteID: tt.siteID, Type: "eicr", Title: "EICR",
				ScheduledStart: start, ScheduledEnd: start.Add(time.Hour)})
			wantField(t, err, fieldops.EINVALID, tt.field)
			if snapshot(t, e, b.id) != before {
				t.Fatalf("%s: refused CreateJob changed B", tt.name)
			}
		}
	})
	t.Run("CreateSite/ErrInvalid", func(t *testing.T) {
		_, err := e.sites.CreateSite(bOwner, fieldops.SiteUpdate{CustomerID: a.customer.ID, Address: ptr("1 High St"),
			Latitude: ptr(53.0), Longitude: ptr(-2.0)})
		wantField(t, err, fieldops.EINVALID, "customer_id")
	})
	t.Run("AssignEngineers/ErrInvalid", func(t *testing.T) {
		beforeA, beforeB := snapshot(t, e, a.id), snapshot(t, e, b.id)
		_, err := e.jobs.AssignEngineers(bOwner, b.job.ID, []fieldops.Assignment{{UserID: aEngineer, Primary: true}})
		wantField(t, err, fieldops.EINVALID, "engineers")
		_, err = e.jobs.CreateJob(bOwner, fieldops.NewJob{CustomerID: b.customer.ID, SiteID: b.site.ID, Type: "eicr", Title: "EICR",
			ScheduledStart: start, ScheduledEnd: start.Add(time.Hour), Engineers: []fieldops.Assignment{{UserID: aEngineer, Primary: true}}})
		wantField(t, err, fieldops.EINVALID, "engineers")
		if snapshot(t, e, a.id) != beforeA || snapshot(t, e, b.id) != beforeB {
			t.Fatal("refused assignment changed data")
		}
	})

	t.Run("ForeignOrgID/ErrUnauthorized", func(t *testing.T) {
		// B's Owner claiming to act for A: not a member there.
		ctx := actorCtx(a.id, b.user[fieldops.RoleOwner])
		before := snapshot(t, e, a.id)
		for name, op := range map[string]func() error{
			"FindOrganisation": func() error { _, err := e.orgs.FindOrganisation(ctx); return err },
			"FindJobByID":      func() error { _, err := e.jobs.FindJobByID(ctx, a.job.ID); return err },
			"FindJobs":         func() error { _, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{}); return err },
			"FindMembers":      func() error { _, err := e.members.FindMembers(ctx, fieldops.MemberFilter{}); return err },
			"UpdateCustomer": func() error {
				_, err := e.customers.UpdateCustomer(ctx, a.customer.ID, fieldops.CustomerUpdate{Name: ptr("x")})
				return err
			},
			"RemoveMember": func() error { return e.members.RemoveMember(ctx, aReadOnly) },
			"ChangePlan":   func() error { _, err := e.orgs.ChangePlan(ctx, "business", 0); return err },
			"VerifyChain":  func() error { _, err := e.audit.VerifyChain(ctx); return err },
		} {
			if err := op(); fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED {
				t.Errorf("%s: error = %v, want %s", name, err, fieldops.EUNAUTHORIZED)
			}
		}
		if snapshot(t, e, a.id) != before {
			t.Fatal("an unauthorised call changed A")
		}
	})
	t.Run("NoActor/ErrUnauthorized", func(t *testing.T) {
		_, err := e.jobs.FindJobByID(context.Background(), a.job.ID)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		_, err = e.jobs.FindJobByID(actorCtx(0, a.user[fieldops.RoleOwner]), a.job.ID)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
}

// TestMemberOfTwoOrganisations: one person, a Manager in A and an
// Engineer in B, gets the right role and reach in each.
func TestMemberOfTwoOrganisations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := mustOrg(t, e), mustOrg(t, e)
	for _, o := range []*org{a, b} {
		if _, err := e.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 5); err != nil {
			t.Fatal(err)
		}
	}
	email := fmt.Sprintf("both%d@example.co.uk", seq.Add(1))
	ma, err := e.members.AddMember(a.ctx[fieldops.RoleOwner], fieldops.NewMember{Email: email, Name: "Pat Both", Role: fieldops.RoleManager})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.members.AddMember(b.ctx[fieldops.RoleOwner], fieldops.NewMember{Email: "  " + email + " ", Name: "Pat Again", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	if ma.UserID != mb.UserID {
		t.Fatalf("the same e-mail made two users: %d and %d", ma.UserID, mb.UserID)
	}
	if n := count(t, e, `SELECT count(*) FROM users WHERE email = $1`, email); n != 1 {
		t.Fatalf("%d users with %s, want 1", n, email)
	}
	uid := ma.UserID
	ctxA, ctxB := actorCtx(a.id, uid), actorCtx(b.id, uid)
	start := time.Date(2026, 12, 9, 9, 0, 0, 0, time.UTC)
	bJob := mustJob(t, e, b.ctx[fieldops.RoleOwner], b.customer.ID, b.site.ID, start, fieldops.Assignment{UserID: uid, Primary: true})

	t.Run("Roles/OK", func(t *testing.T) {
		for _, tt := range []struct {
			ctx  context.Context
			org  int64
			role fieldops.Role
		}{{ctxA, a.id, fieldops.RoleManager}, {ctxB, b.id, fieldops.RoleEngineer}} {
			m, err := e.members.FindMemberByID(tt.ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			if m.OrgID != tt.org || m.Role != tt.role {
				t.Fatalf("member in org %d = %s in org %d, want %s", tt.org, m.Role, m.OrgID, tt.role)
			}
		}
	})
	t.Run("ManagerInA/OK", func(t *testing.T) {
		if _, err := e.jobs.FindJobByID(ctxA, a.job.ID); err != nil {
			t.Fatalf("as Manager in A: %v", err)
		}
		if _, err := e.jobs.RescheduleJob(ctxA, a.job.ID, start, start.Add(2*time.Hour)); err != nil {
			t.Fatalf("as Manager in A: %v", err)
		}
		_, err := e.jobs.FindJobByID(ctxA, bJob.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
	t.Run("EngineerInB/OK", func(t *testing.T) {
		js, _, err := e.jobs.FindJobs(ctxB, fieldops.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 1 || js[0].ID != bJob.ID {
			t.Fatalf("as Engineer in B: %d jobs, want only %d", len(js), bJob.ID)
		}
		_, err = e.jobs.FindJobByID(ctxB, b.job.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		_, err = e.jobs.RescheduleJob(ctxB, bJob.ID, start, start.Add(2*time.Hour))
		wantCode(t, err, fieldops.EFORBIDDEN)
		_, err = e.members.FindMembers(ctxB, fieldops.MemberFilter{})
		wantCode(t, err, fieldops.EFORBIDDEN)
	})
	t.Run("RemovedFromA/OK", func(t *testing.T) {
		if err := e.members.RemoveMember(a.ctx[fieldops.RoleOwner], uid); err != nil {
			t.Fatal(err)
		}
		_, err := e.jobs.FindJobByID(ctxA, a.job.ID)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if _, err := e.jobs.FindJobByID(ctxB, bJob.ID); err != nil {
			t.Fatalf("still a member of B: %v", err)
		}
	})
}
