package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// newInvitationService returns the invitation service of e, signing
// members in through a real session store.
func newInvitationService(tb testing.TB, e *env) *store.InvitationService {
	tb.Helper()
	return store.NewInvitationService(e.db, newSessions(tb, e))
}

func newSessions(tb testing.TB, e *env) *store.SessionService {
	tb.Helper()
	return store.NewSessionService(e.db, storetest.MustOpenRedis(tb))
}

// mustAddSeats buys extra seats for a mustOrg organisation on top of its
// two (which its seven members fill).
func mustAddSeats(tb testing.TB, e *env, o *org, extra int) {
	tb.Helper()
	if _, err := e.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 2+extra); err != nil {
		tb.Fatal(err)
	}
}

// mustInvite invites a new address to the organisation of ctx.
func mustInvite(tb testing.TB, svc *store.InvitationService, ctx context.Context, role fieldops.Role) (*fieldops.Invitation, string) {
	tb.Helper()
	inv, token, err := svc.CreateInvitation(ctx, fieldops.NewInvitation{Email: fmt.Sprintf("invitee%d@example.co.uk", seq.Add(1)), Role: role})
	if err != nil {
		tb.Fatalf("invite %s: %v", role, err)
	}
	return inv, token
}

// wantMessage checks an error's code and that its message says each of
// the phrases.
func wantMessage(tb testing.TB, err error, code string, phrases ...string) {
	tb.Helper()
	wantCode(tb, err, code)
	msg := fieldops.ErrorMessage(err)
	for _, p := range phrases {
		if !strings.Contains(msg, p) {
			tb.Fatalf("message %q lacks %q", msg, p)
		}
	}
}

// orgName and userName read names for the messages under test.
func orgName(tb testing.TB, e *env, id int64) string {
	tb.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT name FROM organisations WHERE id = $1`, id).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func userName(tb testing.TB, e *env, id int64) string {
	tb.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = $1`, id).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

var acceptIP = netip.MustParseAddr("203.0.113.7")

func accept(name, password string) fieldops.Accept {
	return fieldops.Accept{Name: name, Password: password, IP: acceptIP, UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
}

const goodPassword = "correct horse battery staple"

func TestCreateInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]

	t.Run("ErrLimit", func(t *testing.T) {
		// mustOrg fills its seven seats: no room for an invitation.
		before := snapshot(t, e, o.id)
		_, _, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "extra@example.co.uk", Role: fieldops.RoleEngineer})
		wantMessage(t, err, fieldops.ELIMIT, "Team plan", "7 of 7 seats")
		if snapshot(t, e, o.id) != before {
			t.Fatal("a refused invitation changed the organisation")
		}
	})

	mustAddSeats(t, e, o, 1) // 8 seats, 7 used

	t.Run("OK", func(t *testing.T) {
		inv, token, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "  New.Engineer@Example.co.uk ", Role: fieldops.RoleEngineer})
		if err != nil {
			t.Fatal(err)
		}
		if inv.Email != "new.engineer@example.co.uk" || inv.Role != fieldops.RoleEngineer || inv.Status != fieldops.InvitationPending ||
			inv.OrgID != o.id || inv.InvitedBy != o.user[fieldops.RoleOwner] || inv.InvitedByName != userName(t, e, o.user[fieldops.RoleOwner]) ||
			inv.OrgName != orgName(t, e, o.id) {
			t.Fatalf("invitation = %+v", inv)
		}
		if d := inv.ExpiresAt.Sub(inv.CreatedAt); d != fieldops.InvitationTTL {
			t.Errorf("valid for %v, want 7 days", d)
		}
		if !strings.HasPrefix(token, "foi_") || len(token) != 4+43 || strings.ContainsAny(token, "+/=") {
			t.Errorf("token %q: want foi_ and 43 base64url characters", token)
		}
		if a, actor, ch := lastAudit(t, e, o.id); a != "invite.create" || actor != o.user[fieldops.RoleOwner] || ch != "web" {
			t.Errorf("last audit = %s by %d on %s", a, actor, ch)
		}
		list, err := svc.FindInvitations(o.ctx[fieldops.RoleReadOnly])
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != inv.ID || list[0].InvitedByName == "" || list[0].Status != fieldops.InvitationPending {
			t.Fatalf("FindInvitations = %+v", list)
		}
	})

	t.Run("ErrLimit/PendingTakesSeat", func(t *testing.T) {
		_, _, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "ninth@example.co.uk", Role: fieldops.RoleEngineer})
		wantMessage(t, err, fieldops.ELIMIT, "Team plan", "8 of 8 seats", "revoke a pending invitation")
	})

	mustAddSeats(t, e, o, 10)

	starterOwner := mustStarterOrg(t, e)
	for _, tt := range []struct {
		name  string
		ctx   context.Context
		n     fieldops.NewInvitation
		code  string
		field string
		says  string
	}{
		{"AdminInvitesOwner", admin, fieldops.NewInvitation{Email: "boss@example.co.uk", Role: fieldops.RoleOwner}, fieldops.EFORBIDDEN, "", "Only an Owner"},
		{"EngineerInvites", o.ctx[fieldops.RoleEngineer], fieldops.NewInvitation{Email: "mate@example.co.uk", Role: fieldops.RoleEngineer}, fieldops.EFORBIDDEN, "", ""},
		{"ManagerInvites", o.ctx[fieldops.RoleManager], fieldops.NewInvitation{Email: "mate@example.co.uk", Role: fieldops.RoleEngineer}, fieldops.EFORBIDDEN, "", ""},
		{"StarterOffersManager", starterOwner, fieldops.NewInvitation{Email: "mgr@example.co.uk", Role: fieldops.RoleManager}, fieldops.ELIMIT, "", "Starter plan"},
		{"StarterOverrides", starterOwner, fieldops.NewInvitation{Email: "eng@example.co.uk", Role: fieldops.RoleEngineer,
			Overrides: []fieldops.Override{{Flag: fieldops.FlagCustomerView, Scope: fieldops.ScopeAll}}}, fieldops.ELIMIT, "", "Per-user permissions"},
		{"AdminGrantsLocked", admin, fieldops.NewInvitation{Email: "eng@example.co.uk", Role: fieldops.RoleEngineer,
			Overrides: []fieldops.Override{{Flag: fieldops.FlagBillingManage, Scope: fieldops.ScopeAll}}}, fieldops.EINVALID, "flag", ""},
		{"AlreadyMember", admin, fieldops.NewInvitation{Email: fmt.Sprintf("%s", memberEmail(t, e, o.user[fieldops.RoleEngineer])), Role: fieldops.RoleEngineer},
			fieldops.ECONFLICT, "email", "is already a member of this organisation"},
		{"AlreadyInvited", admin, fieldops.NewInvitation{Email: "new.engineer@example.co.uk", Role: fieldops.RoleOfficeStaff}, fieldops.ECONFLICT, "email", "pending invitation"},
		{"BadEmail", owner, fieldops.NewInvitation{Email: "sam at example", Role: fieldops.RoleEngineer}, fieldops.EINVALID, "email", ""},
		{"NoRole", owner, fieldops.NewInvitation{Email: "sam@example.co.uk"}, fieldops.EINVALID, "role", ""},
	} {
		t.Run(outcome(tt.code)+"/"+tt.name, func(t *testing.T) {
			before := snapshot(t, e, o.id)
			_, _, err := svc.CreateInvitation(tt.ctx, tt.n)
			wantMessage(t, err, tt.code, tt.says)
			if tt.field != "" {
				wantField(t, err, tt.code, tt.field)
			}
			if snapshot(t, e, o.id) != before {
				t.Fatal("a refused invitation changed the organisation")
			}
		})
	}

	t.Run("OK/AdminInvitesAdminWithOverrides", func(t *testing.T) {
		inv, _, err := svc.CreateInvitation(admin, fieldops.NewInvitation{Email: "second.admin@example.co.uk", Role: fieldops.RoleAdmin})
		if err != nil || inv.Role != fieldops.RoleAdmin {
			t.Fatalf("admin invites admin: %+v, %v", inv, err)
		}
		ov := []fieldops.Override{{Flag: fieldops.FlagCustomerView, Scope: fieldops.ScopeAll}}
		inv, _, err = svc.CreateInvitation(admin, fieldops.NewInvitation{Email: "eng.plus@example.co.uk", Role: fieldops.RoleEngineer, Overrides: ov})
		if err != nil || len(inv.Overrides) != 1 || inv.Overrides[0] != ov[0] {
			t.Fatalf("overrides: %+v, %v", inv, err)
		}
	})

	t.Run("OK/ReplacesExpired", func(t *testing.T) {
		old, oldToken := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		mustExec(t, e, `UPDATE invitations SET created_at = now() - interval '9 days', expires_at = now() - interval '2 days' WHERE id = $1`, old.ID)
		inv, token, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: old.Email, Role: fieldops.RoleOfficeStaff})
		if err != nil {
			t.Fatalf("invite again after expiry: %v", err)
		}
		if inv.Role != fieldops.RoleOfficeStaff || token == oldToken {
			t.Fatalf("invitation = %+v", inv)
		}
		if n := count(t, e, `SELECT count(*) FROM invitations WHERE id = $1 AND replaced_at IS NOT NULL AND replaced_by = $2`, old.ID, inv.ID); n != 1 {
			t.Fatal("the expired invitation was not marked replaced by the new one")
		}
		_, err = svc.FindInvitationByToken(context.Background(), oldToken)
		wantMessage(t, err, fieldops.ECONFLICT, "A newer invitation was sent to you")
		if _, err := svc.FindInvitationByToken(context.Background(), token); err != nil {
			t.Fatal(err)
		}
	})
}

// mustStarterOrg makes an organisation on the Starter plan and returns
// its Owner's context.
func mustStarterOrg(tb testing.TB, e *env) context.Context {
	tb.Helper()
	n := seq.Add(1)
	u, err := e.db.CreateUser(context.Background(), fmt.Sprintf("starter%d@example.co.uk", n), fmt.Sprintf("Starter Owner %d", n), "")
	if err != nil {
		tb.Fatal(err)
	}
	o, err := e.orgs.CreateOrganisation(fieldops.NewContext(context.Background(), fieldops.Actor{UserID: u.ID, Channel: fieldops.ChannelWeb}),
		fieldops.NewOrganisation{Name: fmt.Sprintf("Small Sparks %d", n), Plan: "starter"})
	if err != nil {
		tb.Fatal(err)
	}
	return actorCtx(o.ID, u.ID)
}

func memberEmail(tb testing.TB, e *env, userID int64) string {
	tb.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT upper(email) FROM users WHERE id = $1`, userID).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestResendInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 3)
	owner, admin := o.ctx[fieldops.RoleOwner], o.ctx[fieldops.RoleAdmin]

	t.Run("OK", func(t *testing.T) {
		old, oldToken := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		mustExec(t, e, `UPDATE invitations SET created_at = created_at - interval '5 days', expires_at = expires_at - interval '5 days' WHERE id = $1`, old.ID)
		seats := count(t, e, `SELECT count(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND replaced_at IS NULL`, o.id)
		inv, token, err := svc.ResendInvitation(admin, old.ID)
		if err != nil {
			t.Fatal(err)
		}
		if inv.ID == old.ID || token == oldToken || inv.Email != old.Email || inv.Role != old.Role || inv.Status != fieldops.InvitationPending {
			t.Fatalf("resent = %+v", inv)
		}
		if inv.InvitedBy != o.user[fieldops.RoleAdmin] {
			t.Errorf("resent by %d, want the admin who resent it", inv.InvitedBy)
		}
		if d := time.Until(inv.ExpiresAt); d < fieldops.InvitationTTL-time.Minute {
			t.Errorf("resent link lives %v, want a fresh 7 days", d)
		}
		if n := count(t, e, `SELECT count(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND replaced_at IS NULL`, o.id); n != seats {
			t.Errorf("open invitations %d, want %d: a resend takes no extra seat", n, seats)
		}
		if n := count(t, e, `SELECT count(*) FROM invitations WHERE id = $1 AND replaced_at IS NOT NULL AND replaced_by = $2`, old.ID, inv.ID); n != 1 {
			t.Error("old invitation not marked replaced by the new one")
		}
		_, err = svc.FindInvitationByToken(context.Background(), oldToken)
		wantMessage(t, err, fieldops.ECONFLICT, "A newer invitation was sent to you; use the link in the latest e-mail.")
		_, err = svc.AcceptInvitation(context.Background(), oldToken, accept("Sam Old", goodPassword))
		wantMessage(t, err, fieldops.ECONFLICT, "A newer invitation")
		if found, err := svc.FindInvitationByToken(context.Background(), token); err != nil || found.ID != inv.ID {
			t.Fatalf("new link: %+v, %v", found, err)
		}
		if a, actor, _ := lastAudit(t, e, o.id); a != "invite.resend" || actor != o.user[fieldops.RoleAdmin] {
			t.Errorf("last audit = %s by %d", a, actor)
		}
		list, err := svc.FindInvitations(owner)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == old.ID {
				t.Error("the replaced invitation is still listed")
			}
		}
		if _, err := svc.AcceptInvitation(context.Background(), token, accept("Sam New", goodPassword)); err != nil {
			t.Fatalf("accept the new link: %v", err)
		}
	})

	t.Run("ErrForbidden", func(t *testing.T) {
		inv, _ := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		_, _, err := svc.ResendInvitation(o.ctx[fieldops.RoleEngineer], inv.ID)
		wantCode(t, err, fieldops.EFORBIDDEN)
	})

	t.Run("ErrForbidden/AdminResendsOwnerInvitation", func(t *testing.T) {
		inv, _ := mustInvite(t, svc, owner, fieldops.RoleOwner)
		_, _, err := svc.ResendInvitation(admin, inv.ID)
		wantMessage(t, err, fieldops.EFORBIDDEN, "Only an Owner")
		if err := svc.RevokeInvitation(owner, inv.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		inv, _ := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		if err := svc.RevokeInvitation(owner, inv.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err := svc.ResendInvitation(owner, inv.ID)
		wantMessage(t, err, fieldops.ECONFLICT, "was revoked", inv.Email)

		inv, _ = mustInvite(t, svc, owner, fieldops.RoleEngineer)
		mustExec(t, e, `UPDATE invitations SET created_at = now() - interval '9 days', expires_at = now() - interval '2 days' WHERE id = $1`, inv.ID)
		_, _, err = svc.ResendInvitation(owner, inv.ID)
		wantMessage(t, err, fieldops.ECONFLICT, "expired", "Invite them again")
	})
}

func TestRevokeInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 1)
	owner := o.ctx[fieldops.RoleOwner]

	inv, token := mustInvite(t, svc, owner, fieldops.RoleEngineer)
	// The seat is taken...
	_, _, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "waiting@example.co.uk", Role: fieldops.RoleEngineer})
	wantCode(t, err, fieldops.ELIMIT)

	t.Run("ErrForbidden", func(t *testing.T) {
		wantCode(t, svc.RevokeInvitation(o.ctx[fieldops.RoleOfficeStaff], inv.ID), fieldops.EFORBIDDEN)
	})
	t.Run("OK", func(t *testing.T) {
		if err := svc.RevokeInvitation(o.ctx[fieldops.RoleAdmin], inv.ID); err != nil {
			t.Fatal(err)
		}
		if a, actor, _ := lastAudit(t, e, o.id); a != "invite.revoke" || actor != o.user[fieldops.RoleAdmin] {
			t.Errorf("last audit = %s by %d", a, actor)
		}
		_, err := svc.FindInvitationByToken(context.Background(), token)
		wantMessage(t, err, fieldops.ECONFLICT, "This invitation was withdrawn by "+orgName(t, e, o.id)+".",
			"Ask "+userName(t, e, o.user[fieldops.RoleOwner])+" if you still need access.")
		_, err = svc.AcceptInvitation(context.Background(), token, accept("Sam", goodPassword))
		wantMessage(t, err, fieldops.ECONFLICT, "withdrawn")
		// ...and free again.
		if _, _, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "waiting@example.co.uk", Role: fieldops.RoleEngineer}); err != nil {
			t.Fatalf("seat not freed: %v", err)
		}
	})
	t.Run("ErrConflict/Twice", func(t *testing.T) {
		wantMessage(t, svc.RevokeInvitation(owner, inv.ID), fieldops.ECONFLICT, "was revoked")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, svc.RevokeInvitation(owner, inv.ID+1000), fieldops.ENOTFOUND)
	})
}

func TestFindInvitationByToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 3)
	owner := o.ctx[fieldops.RoleOwner]
	inviter, org := userName(t, e, o.user[fieldops.RoleOwner]), orgName(t, e, o.id)

	t.Run("ErrNotFound", func(t *testing.T) {
		for _, tok := range []string{"", "nonsense", "foi_short", "fow_" + strings.Repeat("A", 43), "foi_" + strings.Repeat("A", 43), "foi_" + strings.Repeat("A", 44)} {
			_, err := svc.FindInvitationByToken(context.Background(), tok)
			wantMessage(t, err, fieldops.ENOTFOUND, "This invitation link is not valid. Ask the person who invited you to send a new one.")
			_, err = svc.AcceptInvitation(context.Background(), tok, accept("Sam", goodPassword))
			wantCode(t, err, fieldops.ENOTFOUND)
		}
	})

	t.Run("OK", func(t *testing.T) {
		inv, token := mustInvite(t, svc, owner, fieldops.RoleManager)
		got, err := svc.FindInvitationByToken(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != inv.ID || got.OrgName != org || got.InvitedByName != inviter || got.Role != fieldops.RoleManager || got.Status != fieldops.InvitationPending {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("ErrConflict/Expired", func(t *testing.T) {
		inv, token := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		mustExec(t, e, `UPDATE invitations SET created_at = now() - interval '9 days', expires_at = now() - interval '2 days' WHERE id = $1`, inv.ID)
		_, err := svc.FindInvitationByToken(context.Background(), token)
		wantMessage(t, err, fieldops.ECONFLICT, "This invitation expired at ", "Ask "+inviter+" at "+org+" to send a new one.")
		_, err = svc.AcceptInvitation(context.Background(), token, accept("Sam", goodPassword))
		wantMessage(t, err, fieldops.ECONFLICT, "expired")
		list, err := svc.FindInvitations(owner)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == inv.ID {
				t.Error("an expired invitation is listed as pending")
			}
		}
	})
}

// TestInvitationExpiryClock moves the store's clock to either side of the
// seventh day: expiry is enforced when the link is used, with no sweep.
func TestInvitationExpiryClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 3)
	inv, token := mustInvite(t, svc, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)

	e.db.Now = func() time.Time { return inv.ExpiresAt.Add(time.Second) }
	_, err := svc.FindInvitationByToken(context.Background(), token)
	wantMessage(t, err, fieldops.ECONFLICT, "expired")
	_, err = svc.AcceptInvitation(context.Background(), token, accept("Sam Late", goodPassword))
	wantMessage(t, err, fieldops.ECONFLICT, "expired")

	e.db.Now = func() time.Time { return inv.ExpiresAt.Add(-time.Second) }
	if _, err := svc.AcceptInvitation(context.Background(), token, accept("Sam Just In Time", goodPassword)); err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
}

func TestAcceptInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	sessions := newSessions(t, e)
	svc := store.NewInvitationService(e.db, sessions)
	mustAddSeats(t, e, o, 5)
	owner := o.ctx[fieldops.RoleOwner]

	t.Run("ErrInvalid", func(t *testing.T) {
		_, token := mustInvite(t, svc, owner, fieldops.RoleEngineer)
		for _, tt := range []struct {
			a     fieldops.Accept
			field string
		}{
			{accept("  ", goodPassword), "name"},
			{accept(strings.Repeat("n", 201), goodPassword), "name"},
			{accept("Sam Short", "elevenchars"), "password"},
			{accept("Sam Empty", ""), "password"},
		} {
			users := count(t, e, `SELECT count(*) FROM users`)
			before := snapshot(t, e, o.id)
			_, err := svc.AcceptInvitation(context.Background(), token, tt.a)
			wantField(t, err, fieldops.EINVALID, tt.field)
			if snapshot(t, e, o.id) != before || count(t, e, `SELECT count(*) FROM users`) != users {
				t.Fatalf("refused acceptance (%s) wrote something", tt.field)
			}
		}
	})

	t.Run("OK", func(t *testing.T) {
		ov := []fieldops.Override{{Flag: fieldops.FlagCustomerView, Scope: fieldops.ScopeAll}}
		inv, token, err := svc.CreateInvitation(owner, fieldops.NewInvitation{Email: "sam.newman@example.co.uk", Role: fieldops.RoleEngineer, Overrides: ov})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.AcceptInvitation(context.Background(), token, accept("  Sam Newman ", goodPassword))
		if err != nil {
			t.Fatal(err)
		}
		if res.Session == nil || res.Token == "" || res.MustEnrol || res.Challenge != "" {
			t.Fatalf("result = %+v", res)
		}
		var userID int64
		var name, hash string
		if err := e.pool.QueryRow(context.Background(), `SELECT id, name, password_hash FROM users WHERE email = $1`, inv.Email).Scan(&userID, &name, &hash); err != nil {
			t.Fatal(err)
		}
		if name != "Sam Newman" || !store.VerifyPassword(hash, goodPassword) {
			t.Errorf("user %q, password kept: %v", name, store.VerifyPassword(hash, goodPassword))
		}
		s := res.Session
		if s.OrgID != o.id || s.UserID != userID || s.Channel != fieldops.ChannelWeb || s.TwoFactor || s.IP != acceptIP.String() {
			t.Errorf("session = %+v", s)
		}
		// The session works: the new member acts in the organisation.
		sess, actor, err := sessions.Authenticate(context.Background(), res.Token, acceptIP)
		if err != nil || sess.ID != s.ID || actor.UserID != userID || actor.OrgID != o.id {
			t.Fatalf("Authenticate = %+v, %+v, %v", sess, actor, err)
		}
		m, err := e.members.FindMemberByID(fieldops.NewContext(context.Background(), actor), userID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Role != fieldops.RoleEngineer || len(m.Overrides) != 1 || m.Overrides[0] != ov[0] {
			t.Errorf("member = %+v", m)
		}
		if n := count(t, e, `SELECT count(*) FROM invitations WHERE id = $1 AND accepted_at IS NOT NULL AND accepted_user_id = $2`, inv.ID, userID); n != 1 {
			t.Error("invitation not marked accepted")
		}
		var action, channel, ip, target string
		var actorID int64
		if err := e.pool.QueryRow(context.Background(), `SELECT action, actor_user_id, channel, host(ip), target_id FROM audit_events
			WHERE org_id = $1 ORDER BY seq DESC LIMIT 1`, o.id).Scan(&action, &actorID, &channel, &ip, &target); err != nil {
			t.Fatal(err)
		}
		if action != "invite.accept" || actorID != userID || channel != "web" || ip != acceptIP.String() || target != fmt.Sprint(inv.ID) {
			t.Errorf("audit = %s by %d on %s from %s, target %s", action, actorID, channel, ip, target)
		}
		if broken, err := e.audit.VerifyChain(owner); err != nil || broken != 0 {
			t.Errorf("audit chain broken at %d: %v", broken, err)
		}

		t.Run("ErrConflict/Twice", func(t *testing.T) {
			_, err := svc.AcceptInvitation(context.Background(), token, accept("Sam Newman", goodPassword))
			wantMessage(t, err, fieldops.ECONFLICT, "This invitation has already been used. Sign in instead, or ask "+
				userName(t, e, o.user[fieldops.RoleOwner])+" at "+orgName(t, e, o.id)+" for a new one.")
			_, err = svc.FindInvitationByToken(context.Background(), token)
			wantMessage(t, err, fieldops.ECONFLICT, "already been used")
		})
	})

	t.Run("OK/MustEnrol", func(t *testing.T) {
		_, token := mustInvite(t, svc, owner, fieldops.RoleAdmin)
		res, err := svc.AcceptInvitation(context.Background(), token, accept("Ada Admin", goodPassword))
		if err != nil {
			t.Fatal(err)
		}
		if !res.MustEnrol || res.Session == nil {
			t.Errorf("admin: result = %+v, want MustEnrol", res)
		}
	})

	t.Run("ErrLimit/PlanNoLongerOffersRole", func(t *testing.T) {
		// Only reachable by a direct change: ChangePlan refuses a plan
		// that a pending invitation would not fit.
		_, token := mustInvite(t, svc, owner, fieldops.RoleManager)
		mustExec(t, e, `UPDATE organisations SET plan = 'starter' WHERE id = $1`, o.id)
		defer mustExec(t, e, `UPDATE organisations SET plan = 'team' WHERE id = $1`, o.id)
		_, err := svc.AcceptInvitation(context.Background(), token, accept("Mo Manager", goodPassword))
		wantMessage(t, err, fieldops.ELIMIT, "Starter plan", "Manager")
	})
}

// TestAcceptInvitationConcurrent races ten acceptances of one link:
// exactly one joins.
func TestAcceptInvitationConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 1)
	inv, token := mustInvite(t, svc, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)

	const n = 10
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = svc.AcceptInvitation(context.Background(), token, accept(fmt.Sprintf("Racer %d", i), goodPassword))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case fieldops.ErrorCode(err) == fieldops.ECONFLICT && strings.Contains(fieldops.ErrorMessage(err), "already been used"):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d acceptances succeeded, want exactly 1", ok)
	}
	if c := count(t, e, `SELECT count(*) FROM users WHERE email = $1`, inv.Email); c != 1 {
		t.Errorf("%d users for the address", c)
	}
	if c := count(t, e, `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = $2`, o.id, inv.Email); c != 1 {
		t.Errorf("%d memberships", c)
	}
	if c := count(t, e, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'invite.accept'`, o.id); c != 1 {
		t.Errorf("%d invite.accept entries", c)
	}
}

// TestAcceptInvitationExistingUser joins a second organisation with the
// account of the first.
func TestAcceptInvitationExistingUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := mustOrg(t, e), mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, a, 2)
	mustAddSeats(t, e, b, 2)

	invA, tokA := mustInvite(t, svc, a.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
	resA, err := svc.AcceptInvitation(context.Background(), tokA, accept("Jo Both", goodPassword))
	if err != nil {
		t.Fatal(err)
	}
	userID := resA.Session.UserID

	invB, tokB, err := svc.CreateInvitation(b.ctx[fieldops.RoleAdmin], fieldops.NewInvitation{Email: invA.Email, Role: fieldops.RoleOfficeStaff})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ErrUnauthorized", func(t *testing.T) {
		before := snapshot(t, e, b.id)
		_, err := svc.AcceptInvitation(context.Background(), tokB, accept("Jo Both", "not the password at all"))
		wantMessage(t, err, fieldops.EUNAUTHORIZED, "An account with this e-mail already exists; enter its password to join.")
		// Only the wrong-password count on the invitation moves.
		if n := count(t, e, `SELECT failed_attempts FROM invitations WHERE id = $1`, invB.ID); n != 1 {
			t.Fatalf("failed_attempts = %d, want 1", n)
		}
		mustExec(t, e, `UPDATE invitations SET failed_attempts = 0 WHERE id = $1`, invB.ID)
		if snapshot(t, e, b.id) != before {
			t.Fatal("a refused acceptance changed the organisation")
		}
	})

	t.Run("OK", func(t *testing.T) {
		users := count(t, e, `SELECT count(*) FROM users`)
		// The name field is not needed for an existing account and does
		// not rename it.
		res, err := svc.AcceptInvitation(context.Background(), tokB, accept("", goodPassword))
		if err != nil {
			t.Fatal(err)
		}
		if res.Session.UserID != userID || res.Session.OrgID != b.id {
			t.Errorf("session = %+v", res.Session)
		}
		if count(t, e, `SELECT count(*) FROM users`) != users || userName(t, e, userID) != "Jo Both" {
			t.Error("a second account was made, or the first renamed")
		}
		if c := count(t, e, `SELECT count(*) FROM memberships WHERE user_id = $1 AND status = 'active'`, userID); c != 2 {
			t.Errorf("member of %d organisations, want 2", c)
		}
		_ = invB
	})

	t.Run("OK/Rejoin", func(t *testing.T) {
		if err := e.members.RemoveMember(a.ctx[fieldops.RoleOwner], userID); err != nil {
			t.Fatal(err)
		}
		_, tok, err := svc.CreateInvitation(a.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: invA.Email, Role: fieldops.RoleManager})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AcceptInvitation(context.Background(), tok, accept("Jo Both", goodPassword)); err != nil {
			t.Fatal(err)
		}
		m, err := e.members.FindMemberByID(a.ctx[fieldops.RoleOwner], userID)
		if err != nil || m.Role != fieldops.RoleManager {
			t.Fatalf("rejoined member = %+v, %v", m, err)
		}
	})

	t.Run("OK/TwoFactorAccountNotSignedIn", func(t *testing.T) {
		// An account with two-factor sign-in joins, but gets no session
		// from the link and password alone: it signs in with its code.
		c := mustOrg(t, e)
		mustAddSeats(t, e, c, 1)
		mustExec(t, e, `UPDATE users SET totp_enabled_at = now() WHERE id = $1`, userID)
		_, tok, err := svc.CreateInvitation(c.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: invA.Email, Role: fieldops.RoleEngineer})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.AcceptInvitation(context.Background(), tok, accept("", goodPassword))
		if err != nil {
			t.Fatal(err)
		}
		if res.Session != nil || res.Token != "" {
			t.Errorf("signed in without the second factor: %+v", res)
		}
		if n := count(t, e, `SELECT count(*) FROM memberships WHERE org_id = $1 AND user_id = $2 AND status = 'active'`, c.id, userID); n != 1 {
			t.Error("not a member of the third organisation")
		}
	})

	t.Run("ErrUnauthorized/NoPassword", func(t *testing.T) {
		// mustOrg's members were added directly and have no password:
		// whoever holds the link must not be able to set one.
		email := strings.ToLower(memberEmail(t, e, a.user[fieldops.RoleEngineer]))
		_, tok, err := svc.CreateInvitation(b.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: email, Role: fieldops.RoleEngineer})
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.AcceptInvitation(context.Background(), tok, accept("Taken Over", goodPassword))
		wantMessage(t, err, fieldops.EUNAUTHORIZED, "no password")
		if n := count(t, e, `SELECT count(*) FROM users WHERE email = $1 AND password_hash IS NULL`, email); n != 1 {
			t.Fatal("the account's password was set")
		}
	})
}

// TestInvitationTenant acts as organisation B on organisation A's
// invitations.
func TestInvitationTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := mustOrg(t, e), mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, a, 1)
	inv, token := mustInvite(t, svc, a.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
	bOwner := b.ctx[fieldops.RoleOwner]
	beforeA, beforeB := snapshot(t, e, a.id), snapshot(t, e, b.id)

	_, _, err := svc.ResendInvitation(bOwner, inv.ID)
	wantCode(t, err, fieldops.ENOTFOUND)
	wantCode(t, svc.RevokeInvitation(bOwner, inv.ID), fieldops.ENOTFOUND)
	list, err := svc.FindInvitations(bOwner)
	if err != nil || len(list) != 0 {
		t.Fatalf("B sees %+v, %v", list, err)
	}
	if snapshot(t, e, a.id) != beforeA || snapshot(t, e, b.id) != beforeB {
		t.Fatal("a cross-tenant call changed something")
	}
	// The link still works, for A.
	if got, err := svc.FindInvitationByToken(context.Background(), token); err != nil || got.OrgID != a.id {
		t.Fatalf("link: %+v, %v", got, err)
	}
}

// TestInvitationTokenNotStored checks that only the token's SHA-256 is
// kept, anywhere in the database.
func TestInvitationTokenNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 1)
	inv, token := mustInvite(t, svc, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
	inv2, token2, err := svc.ResendInvitation(o.ctx[fieldops.RoleOwner], inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{token, token2} {
		secret := strings.TrimPrefix(tok, "foi_")
		for _, tbl := range []string{"invitations", "audit_events", "notifications", "users", "memberships"} {
			if n := count(t, e, `SELECT count(*) FROM `+tbl+` t WHERE strpos(t::text, $1) > 0`, secret); n != 0 {
				t.Errorf("token found in %s", tbl)
			}
		}
	}
	var hash []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT token_hash FROM invitations WHERE id = $1`, inv2.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(token2))
	if !bytes.Equal(hash, want[:]) {
		t.Errorf("token_hash is not SHA-256 of the token")
	}
}

// TestInvitationMemberAddedDirectly covers an invitee who was added to
// the team directly while their invitation was pending.
func TestInvitationMemberAddedDirectly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 2)
	owner := o.ctx[fieldops.RoleOwner]
	inv, token := mustInvite(t, svc, owner, fieldops.RoleEngineer)
	if _, err := e.members.AddMember(owner, fieldops.NewMember{Email: inv.Email, Name: "Direct Dee", Role: fieldops.RoleEngineer}); err != nil {
		t.Fatal(err)
	}
	_, _, err := svc.ResendInvitation(owner, inv.ID)
	wantMessage(t, err, fieldops.ECONFLICT, "is already a member")
	_, err = svc.AcceptInvitation(context.Background(), token, accept("Direct Dee", goodPassword))
	// The account was made without a password by AddMember.
	wantCode(t, err, fieldops.EUNAUTHORIZED)
	if err := svc.RevokeInvitation(owner, inv.ID); err != nil {
		t.Fatalf("revoke the stale invitation: %v", err)
	}
}

// TestAcceptWrongPasswordsWithdraw: a link cannot be used to keep guessing
// the password of the existing account it names.
func TestAcceptWrongPasswordsWithdraw(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	if _, err := e.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 5); err != nil {
		t.Fatal(err)
	}
	// Someone with an account elsewhere.
	if _, err := e.db.CreateUser(context.Background(), "existing@example.co.uk", "Existing Person", "the real password 1"); err != nil {
		t.Fatal(err)
	}
	sessions := store.NewSessionService(e.db, storetest.MustOpenRedis(t))
	invites := store.NewInvitationService(e.db, sessions)
	_, token, err := invites.CreateInvitation(o.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: "existing@example.co.uk", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		_, err := invites.AcceptInvitation(context.Background(), token, fieldops.Accept{Name: "x", Password: fmt.Sprintf("wrong guess number %d", i)})
		want := fieldops.EUNAUTHORIZED
		if i == 5 {
			want = fieldops.ELIMIT
		}
		if got := fieldops.ErrorCode(err); got != want {
			t.Fatalf("attempt %d: %v, want %s", i, err, want)
		}
	}
	// Withdrawn: even the right password no longer works, and the link says so.
	if _, err := invites.AcceptInvitation(context.Background(), token, fieldops.Accept{Name: "x", Password: "the real password 1"}); err == nil {
		t.Fatal("accepted after the invitation was withdrawn")
	}
	if _, err := invites.FindInvitationByToken(context.Background(), token); err == nil || !strings.Contains(fieldops.ErrorMessage(err), "withdrawn") {
		t.Fatalf("link after withdrawal: %v", err)
	}
	if n := count(t, e, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'invite.revoke' AND changes->>'reason' = 'too_many_wrong_passwords'`, o.id); n != 1 {
		t.Fatalf("audit entries = %d, want 1", n)
	}
}
