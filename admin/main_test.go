package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// The panel is tested against the real services on real PostgreSQL and
// Redis; admin itself never imports store, only its tests wire it.

func TestMain(m *testing.M) { storetest.Main(m) }

// app is one test's panel with its services.
type app struct {
	pool     *pgxpool.Pool
	db       *store.DB
	sessions *store.SessionService
	auth     *store.AuthService
	orgs     *store.OrganisationService
	members  *store.MemberService
	invites  *store.InvitationService
	telegram *store.TelegramService
	// tg, when set before withServer, is the local Bot API server the
	// panel's sandbox chats through.
	tg   *telegramtest.Server
	srv  *httptest.Server
	mail *mailbox
}

const testBotUsername = "fieldops_test_bot"

var totpKey = []byte("0123456789abcdef0123456789abcdef")

func newApp(t testing.TB) *app {
	t.Helper()
	pool := storetest.MustOpenDB(t)
	rdb := storetest.MustOpenRedis(t)
	db := store.NewDB(pool, nil)
	a := &app{pool: pool, db: db, sessions: store.NewSessionService(db, rdb), orgs: store.NewOrganisationService(db),
		members: store.NewMemberService(db), mail: &mailbox{}}
	var err error
	if a.auth, err = store.NewAuthService(db, rdb, a.sessions, totpKey); err != nil {
		t.Fatal(err)
	}
	a.members.Sessions = a.sessions
	a.invites = store.NewInvitationService(db, a.sessions)
	a.telegram = store.NewTelegramService(db, a.sessions, testBotUsername)
	return a.withServer(t, a.sessions, a.auth)
}

// withServer starts a panel on a's database with the given session and
// sign-in services (another instance, say).
func (a *app) withServer(t testing.TB, sessions *store.SessionService, auth *store.AuthService) *app {
	t.Helper()
	b := *a
	b.sessions, b.auth = sessions, auth
	opt := admin.Options{SecureCookies: true, BaseURL: "https://fieldops.example"}
	if a.tg != nil {
		opt.Sandbox = a.tg.Sandbox()
	}
	s, err := admin.NewServer(nil, admin.Services{
		Sessions: sessions, Auth: auth, Orgs: a.orgs, Members: a.members, Jobs: store.NewJobService(a.db),
		Customers: store.NewCustomerService(a.db), Sites: store.NewSiteService(a.db), Capacity: store.NewCapacityService(a.db),
		Audit: store.NewAuditService(a.db), Invitations: store.NewInvitationService(a.db, sessions),
		Tokens: store.NewAPITokenService(a.db, sessions), Mailer: a.mail,
		Certificates: store.NewCertificateService(a.db), Defects: store.NewDefectService(a.db),
		Evidence: store.NewJobEvidenceService(a.db),
		Telegram: store.NewTelegramService(a.db, sessions, testBotUsername),
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewTLSServer(s.Handler())
	t.Cleanup(b.srv.Close)
	return &b
}

// mailbox is a Mailer that keeps what it was asked to send; the SMTP path
// itself is tested in store against a real SMTP listener.
type mailbox struct {
	n    atomic.Int64
	last atomic.Pointer[fieldops.Mail]
}

func (m *mailbox) Send(_ context.Context, mail fieldops.Mail) error {
	m.n.Add(1)
	m.last.Store(&mail)
	return nil
}

var seq atomic.Int64

// org is an organisation on the Team plan with room to invite, one member
// of each role, all with two-factor sign-in on, and a signed-in browser
// for each.
type org struct {
	id     int64
	user   map[fieldops.Role]int64
	ctx    map[fieldops.Role]context.Context
	client map[fieldops.Role]*http.Client
}

func (a *app) mustOrg(t testing.TB) *org {
	t.Helper()
	n := seq.Add(1)
	bg := context.Background()
	owner, err := a.db.CreateUser(bg, fmt.Sprintf("owner%d@example.co.uk", n), fmt.Sprintf("Owner %d", n), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.orgs.CreateOrganisation(fieldops.NewContext(bg, fieldops.Actor{UserID: owner.ID}), fieldops.NewOrganisation{Name: fmt.Sprintf("Volts %d Ltd", n), Plan: "team"})
	if err != nil {
		t.Fatal(err)
	}
	res := &org{id: o.ID, user: map[fieldops.Role]int64{}, ctx: map[fieldops.Role]context.Context{}, client: map[fieldops.Role]*http.Client{}}
	res.user[fieldops.RoleOwner] = owner.ID
	res.ctx[fieldops.RoleOwner] = fieldops.NewContext(bg, fieldops.Actor{UserID: owner.ID, OrgID: o.ID, Channel: fieldops.ChannelWeb})
	if _, err := a.orgs.ChangePlan(res.ctx[fieldops.RoleOwner], "team", 6); err != nil {
		t.Fatal(err)
	}
	for _, r := range fieldops.AllRoles()[1:] {
		m, err := a.members.AddMember(res.ctx[fieldops.RoleOwner], fieldops.NewMember{Email: fmt.Sprintf("%s%d@example.co.uk", r, n), Name: fmt.Sprintf("%s %d", r.Label(), n), Role: r})
		if err != nil {
			t.Fatal(err)
		}
		res.user[r] = m.UserID
		res.ctx[r] = fieldops.NewContext(bg, fieldops.Actor{UserID: m.UserID, OrgID: o.ID, Channel: fieldops.ChannelWeb})
	}
	// Everyone has two-factor on, so no one is sent to enrolment.
	if _, err := a.pool.Exec(bg, `UPDATE users SET totp_enabled_at = now() WHERE id IN (SELECT user_id FROM memberships WHERE org_id = $1)`, o.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range fieldops.AllRoles() {
		res.client[r] = a.browser(t, o.ID, res.user[r])
	}
	return res
}

// browser returns a client signed in as the member, with a cookie jar.
func (a *app) browser(t testing.TB, orgID, userID int64) *http.Client {
	t.Helper()
	_, token, err := a.sessions.CreateSession(context.Background(), fieldops.NewSession{OrgID: orgID, UserID: userID,
		Channel: fieldops.ChannelWeb, UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", IP: netip.MustParseAddr("192.0.2.1"), TwoFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	c := a.newClient(t)
	u, _ := url.Parse(a.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-fieldops", Value: token, Path: "/", Secure: true}})
	return c
}

// newClient is a browser that does not follow redirects, so tests see
// where they point.
func (a *app) newClient(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := a.srv.Client()
	return &http.Client{Transport: c.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request like a browser form on the same site would.
func (a *app) do(t testing.TB, c *http.Client, method, path string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}
