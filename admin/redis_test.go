package admin_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// newAppOn is newApp on a Redis the test chose (and may stop).
func newAppOn(t *testing.T, rdb *redis.Client) *app {
	t.Helper()
	pool := storetest.MustOpenDB(t)
	db := store.NewDB(pool, nil)
	a := &app{pool: pool, db: db, sessions: store.NewSessionService(db, rdb), orgs: store.NewOrganisationService(db),
		members: store.NewMemberService(db), mail: &mailbox{}}
	var err error
	if a.auth, err = store.NewAuthService(db, rdb, a.sessions, totpKey); err != nil {
		t.Fatal(err)
	}
	a.members.Sessions = a.sessions
	a.invites = store.NewInvitationService(db, a.sessions)
	return a.withServer(t, a.sessions, a.auth)
}

// movingRedis is a client whose server can be swapped: it dials whatever
// address it holds, as a client does when its Redis comes back. It gives
// up at the first failed dial, where the production client retries for a
// few seconds: the answer is the same, only slower.
func movingRedis(t *testing.T, rawURL string) (*redis.Client, func(rawURL string)) {
	t.Helper()
	var addr atomic.Pointer[string]
	moveTo := func(rawURL string) {
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		addr.Store(&opt.Addr)
	}
	moveTo(rawURL)
	opt, _ := redis.ParseURL(rawURL)
	opt.MaxRetries, opt.DialerRetries, opt.DialerRetryTimeout = -1, 1, time.Millisecond
	opt.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, *addr.Load())
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb, moveTo
}

// TestRedisStoppedMidSession: Redis dies while members are signed in.
// Nothing is served signed in, nobody signs in, and nothing changes;
// when an empty Redis comes back, the revoked member stays revoked and
// everyone else signs in again.
func TestRedisStoppedMidSession(t *testing.T) {
	t.Parallel()
	redisURL, stop := storetest.StartRedis(t)
	rdb, moveTo := movingRedis(t, redisURL)
	a := newAppOn(t, rdb)
	o := a.mustOrg(t)
	bg := context.Background()
	revoked, live := o.client[fieldops.RoleEngineer], o.client[fieldops.RoleManager]
	tokens := store.NewAPITokenService(a.db, a.sessions)
	_, revokedAPI, err := tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Sync")
	if err != nil {
		t.Fatal(err)
	}
	_, liveAPI, err := tokens.CreateAPIToken(o.ctx[fieldops.RoleManager], "Sync")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*http.Client{revoked, live} {
		if status, body, _ := a.do(t, c, "GET", "/", nil); status != 200 || !strings.Contains(body, "Sign out") {
			t.Fatalf("signed-in dashboard = %d", status)
		}
	}
	// The owner ends all the engineer's sessions, API token included. The
	// engineer's browser keeps its cookie: it has not been back since.
	if status, _, _ := a.do(t, o.client[fieldops.RoleOwner], "POST", fmt.Sprintf("/team/%d/sessions/revoke", o.user[fieldops.RoleEngineer]), url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("revoke all = %d", status)
	}

	stop()

	// notSignedIn checks a page served with Redis down: 503 saying to try
	// again (or, for the revoked browser, the sign-in page), and never a
	// signed-in page.
	notSignedIn := func(t *testing.T, who string, c *http.Client, method, path string, form url.Values, signinOK bool) {
		t.Helper()
		status, body, resp := a.do(t, c, method, path, form)
		switch {
		case strings.Contains(body, "Sign out") || strings.Contains(body, `action="/signout"`):
			t.Errorf("%s %s %s with Redis down served a signed-in page (%d)", who, method, path, status)
		case status == http.StatusServiceUnavailable:
			if !strings.Contains(body, "try again") {
				t.Errorf("%s %s %s: 503 page does not say to try again\n%s", who, method, path, excerpt(body))
			}
		case signinOK && status == http.StatusSeeOther && resp.Header.Get("Location") == "/signin":
		default:
			t.Errorf("%s %s %s with Redis down = %d %s, want 503", who, method, path, status, resp.Header.Get("Location"))
		}
	}

	t.Run("Down", func(t *testing.T) {
		countTokens := func() int {
			var n int
			if err := a.pool.QueryRow(bg, `SELECT count(*) FROM api_tokens`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := countTokens()
		for _, p := range []string{"/", "/team", "/sessions"} {
			notSignedIn(t, "revoked", revoked, "GET", p, nil, true)
			notSignedIn(t, "live", live, "GET", p, nil, false)
		}
		notSignedIn(t, "live", live, "POST", "/account/tokens", url.Values{"name": {"During the outage"}}, false)
		if after := countTokens(); after != before {
			t.Errorf("api_tokens %d → %d with Redis down", before, after)
		}

		// Signing in with the right password is refused, and no session
		// cookie is set.
		fresh := a.newClient(t)
		status, body, resp := a.do(t, fresh, "POST", "/signin", url.Values{"email": {mustEmail(t, a, o)}, "password": {"correct horse battery"}})
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "try again") || challengeRE.MatchString(body) {
			t.Errorf("sign-in with Redis down = %d\n%s", status, excerpt(body))
		}
		for _, ck := range resp.Cookies() {
			if strings.Contains(ck.Name, "fieldops") && ck.Name != "fieldops_flash" && ck.Value != "" {
				t.Errorf("sign-in with Redis down set cookie %s", ck.Name)
			}
		}

		// API tokens: 503, not signed in.
		for _, tok := range []string{revokedAPI, liveAPI} {
			if status := apiGet(t, a, tok); status != http.StatusServiceUnavailable {
				t.Errorf("GET /api/v1/me with Redis down = %d, want 503", status)
			}
		}
	})

	// Redis comes back empty (a new server; the client reconnects).
	redisURL2, _ := storetest.StartRedis(t)
	moveTo(redisURL2)
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(bg).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect to the new Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("BackEmpty", func(t *testing.T) {
		for who, c := range map[string]*http.Client{"revoked": revoked, "live": live} {
			status, _, resp := a.do(t, c, "GET", "/", nil)
			if status != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
				t.Errorf("%s browser after Redis came back = %d %s, want 303 to /signin", who, status, resp.Header.Get("Location"))
			}
		}
		// Postgres keeps API tokens and their revocation: the revoked one
		// stays refused, the live one is put back.
		if status := apiGet(t, a, revokedAPI); status != http.StatusUnauthorized {
			t.Errorf("revoked API token after Redis came back = %d, want 401", status)
		}
		if status := apiGet(t, a, liveAPI); status != http.StatusOK {
			t.Errorf("live API token after Redis came back = %d, want 200", status)
		}
		// Signing in works again.
		status, body, _ := a.do(t, a.newClient(t), "POST", "/signin", url.Values{"email": {mustEmail(t, a, o)}, "password": {"correct horse battery"}})
		if status != http.StatusOK || !challengeRE.MatchString(body) {
			t.Errorf("sign-in after Redis came back = %d\n%s", status, excerpt(body))
		}
	})
}

// apiGet calls GET /api/v1/me with a Bearer token and returns the status.
func apiGet(t *testing.T, a *app, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", a.srv.URL+"/api/v1/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
