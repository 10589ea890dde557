package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// smallOrg is an organisation on the given plan with an Owner and one
// Engineer, and nothing else.
type smallOrg struct {
	id              int64
	owner, engineer int64
	ownerCtx        context.Context
}

func mustSmallOrg(tb testing.TB, e *env, plan string) *smallOrg {
	tb.Helper()
	n := seq.Add(1)
	u, err := e.db.CreateUser(context.Background(), fmt.Sprintf("founder%d@example.co.uk", n), fmt.Sprintf("Founder %d", n), "")
	if err != nil {
		tb.Fatal(err)
	}
	o, err := e.orgs.CreateOrganisation(fieldops.NewContext(context.Background(), fieldops.Actor{UserID: u.ID, Channel: fieldops.ChannelWeb}),
		fieldops.NewOrganisation{Name: fmt.Sprintf("Small %d Ltd", n), Plan: plan})
	if err != nil {
		tb.Fatal(err)
	}
	s := &smallOrg{id: o.ID, owner: u.ID, ownerCtx: actorCtx(o.ID, u.ID)}
	s.engineer = mustMember(tb, e, s.ownerCtx, fieldops.RoleEngineer).UserID
	return s
}

// unchanged fails the test when op changes the organisation's data.
func unchanged(tb testing.TB, e *env, orgID int64, op func() error) error {
	tb.Helper()
	before := snapshot(tb, e, orgID)
	err := op()
	if snapshot(tb, e, orgID) != before {
		tb.Fatalf("a refused call (%v) changed data", err)
	}
	return err
}

func TestOwnerProtections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]
	ownerID, adminID := o.user[fieldops.RoleOwner], o.user[fieldops.RoleAdmin]

	for _, tt := range []struct {
		name string
		op   func() error
	}{
		{"ChangeRole/Owner", func() error { _, err := e.members.ChangeRole(admin, ownerID, fieldops.RoleAdmin); return err }},
		{"SetOverrides/Owner", func() error {
			_, err := e.members.SetOverrides(admin, ownerID, []fieldops.Override{{Flag: fieldops.FlagJobView, Scope: fieldops.ScopeNone}})
			return err
		}},
		{"SetOverrides/OwnerClear", func() error { _, err := e.members.SetOverrides(admin, ownerID, nil); return err }},
		{"RemoveMember/Owner", func() error { return e.members.RemoveMember(admin, ownerID) }},
		{"ChangeRole/MakeOwner", func() error {
			_, err := e.members.ChangeRole(admin, o.user[fieldops.RoleReadOnly], fieldops.RoleOwner)
			return err
		}},
		{"ChangeRole/MakeSelfOwner", func() error { _, err := e.members.ChangeRole(admin, adminID, fieldops.RoleOwner); return err }},
		{"AddMember/Owner", func() error {
			_, err := e.members.AddMember(admin, fieldops.NewMember{Email: "boss@example.co.uk", Name: "Boss", Role: fieldops.RoleOwner})
			return err
		}},
	} {
		t.Run("Admin/"+tt.name+"/ErrForbidden", func(t *testing.T) {
			wantCode(t, unchanged(t, e, o.id, tt.op), fieldops.EFORBIDDEN)
		})
	}

	t.Run("LastOwner/ErrConflict", func(t *testing.T) {
		wantCode(t, unchanged(t, e, o.id, func() error {
			_, err := e.members.ChangeRole(owner, ownerID, fieldops.RoleAdmin)
			return err
		}), fieldops.ECONFLICT)
		wantCode(t, unchanged(t, e, o.id, func() error { return e.members.RemoveMember(owner, ownerID) }), fieldops.ECONFLICT)
	})
	t.Run("OwnerMakesOwner/OK", func(t *testing.T) {
		m, err := e.members.ChangeRole(owner, adminID, fieldops.RoleOwner)
		if err != nil {
			t.Fatal(err)
		}
		if m.Role != fieldops.RoleOwner {
			t.Fatalf("role = %s", m.Role)
		}
		if action, actor, _ := lastAudit(t, e, o.id); action != "member.role_change" || actor != ownerID {
			t.Fatalf("audit = %s by %d", action, actor)
		}
		// The new Owner holds billing.manage at once.
		if _, err := e.orgs.ChangePlan(admin, "team", 3); err != nil {
			t.Fatalf("ChangePlan by the new Owner: %v", err)
		}
	})
	t.Run("SecondOwnerRemovesFirst/OK", func(t *testing.T) {
		if err := e.members.RemoveMember(admin, ownerID); err != nil {
			t.Fatal(err)
		}
		_, err := e.orgs.FindOrganisation(owner)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
	t.Run("NowLastOwner/ErrConflict", func(t *testing.T) {
		wantCode(t, unchanged(t, e, o.id, func() error {
			_, err := e.members.ChangeRole(admin, adminID, fieldops.RoleManager)
			return err
		}), fieldops.ECONFLICT)
		wantCode(t, unchanged(t, e, o.id, func() error { return e.members.RemoveMember(admin, adminID) }), fieldops.ECONFLICT)
	})
	t.Run("DemoteSelfWithAnotherOwner/OK", func(t *testing.T) {
		if _, err := e.members.ChangeRole(admin, o.user[fieldops.RoleManager], fieldops.RoleOwner); err != nil {
			t.Fatal(err)
		}
		m, err := e.members.ChangeRole(admin, adminID, fieldops.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if m.Role != fieldops.RoleAdmin {
			t.Fatalf("role = %s", m.Role)
		}
		if n := count(t, e, `SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND status = 'active'`, o.id); n != 1 {
			t.Fatalf("%d owners, want 1", n)
		}
	})
}

func TestSeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e) // Team plan, 2 extra seats: 7 of 7 used
	owner := o.ctx[fieldops.RoleOwner]
	add := func(email string) error {
		_, err := e.members.AddMember(owner, fieldops.NewMember{Email: email, Name: "Newcomer", Role: fieldops.RoleEngineer})
		return err
	}

	t.Run("AddMember/Full/ErrLimit", func(t *testing.T) {
		users := count(t, e, `SELECT count(*) FROM users`)
		err := unchanged(t, e, o.id, func() error { return add("eighth@example.co.uk") })
		wantCode(t, err, fieldops.ELIMIT)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "Team plan") || !strings.Contains(msg, "7 of 7") {
			t.Fatalf("message %q does not name the plan and the seats", msg)
		}
		if got := count(t, e, `SELECT count(*) FROM users`); got != users {
			t.Fatal("a refused AddMember created a user")
		}
	})
	t.Run("PendingInvitationTakesSeat/ErrLimit", func(t *testing.T) {
		if _, err := e.orgs.ChangePlan(owner, "team", 3); err != nil {
			t.Fatal(err)
		}
		mustExec(t, e, `INSERT INTO invitations (org_id, email, role, token_hash, invited_by) VALUES ($1, 'invited@example.co.uk', 'engineer', $2, $3)`,
			o.id, hash32(t), o.user[fieldops.RoleOwner])
		wantCode(t, unchanged(t, e, o.id, func() error { return add("ninth@example.co.uk") }), fieldops.ELIMIT)
		// An expired or revoked invitation frees its seat.
		mustExec(t, e, `UPDATE invitations SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day' WHERE org_id = $1`, o.id)
		if err := add("ninth@example.co.uk"); err != nil {
			t.Fatalf("AddMember with an expired invitation: %v", err)
		}
	})
	t.Run("ChangePlan/TooFewSeats/ErrConflict", func(t *testing.T) {
		err := unchanged(t, e, o.id, func() error { _, err := e.orgs.ChangePlan(owner, "team", 0); return err })
		wantField(t, err, fieldops.ECONFLICT, "plan")
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "8 seats are in use") {
			t.Fatalf("message %q does not say how many seats are used", msg)
		}
	})
	t.Run("ChangePlan/Starter/ErrConflict", func(t *testing.T) {
		err := unchanged(t, e, o.id, func() error { _, err := e.orgs.ChangePlan(owner, "starter", 10); return err })
		wantField(t, err, fieldops.ECONFLICT, "plan")
		msg := fieldops.ErrorMessage(err)
		for _, r := range []fieldops.Role{fieldops.RoleAdmin, fieldops.RoleManager, fieldops.RoleReadOnly, fieldops.RoleAccountant} {
			if !strings.Contains(msg, " is "+r.Label()+", a role the Starter plan does not offer") {
				t.Errorf("message does not name the %s: %s", r.Label(), msg)
			}
		}
		for _, r := range []fieldops.Role{fieldops.RoleOwner, fieldops.RoleEngineer, fieldops.RoleOfficeStaff} {
			if strings.Contains(msg, " is "+r.Label()+",") {
				t.Errorf("message names the %s, which Starter offers: %s", r.Label(), msg)
			}
		}
	})
	t.Run("ChangePlan/Business/OK", func(t *testing.T) {
		got, err := e.orgs.ChangePlan(owner, "business", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Plan != "business" || got.ExtraSeats != 1 {
			t.Fatalf("organisation = %s + %d", got.Plan, got.ExtraSeats)
		}
	})
}

// TestDowngradeWithPendingInvitation: an invitation takes a seat with its
// role, so a plan that does not offer that role does not fit.
func TestDowngradeWithPendingInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := mustSmallOrg(t, e, "team")
	mustExec(t, e, `INSERT INTO invitations (org_id, email, role, token_hash, invited_by) VALUES ($1, 'books@example.co.uk', 'accountant', $2, $3)`,
		s.id, hash32(t), s.owner)
	_, err := e.orgs.ChangePlan(s.ownerCtx, "starter", 0)
	if err == nil {
		t.Fatal("OrganisationService.ChangePlan checks the roles of active members only; a pending invitation as Accountant " +
			"survives a downgrade to Starter (fieldops.CheckPlanFits takes the roles of pending invitations too)")
	}
	if c := fieldops.ErrorCode(err); c != fieldops.ECONFLICT && c != fieldops.ELIMIT {
		t.Fatalf("error = %v, want a refusal", err)
	}
}

func TestRemoveMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]
	eng1, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	eng2 := withMoreSeats(t, e, o)
	future := time.Now().UTC().Add(7 * 24 * time.Hour).Truncate(time.Hour)
	past := time.Now().UTC().Add(-7 * 24 * time.Hour).Truncate(time.Hour)
	a := func(uid int64, primary bool) fieldops.Assignment {
		return fieldops.Assignment{UserID: uid, Primary: primary}
	}
	job := func(start time.Time, as ...fieldops.Assignment) *fieldops.Job {
		t.Helper()
		return mustJob(t, e, owner, o.customer.ID, o.site.ID, start, as...)
	}
	shared := job(future, a(eng1, true), a(eng2, false))                              // eng2 becomes primary
	three := job(future.Add(time.Hour), a(eng1, true), a(eng2, false), a(mgr, false)) // one of them becomes primary
	alone := job(future.Add(2*time.Hour), a(eng1, true))                              // left without engineers
	notPrimary := job(future.Add(3*time.Hour), a(eng2, true), a(eng1, false))         // eng2 stays primary
	pastJob := job(past, a(eng1, true))                                               // history: kept
	started := job(future.Add(4*time.Hour), a(eng1, true))                            // in progress: kept
	mustExec(t, e, `UPDATE jobs SET status = 'in_progress' WHERE id = $1`, started.ID)

	if err := e.members.RemoveMember(admin, eng1); err != nil {
		t.Fatal(err)
	}

	t.Run("NextCall/ErrUnauthorized", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleEngineer]
		_, _, err := e.jobs.FindJobs(ctx, fieldops.JobFilter{})
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		_, err = e.members.FindMemberByID(ctx, eng1)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		_, err = e.orgs.FindOrganisation(ctx)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
	t.Run("Assignments/OK", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			job     *fieldops.Job
			want    []int64 // engineers after, in any order
			primary int64   // 0: any of want
		}{
			{"Shared", shared, []int64{eng2}, eng2},
			{"Three", three, []int64{eng2, mgr}, 0},
			{"Alone", alone, nil, 0},
			{"NotPrimary", notPrimary, []int64{eng2}, eng2},
			{"Past", pastJob, []int64{eng1}, eng1},
			{"Started", started, []int64{eng1}, eng1},
		} {
			j, err := e.jobs.FindJobByID(owner, tt.job.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			primaries := 0
			for _, en := range j.Engineers {
				got = append(got, en.UserID)
				if en.Primary {
					primaries++
					if tt.primary != 0 && en.UserID != tt.primary {
						t.Errorf("%s: primary = %d, want %d", tt.name, en.UserID, tt.primary)
					}
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("%s: engineers = %v, want %v", tt.name, got, want)
			}
			if len(got) > 0 && primaries != 1 {
				t.Errorf("%s: %d primaries", tt.name, primaries)
			}
		}
	})
	t.Run("Audit/OK", func(t *testing.T) {
		evs, _, err := e.audit.FindAuditEvents(owner, fieldops.AuditFilter{Action: "member.remove"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].TargetID != fmt.Sprint(eng1) || evs[0].ActorUserID != o.user[fieldops.RoleAdmin] {
			t.Fatalf("events = %+v", evs)
		}
		got := fmt.Sprint(evs[0].Changes["unassigned_jobs"])
		ids := []int64{shared.ID, three.ID, alone.ID, notPrimary.ID}
		if o.job.ScheduledStart.After(time.Now()) { // the fixture job, if it is still to come
			ids = append(ids, o.job.ID)
		}
		want := fmt.Sprint(sortedIDs(ids...))
		if got != want {
			t.Fatalf("unassigned_jobs = %s, want %s", got, want)
		}
		if n, err := e.audit.VerifyChain(owner); err != nil || n != 0 {
			t.Fatalf("VerifyChain = %d, %v", n, err)
		}
	})
	t.Run("FindMembers/OK", func(t *testing.T) {
		active, err := e.members.FindMembers(owner, fieldops.MemberFilter{})
		if err != nil {
			t.Fatal(err)
		}
		all, err := e.members.FindMembers(owner, fieldops.MemberFilter{IncludeRemoved: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != 7 || len(all) != 8 {
			t.Fatalf("%d active and %d in all, want 7 and 8", len(active), len(all))
		}
		_, err = e.members.FindMemberByID(owner, eng1)
		wantCode(t, err, fieldops.ENOTFOUND)
	})
	t.Run("AssignRemoved/ErrInvalid", func(t *testing.T) {
		_, err := e.jobs.AssignEngineers(owner, alone.ID, []fieldops.Assignment{a(eng1, true)})
		wantField(t, err, fieldops.EINVALID, "engineers")
	})
	t.Run("AddAgain/OK", func(t *testing.T) {
		m, err := e.members.AddMember(owner, fieldops.NewMember{Email: strings.ToUpper(emailOf(t, e, eng1)),
			Name: "Back Again", Role: fieldops.RoleOfficeStaff})
		if err != nil {
			t.Fatal(err)
		}
		if m.UserID != eng1 || m.Role != fieldops.RoleOfficeStaff {
			t.Fatalf("member = %d as %s", m.UserID, m.Role)
		}
		if _, _, err := e.jobs.FindJobs(o.ctx[fieldops.RoleEngineer], fieldops.JobFilter{}); err != nil {
			t.Fatalf("after re-adding: %v", err)
		}
	})
	t.Run("AddActive/ErrConflict", func(t *testing.T) {
		_, err := e.members.AddMember(owner, fieldops.NewMember{Email: emailOf(t, e, mgr), Name: "Twice", Role: fieldops.RoleEngineer})
		wantField(t, err, fieldops.ECONFLICT, "email")
	})
}

func emailOf(tb testing.TB, e *env, userID int64) string {
	tb.Helper()
	var email string
	if err := e.pool.QueryRow(context.Background(), `SELECT email FROM users WHERE id = $1`, userID).Scan(&email); err != nil {
		tb.Fatal(err)
	}
	return email
}

func sortedIDs(ids ...int64) []int64 { return slices.Sorted(slices.Values(ids)) }

func TestOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]
	engID, roID := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleReadOnly]
	ov := func(f fieldops.Flag, s fieldops.Scope) fieldops.Override { return fieldops.Override{Flag: f, Scope: s} }

	// The Owner takes from the Admin: report.margins and photo.view
	// entirely, job.view down to own.
	if _, err := e.members.SetOverrides(owner, o.user[fieldops.RoleAdmin], []fieldops.Override{
		ov(fieldops.FlagReportMargins, fieldops.ScopeNone), ov(fieldops.FlagPhotoView, fieldops.ScopeNone), ov(fieldops.FlagJobView, fieldops.ScopeOwn)}); err != nil {
		t.Fatal(err)
	}
	// And from the Read-Only member: photo.view.
	if _, err := e.members.SetOverrides(owner, roID, []fieldops.Override{ov(fieldops.FlagPhotoView, fieldops.ScopeNone)}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		target int64
		ovs    []fieldops.Override
	}{
		{"GrantLacking", engID, []fieldops.Override{ov(fieldops.FlagReportMargins, fieldops.ScopeAll)}},
		{"GrantLackingOwn", engID, []fieldops.Override{ov(fieldops.FlagPhotoView, fieldops.ScopeAll)}},
		{"WidenBeyondOwn", engID, []fieldops.Override{ov(fieldops.FlagJobView, fieldops.ScopeAll)}},
		{"ClearRestoresLacking", roID, nil},
	} {
		t.Run("Admin/"+tt.name+"/ErrForbidden", func(t *testing.T) {
			wantCode(t, unchanged(t, e, o.id, func() error {
				_, err := e.members.SetOverrides(admin, tt.target, tt.ovs)
				return err
			}), fieldops.EFORBIDDEN)
		})
	}
	t.Run("Admin/AddMemberGrantLacking/ErrForbidden", func(t *testing.T) {
		wantCode(t, unchanged(t, e, o.id, func() error {
			_, err := e.members.AddMember(admin, fieldops.NewMember{Email: "x@example.co.uk", Name: "X", Role: fieldops.RoleEngineer,
				Overrides: []fieldops.Override{ov(fieldops.FlagReportMargins, fieldops.ScopeAll)}})
			return err
		}), fieldops.EFORBIDDEN)
	})
	t.Run("Admin/GrantHeld/OK", func(t *testing.T) {
		m, err := e.members.SetOverrides(admin, engID, []fieldops.Override{ov(fieldops.FlagCustomerCreate, fieldops.ScopeAll)})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Overrides) != 1 || m.Overrides[0] != ov(fieldops.FlagCustomerCreate, fieldops.ScopeAll) {
			t.Fatalf("overrides = %+v", m.Overrides)
		}
		if _, err := e.customers.CreateCustomer(o.ctx[fieldops.RoleEngineer], fieldops.CustomerUpdate{Name: ptr("Engineer's Own")}); err != nil {
			t.Fatalf("CreateCustomer with the grant: %v", err)
		}
	})
	t.Run("RevokeJobView/ErrForbidden", func(t *testing.T) {
		eng := o.ctx[fieldops.RoleEngineer]
		if _, _, err := e.jobs.FindJobs(eng, fieldops.JobFilter{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.members.SetOverrides(owner, engID, []fieldops.Override{ov(fieldops.FlagJobView, fieldops.ScopeNone)}); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.jobs.FindJobs(eng, fieldops.JobFilter{})
		wantCode(t, err, fieldops.EFORBIDDEN)
		_, err = e.jobs.FindJobByID(eng, o.job.ID)
		wantCode(t, err, fieldops.EFORBIDDEN)
		// Back to the role's defaults.
		if _, err := e.members.SetOverrides(owner, engID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.jobs.FindJobByID(eng, o.job.ID); err != nil {
			t.Fatalf("after clearing: %v", err)
		}
	})
	t.Run("ChangePlanToStarter/ErrConflict", func(t *testing.T) {
		err := unchanged(t, e, o.id, func() error { _, err := e.orgs.ChangePlan(owner, "starter", 10); return err })
		wantCode(t, err, fieldops.ECONFLICT)
		if !strings.Contains(fieldops.ErrorMessage(err), "per-user permissions") {
			t.Fatalf("message %q does not mention per-user permissions", fieldops.ErrorMessage(err))
		}
	})
}

func TestStarterPlan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := mustSmallOrg(t, e, "starter")
	ov := []fieldops.Override{{Flag: fieldops.FlagJobView, Scope: fieldops.ScopeNone}}

	t.Run("SetOverrides/ErrLimit", func(t *testing.T) {
		err := unchanged(t, e, s.id, func() error { _, err := e.members.SetOverrides(s.ownerCtx, s.engineer, ov); return err })
		wantCode(t, err, fieldops.ELIMIT)
		if !strings.Contains(fieldops.ErrorMessage(err), "Team and Business") {
			t.Fatalf("message %q does not name the plans", fieldops.ErrorMessage(err))
		}
	})
	t.Run("SetOverrides/Empty/OK", func(t *testing.T) {
		if _, err := e.members.SetOverrides(s.ownerCtx, s.engineer, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AddMember/Overrides/ErrLimit", func(t *testing.T) {
		wantCode(t, unchanged(t, e, s.id, func() error {
			_, err := e.members.AddMember(s.ownerCtx, fieldops.NewMember{Email: "o@example.co.uk", Name: "O", Role: fieldops.RoleEngineer, Overrides: ov})
			return err
		}), fieldops.ELIMIT)
	})
	t.Run("AddMember/Admin/ErrLimit", func(t *testing.T) {
		err := unchanged(t, e, s.id, func() error {
			_, err := e.members.AddMember(s.ownerCtx, fieldops.NewMember{Email: "a@example.co.uk", Name: "A", Role: fieldops.RoleAdmin})
			return err
		})
		wantCode(t, err, fieldops.ELIMIT)
		if !strings.Contains(fieldops.ErrorMessage(err), "Team plan") {
			t.Fatalf("message %q does not say which plan offers the role", fieldops.ErrorMessage(err))
		}
	})
	t.Run("ChangeRole/Manager/ErrLimit", func(t *testing.T) {
		wantCode(t, unchanged(t, e, s.id, func() error {
			_, err := e.members.ChangeRole(s.ownerCtx, s.engineer, fieldops.RoleManager)
			return err
		}), fieldops.ELIMIT)
	})
	t.Run("StoredOverridesIgnored/OK", func(t *testing.T) {
		// Overrides left in the table do not count on a plan without them.
		mustExec(t, e, `UPDATE memberships SET overrides = '{"job.view": "none"}' WHERE org_id = $1 AND user_id = $2`, s.id, s.engineer)
		if _, _, err := e.jobs.FindJobs(actorCtx(s.id, s.engineer), fieldops.JobFilter{}); err != nil {
			t.Fatalf("FindJobs with an ignored override: %v", err)
		}
	})
	t.Run("Seats/ErrLimit", func(t *testing.T) {
		mustMember(t, e, s.ownerCtx, fieldops.RoleOfficeStaff) // 3 of 3
		err := unchanged(t, e, s.id, func() error {
			_, err := e.members.AddMember(s.ownerCtx, fieldops.NewMember{Email: "fourth@example.co.uk", Name: "Fourth", Role: fieldops.RoleEngineer})
			return err
		})
		wantCode(t, err, fieldops.ELIMIT)
		if !strings.Contains(fieldops.ErrorMessage(err), "Starter plan") {
			t.Fatalf("message %q does not name the plan", fieldops.ErrorMessage(err))
		}
	})
}
