package admin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

var (
	secretRE    = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
	challengeRE = regexp.MustCompile(`name="challenge" value="([^"]+)"`)
	recoveryRE  = regexp.MustCompile(`<li><code>([a-z0-9-]+)</code></li>`)
)

// clock is a settable time for the TOTP steps.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.t.Store(t.UnixNano()); return c }
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEnrolAndSignIn walks an Owner without two-factor through the
// forced enrolment, signing out, and signing in with password and code.
func TestEnrolAndSignIn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	clk := newClock(time.Now())
	a.auth.Now = clk.now
	o := a.mustOrg(t)
	owner := o.user[fieldops.RoleOwner]
	if _, err := a.pool.Exec(context.Background(), `UPDATE users SET totp_enabled_at = NULL WHERE id = $1`, owner); err != nil {
		t.Fatal(err)
	}
	c := o.client[fieldops.RoleOwner]

	// An existing session without two-factor goes to enrolment first.
	code0, _, resp := a.do(t, c, "GET", "/team", nil)
	if code0 != 303 || resp.Header.Get("Location") != "/account/2fa" {
		t.Fatalf("GET /team without 2FA = %d %s, want 303 to /account/2fa", code0, resp.Header.Get("Location"))
	}
	status, body, _ := a.do(t, c, "GET", "/account/2fa", nil)
	m := secretRE.FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.Contains(body, "data:image/png;base64,") {
		t.Fatalf("enrolment page = %d, secret %v, QR %v", status, m, strings.Contains(body, "data:image/png"))
	}
	secret := m[1]
	status, body, _ = a.do(t, c, "POST", "/account/2fa", url.Values{"code": {"000000"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "didn") {
		t.Fatalf("wrong enrolment code = %d", status)
	}
	status, body, _ = a.do(t, c, "POST", "/account/2fa", url.Values{"code": {code(t, secret, clk.now())}})
	codes := recoveryRE.FindAllStringSubmatch(body, -1)
	if status != 200 || len(codes) != 10 {
		t.Fatalf("confirm enrolment = %d with %d recovery codes", status, len(codes))
	}
	if status, _, _ := a.do(t, c, "GET", "/team", nil); status != 200 {
		t.Fatalf("GET /team after enrolment = %d", status)
	}

	// Sign out: the session ends.
	if status, _, resp := a.do(t, c, "POST", "/signout", url.Values{}); status != 303 || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("sign out = %d %s", status, resp.Header.Get("Location"))
	}
	if status, _, _ := a.do(t, c, "GET", "/", nil); status != 303 {
		t.Fatalf("GET / after sign-out = %d, want 303", status)
	}

	// Sign in: password, then a code of the next step (the enrolment
	// code's step is used up).
	fresh := a.newClient(t)
	email := mustEmail(t, a, o)
	status, body, _ = a.do(t, fresh, "POST", "/signin", url.Values{"email": {email}, "password": {"wrong password!!"}})
	if status != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(body), "don't match") {
		t.Fatalf("wrong password = %d", status)
	}
	status, body, _ = a.do(t, fresh, "POST", "/signin", url.Values{"email": {email}, "password": {"correct horse battery"}})
	ch := challengeRE.FindStringSubmatch(body)
	if status != 200 || ch == nil {
		t.Fatalf("password step = %d, challenge %v", status, ch)
	}
	status, _, _ = a.do(t, fresh, "POST", "/signin/code", url.Values{"challenge": {ch[1]}, "email": {email}, "code": {code(t, secret, clk.now())}})
	if status != http.StatusUnauthorized {
		t.Fatalf("replayed enrolment code = %d, want 401", status)
	}
	clk.add(30 * time.Second)
	status, _, resp = a.do(t, fresh, "POST", "/signin/code", url.Values{"challenge": {ch[1]}, "email": {email}, "code": {code(t, secret, clk.now())}})
	if status != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("code step = %d %s", status, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-fieldops" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("session cookie = %+v, want __Host-, Secure, HttpOnly, SameSite=Lax, Path=/", cookie)
	}
	if status, _, _ := a.do(t, fresh, "GET", "/team", nil); status != 200 {
		t.Fatalf("GET /team signed in = %d", status)
	}

	// A recovery code works once.
	other := a.newClient(t)
	_, body, _ = a.do(t, other, "POST", "/signin", url.Values{"email": {email}, "password": {"correct horse battery"}})
	ch = challengeRE.FindStringSubmatch(body)
	if status, _, _ := a.do(t, other, "POST", "/signin/code", url.Values{"challenge": {ch[1]}, "email": {email}, "code": {codes[0][1]}}); status != 303 {
		t.Fatalf("recovery code = %d", status)
	}
	third := a.newClient(t)
	_, body, _ = a.do(t, third, "POST", "/signin", url.Values{"email": {email}, "password": {"correct horse battery"}})
	ch = challengeRE.FindStringSubmatch(body)
	if status, _, _ := a.do(t, third, "POST", "/signin/code", url.Values{"challenge": {ch[1]}, "email": {email}, "code": {codes[0][1]}}); status == 303 {
		t.Fatal("a used recovery code signed in again")
	}
}

func mustEmail(t *testing.T, a *app, o *org) string {
	t.Helper()
	m, err := a.members.FindMemberByID(o.ctx[fieldops.RoleOwner], o.user[fieldops.RoleOwner])
	if err != nil {
		t.Fatal(err)
	}
	return m.Email
}

// TestRevokedSessionSignsOut: a session ended from another browser fails
// on its very next request.
func TestRevokedSessionSignsOut(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	eng := o.client[fieldops.RoleEngineer]
	if status, _, _ := a.do(t, eng, "GET", "/", nil); status != 200 {
		t.Fatalf("engineer dashboard = %d", status)
	}
	sessions, err := a.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: o.user[fieldops.RoleEngineer]})
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions = %v, %v", sessions, err)
	}
	if status, _, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", "/sessions/"+sessions[0].ID+"/revoke", url.Values{}); status != 303 {
		t.Fatalf("admin revoke = %d", status)
	}
	status, _, resp := a.do(t, eng, "GET", "/", nil)
	if status != 303 || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("revoked session GET / = %d %s, want 303 to /signin", status, resp.Header.Get("Location"))
	}
	// An Admin cannot end an Owner's sessions.
	owners, _ := a.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{UserID: o.user[fieldops.RoleOwner]})
	if status, _, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", "/sessions/"+owners[0].ID+"/revoke", url.Values{}); status != 403 {
		t.Fatalf("admin revoking the owner's session = %d, want 403", status)
	}
}

// TestRedisDownFailsClosed: with the session store unreachable a request
// gets a clear 503 page, never a signed-in page.
func TestRedisDownFailsClosed(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { down.Close() })
	// A second instance of the panel whose Redis is unreachable, sharing
	// the database; the owner's browser cookie is sent to it.
	downSessions := store.NewSessionService(a.db, down)
	auth, err := store.NewAuthService(a.db, down, downSessions, totpKey)
	if err != nil {
		t.Fatal(err)
	}
	b := a.withServer(t, downSessions, auth)
	u, _ := url.Parse(a.srv.URL)
	c := b.newClient(t)
	bu, _ := url.Parse(b.srv.URL)
	c.Jar.SetCookies(bu, o.client[fieldops.RoleOwner].Jar.Cookies(u))
	status, body, _ := b.do(t, c, "GET", "/team", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "try again") || strings.Contains(body, "Sign out") {
		t.Fatalf("with Redis down GET /team = %d\n%s", status, excerpt(body))
	}
}

// TestSignedOutAndCrossSite: no session goes to sign-in; a cross-site
// form post is refused before any handler.
func TestSignedOutAndCrossSite(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	for _, p := range []string{"/", "/team", "/audit", "/sessions", "/billing"} {
		status, _, resp := a.do(t, a.newClient(t), "GET", p, nil)
		if status != 303 || resp.Header.Get("Location") != "/signin" {
			t.Errorf("signed-out GET %s = %d %s", p, status, resp.Header.Get("Location"))
		}
	}
	req, _ := http.NewRequest("POST", a.srv.URL+"/team/invitations", strings.NewReader("email=evil%40example.com&role=admin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := o.client[fieldops.RoleOwner].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST = %d, want 403", resp.StatusCode)
	}
	invs, _ := a.invites.FindInvitations(o.ctx[fieldops.RoleOwner])
	if len(invs) != 0 {
		t.Fatalf("cross-site POST created %d invitations", len(invs))
	}
}
