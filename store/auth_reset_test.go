package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// mustWebSession starts a web session for a member and returns its token
// and a context with the actor Authenticate gives for it.
func (a *authEnv) mustWebSession(tb testing.TB, userID int64) (string, context.Context) {
	tb.Helper()
	_, token, err := a.sessions.CreateSession(context.Background(), fieldops.NewSession{
		OrgID: a.org.id, UserID: userID, Channel: fieldops.ChannelWeb, UserAgent: firefoxUA, IP: clientIP, TwoFactor: true})
	if err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	_, actor, err := a.sessions.Authenticate(context.Background(), token, clientIP)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return token, fieldops.NewContext(context.Background(), actor)
}

// wantTOTP checks whether a user's two-factor sign-in is on, with its
// secret, and how many recovery codes they have.
func (a *authEnv) wantTOTP(tb testing.TB, userID int64, on bool, codes int) {
	tb.Helper()
	var enabled, secret, step bool
	if err := a.pool.QueryRow(context.Background(), `SELECT totp_enabled_at IS NOT NULL, totp_secret_enc IS NOT NULL, totp_last_step IS NOT NULL
		FROM users WHERE id = $1`, userID).Scan(&enabled, &secret, &step); err != nil {
		tb.Fatal(err)
	}
	if enabled != on || secret != on || step != on {
		tb.Errorf("totp enabled %v, secret %v, last step %v; want all %v", enabled, secret, step, on)
	}
	if n := count(tb, a.env, `SELECT count(*) FROM recovery_codes WHERE user_id = $1`, userID); n != codes {
		tb.Errorf("recovery codes = %d, want %d", n, codes)
	}
}

func TestAuthService_ResetTwoFactor(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		a := newAuthEnv(t)
		o := a.org
		eng := o.user[fieldops.RoleEngineer]
		mustExec(t, a.env, `UPDATE organisations SET require_2fa_roles = '{owner,admin,engineer}' WHERE id = $1`, o.id)
		secret, codes := a.mustEnrol(t, o.ctx[fieldops.RoleEngineer])
		a.wantTOTP(t, eng, true, len(codes))
		email := a.mustPassword(t, eng)
		webTok, webCtx := a.mustWebSession(t, eng)
		_, apiTok, err := store.NewAPITokenService(a.db, a.sessions).CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Sync")
		if err != nil {
			t.Fatal(err)
		}
		challenge := a.mustChallenge(t, email) // a sign-in half-way through
		ownerTok, ownerCtx := a.mustWebSession(t, o.user[fieldops.RoleOwner])
		audits := auditCount(t, a.env, o.id)

		if err := a.auth.ResetTwoFactor(ownerCtx, eng); err != nil {
			t.Fatal(err)
		}

		a.wantTOTP(t, eng, false, 0)
		// Every session of theirs ended: gone from Redis and refused by
		// Postgres; their API token is revoked.
		for _, tok := range []string{webTok, apiTok} {
			_, _, err := a.sessions.Authenticate(context.Background(), tok, clientIP)
			wantCode(t, err, fieldops.EUNAUTHORIZED)
		}
		_, err = a.members.FindMemberByID(webCtx, eng)
		wantAuthErr(t, err, fieldops.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
		if n := count(t, a.env, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL`, eng); n != 0 {
			t.Errorf("live API tokens = %d", n)
		}
		// The owner who reset it is still signed in.
		if _, _, err := a.sessions.Authenticate(context.Background(), ownerTok, clientIP); err != nil {
			t.Errorf("owner's session: %v", err)
		}
		// The half-way sign-in cannot finish, with the old code or a
		// recovery code.
		_, err = a.auth.VerifySecondFactor(context.Background(), challenge, mustTOTPCode(t, secret, a.clock.Now()), signInAs(email, authPassword))
		wantAuthErr(t, err, fieldops.EUNAUTHORIZED, authMsgChallengeGone)

		// One entry, by the owner, about the engineer.
		if got := auditCount(t, a.env, o.id); got != audits+1 {
			t.Errorf("audit entries %d → %d", audits, got)
		}
		action, actor, channel := lastAudit(t, a.env, o.id)
		if action != "auth.two_factor_reset" || actor != o.user[fieldops.RoleOwner] || channel != "web" {
			t.Errorf("last audit = %s by %d via %s", action, actor, channel)
		}
		var target, changes string
		if err := a.pool.QueryRow(context.Background(), `SELECT target_type || ':' || target_id, changes::text FROM audit_events
			WHERE org_id = $1 ORDER BY seq DESC LIMIT 1`, o.id).Scan(&target, &changes); err != nil {
			t.Fatal(err)
		}
		if target != fmt.Sprintf("member:%d", eng) {
			t.Errorf("audit target = %s", target)
		}
		for _, want := range []string{`"affects_all_organisations": true`, `"recovery_codes_deleted": 10`, `"api_tokens_revoked": 1`, `"two_factor": {"to": "none", "from": "totp"}`} {
			if !strings.Contains(changes, want) {
				t.Errorf("audit changes %s lack %s", changes, want)
			}
		}

		// The password alone now signs in, straight to enrolment.
		res, err := a.auth.SignIn(context.Background(), signInAs(email, authPassword))
		if err != nil {
			t.Fatal(err)
		}
		if res.Challenge != "" || res.Session == nil || !res.MustEnrol {
			t.Fatalf("SignIn after reset = %+v, want a session that must enrol", res)
		}
		_, actorNew, err := a.sessions.Authenticate(context.Background(), res.Token, clientIP)
		if err != nil {
			t.Fatal(err)
		}
		newCtx := fieldops.NewContext(context.Background(), actorNew)
		if must, err := a.auth.RequiresEnrolment(newCtx); err != nil || !must {
			t.Fatalf("RequiresEnrolment = %v, %v", must, err)
		}
		// With a new secret: the one on the lost phone does not come back.
		en, err := a.auth.BeginEnrolment(newCtx)
		if err != nil {
			t.Fatal(err)
		}
		if en.Secret == secret {
			t.Fatal("enrolment after reset offered the old secret")
		}
	})

	t.Run("OKSelf", func(t *testing.T) {
		t.Parallel()
		a := newAuthEnv(t)
		admin := a.org.user[fieldops.RoleAdmin]
		a.mustEnrol(t, a.org.ctx[fieldops.RoleAdmin])
		_, ctx := a.mustWebSession(t, admin)
		if err := a.auth.ResetTwoFactor(ctx, admin); err != nil {
			t.Fatal(err)
		}
		a.wantTOTP(t, admin, false, 0)
		_, err := a.members.FindMemberByID(ctx, admin)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})

	// Each refusal changes nothing.
	refused := []struct {
		name  string
		code  string
		msg   string // a part of the message, if it matters
		setup func(t *testing.T, a *authEnv) (actor context.Context, target int64)
	}{
		{"ErrForbidden/Manager", fieldops.EFORBIDDEN, "", func(t *testing.T, a *authEnv) (context.Context, int64) {
			a.mustEnrol(t, a.org.ctx[fieldops.RoleEngineer])
			return a.org.ctx[fieldops.RoleManager], a.org.user[fieldops.RoleEngineer]
		}},
		{"ErrForbidden/AdminResetsOwner", fieldops.EFORBIDDEN, "Only an Owner", func(t *testing.T, a *authEnv) (context.Context, int64) {
			a.mustEnrol(t, a.org.ctx[fieldops.RoleOwner])
			return a.org.ctx[fieldops.RoleAdmin], a.org.user[fieldops.RoleOwner]
		}},
		{"ErrForbidden/MemberOfAnotherOrganisation", fieldops.EFORBIDDEN, "also belongs to another organisation", func(t *testing.T, a *authEnv) (context.Context, int64) {
			// The engineer is also in another organisation, whose own
			// sign-in their second factor protects.
			eng := a.org.user[fieldops.RoleEngineer]
			a.mustEnrol(t, a.org.ctx[fieldops.RoleEngineer])
			other := mustOrg(t, a.env)
			if _, err := a.orgs.ChangePlan(other.ctx[fieldops.RoleOwner], "team", 3); err != nil {
				t.Fatal(err)
			}
			var email string
			if err := a.pool.QueryRow(context.Background(), `SELECT email FROM users WHERE id = $1`, eng).Scan(&email); err != nil {
				t.Fatal(err)
			}
			if _, err := a.members.AddMember(other.ctx[fieldops.RoleOwner], fieldops.NewMember{Email: email, Name: "Engineer", Role: fieldops.RoleAdmin}); err != nil {
				t.Fatal(err)
			}
			return a.org.ctx[fieldops.RoleOwner], eng
		}},
		{"ErrNotFound", fieldops.ENOTFOUND, "", func(t *testing.T, a *authEnv) (context.Context, int64) {
			other := mustOrg(t, a.env)
			a.mustEnrol(t, other.ctx[fieldops.RoleEngineer])
			return a.org.ctx[fieldops.RoleOwner], other.user[fieldops.RoleEngineer]
		}},
		{"ErrConflict", fieldops.ECONFLICT, "", func(t *testing.T, a *authEnv) (context.Context, int64) {
			return a.org.ctx[fieldops.RoleOwner], a.org.user[fieldops.RoleEngineer] // two-factor is off
		}},
		{"ErrInvalid", fieldops.EINVALID, "", func(t *testing.T, a *authEnv) (context.Context, int64) {
			return a.org.ctx[fieldops.RoleOwner], 0
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthEnv(t)
			actor, target := tt.setup(t, a)
			var users string
			if err := a.pool.QueryRow(context.Background(), `SELECT md5(string_agg(u::text, '|' ORDER BY u.id)) FROM users u`).Scan(&users); err != nil {
				t.Fatal(err)
			}
			codes := count(t, a.env, `SELECT count(*) FROM recovery_codes`)
			floors := count(t, a.env, `SELECT count(*) FROM user_sessions_floor`)
			before := snapshot(t, a.env, a.org.id)

			err := a.auth.ResetTwoFactor(actor, target)
			wantCode(t, err, tt.code)
			if !strings.Contains(fieldops.ErrorMessage(err), tt.msg) {
				t.Errorf("message = %q, want it to say %q", fieldops.ErrorMessage(err), tt.msg)
			}

			var after string
			a.pool.QueryRow(context.Background(), `SELECT md5(string_agg(u::text, '|' ORDER BY u.id)) FROM users u`).Scan(&after)
			if after != users || count(t, a.env, `SELECT count(*) FROM recovery_codes`) != codes ||
				count(t, a.env, `SELECT count(*) FROM user_sessions_floor`) != floors || snapshot(t, a.env, a.org.id) != before {
				t.Error("a refused reset changed something")
			}
		})
	}
}

// TestAuthService_ResetTwoFactorRedisStopped: Redis dies mid-test. Every
// token is refused as unavailable, never signed in; a reset still
// commits, says Redis could not be told, and its sessions are refused by
// every service call.
func TestAuthService_ResetTwoFactorRedisStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url, stop := storetest.StartRedis(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	// Fail fast once it is down: retries only make the test slower.
	opt.MaxRetries, opt.DialerRetries, opt.DialerRetryTimeout = -1, 1, time.Millisecond
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	a := &authEnv{env: e, rdb: rdb, sessions: store.NewSessionService(e.db, rdb), clock: &totpClock{t: authT0}}
	a.auth = a.mustAuthService(t, authTOTPKey)
	a.org = mustOrg(t, e)
	eng, mgr := a.org.user[fieldops.RoleEngineer], a.org.user[fieldops.RoleManager]
	a.mustEnrol(t, a.org.ctx[fieldops.RoleEngineer])
	engTok, engCtx := a.mustWebSession(t, eng)
	mgrTok, mgrCtx := a.mustWebSession(t, mgr)
	_, ownerCtx := a.mustWebSession(t, a.org.user[fieldops.RoleOwner])

	stop()

	for _, tok := range []string{engTok, mgrTok} {
		sess, actor, err := a.sessions.Authenticate(context.Background(), tok, clientIP)
		wantCode(t, err, fieldops.EUNAVAILABLE)
		if sess != nil || actor != (fieldops.Actor{}) {
			t.Fatalf("Authenticate with Redis stopped returned %+v, %+v", sess, actor)
		}
	}

	err = a.auth.ResetTwoFactor(ownerCtx, eng)
	wantCode(t, err, fieldops.EUNAVAILABLE)
	if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "recorded and already in force") {
		t.Errorf("message = %q", msg)
	}
	a.wantTOTP(t, eng, false, 0)
	_, err = a.members.FindMemberByID(engCtx, eng)
	wantCode(t, err, fieldops.EUNAUTHORIZED)
	// The manager's actor, from before Redis stopped, is not affected by
	// the engineer's reset.
	if _, err := a.members.FindMemberByID(mgrCtx, mgr); err != nil {
		t.Errorf("manager: %v", err)
	}
}
