package admin_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	smtpmock "github.com/mocktools/go-smtp-mock/v2"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/store"
)

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/invite/foi_[A-Za-z0-9_-]{43}`)

// chromium finds Debian's Chromium; the test is skipped where it is not
// installed (.ci/run installs it, so CI always runs it).
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("FIELDOPS_TEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: apt-get install chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// browserCtx starts a fresh headless Chromium with its own profile. A
// start that fails is tried again: under a loaded CI machine Chromium has
// been seen to crash while starting, before any page was loaded.
func browserCtx(t *testing.T, exe string) context.Context {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-crash-reporter", true),
			chromedp.UserDataDir(t.TempDir()))
		actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel2 := chromedp.NewContext(actx)
		// The first run starts the browser and binds it to ctx, so it
		// takes no timeout of its own.
		lastErr = chromedp.Do(ctx)
		if lastErr == nil {
			t.Cleanup(cancel)
			t.Cleanup(cancel2)
			return ctx
		}
		cancel2()
		cancel()
		t.Logf("chromium start, attempt %d: %v", attempt, lastErr)
	}
	t.Fatalf("start chromium: %v", lastErr)
	return nil
}

// TestBrowserInviteToRevoke is the whole team-access path in a real
// browser: invite, the e-mail arrives over SMTP, accept, enrol two-factor,
// sign out, sign in with a fresh code, then a second browser ends the
// first browser's session and its next click lands on the sign-in page.
func TestBrowserInviteToRevoke(t *testing.T) {
	exe := chromium(t)
	a := newApp(t)
	clk := newClock(time.Now())
	a.auth.Now = clk.now
	o := a.mustOrg(t)

	smtp := smtpmock.New(smtpmock.ConfigurationAttr{HostAddress: "127.0.0.1", SessionTimeout: 10, MultipleMessageReceiving: true})
	if err := smtp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtp.Stop() })
	mailer, err := store.NewSMTPMailer(store.SMTPSettings{Host: "127.0.0.1", Port: smtp.PortNumber(), From: "fieldops <noreply@fieldops.test>", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// A plain-http panel (cookies without Secure, as for local runs) whose
	// links point at itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s, err := admin.NewServer(nil, admin.Services{
		Sessions: a.sessions, Auth: a.auth, Orgs: a.orgs, Members: a.members, Jobs: store.NewJobService(a.db),
		Audit: store.NewAuditService(a.db), Invitations: a.invites, Tokens: store.NewAPITokenService(a.db, a.sessions), Mailer: mailer,
	}, admin.Options{SecureCookies: false, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.Handler()}}
	srv.Start()
	t.Cleanup(srv.Close)

	_, ownerToken, err := a.sessions.CreateSession(context.Background(), fieldops.NewSession{OrgID: o.id, UserID: o.user[fieldops.RoleOwner],
		Channel: fieldops.ChannelWeb, UserAgent: "test", TwoFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	owner := browserCtx(t, exe)
	httpOnly := true
	if _, err := chromedp.Call(owner, network.SetCookie, network.SetCookieParams{Name: "fieldops", Value: ownerToken, URL: base, Path: "/", HTTPOnly: &httpOnly}); err != nil {
		t.Fatal(err)
	}

	// 1. The owner invites a new Admin from the team page.
	const email = "newadmin@example.co.uk"
	do(t, owner, chromedp.Navigate(base+"/team"),
		chromedp.SetValue(chromedp.CSS(`input[name=email]`), email),
		chromedp.SetValue(chromedp.CSS(`select[name=role]`), "admin"),
		chromedp.Submit(chromedp.CSS(`input[name=email]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))

	// 2. The e-mail arrives at the SMTP listener.
	msgs, err := smtp.WaitForMessagesAndPurge(1, 10*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("invitation e-mail: %v (%d messages)", err, len(msgs))
	}
	raw := strings.NewReplacer("=\r\n", "", "=\n", "").Replace(msgs[0].MsgRequest())
	link := linkRE.FindString(raw)
	if link == "" || !strings.HasPrefix(link, base) {
		t.Fatalf("no invitation link to %s in the e-mail:\n%s", base, raw)
	}

	// 3. The invitee accepts in their own browser and, as an Admin, is
	// sent to two-factor enrolment.
	invitee := browserCtx(t, exe)
	do(t, invitee, chromedp.Navigate(link),
		chromedp.SetValue(chromedp.CSS(`input[name=name]`), "Nadia Newadmin"),
		chromedp.SetValue(chromedp.CSS(`input[name=password]`), "plant room fuse board"),
		chromedp.Submit(chromedp.CSS(`input[name=name]`)),
		chromedp.WaitVisible(chromedp.CSS(`code.secret`)))
	secret := get(t, invitee, chromedp.Text(chromedp.CSS(`code.secret`)))
	if where := get(t, invitee, chromedp.Location()); !strings.HasSuffix(where, "/account/2fa") || secret == "" {
		t.Fatalf("after accepting: at %s, secret %q", where, secret)
	}
	do(t, invitee,
		chromedp.SetValue(chromedp.CSS(`input[name=code]`), code(t, secret, clk.now())),
		chromedp.Submit(chromedp.CSS(`input[name=code]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul.codes`)))
	if recovery := get(t, invitee, chromedp.Text(chromedp.CSS(`ul.codes`))); strings.Count(recovery, "-") < 20 {
		t.Fatalf("recovery codes: %q", recovery)
	}

	// 4. Sign out, and sign in again with a code of a later step.
	clk.add(30 * time.Second)
	do(t, invitee,
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)),
		chromedp.SetValue(chromedp.CSS(`input[name=email]`), email),
		chromedp.SetValue(chromedp.CSS(`input[name=password]`), "plant room fuse board"),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=code]`)))
	do(t, invitee,
		chromedp.SetValue(chromedp.CSS(`input[name=code]`), code(t, secret, clk.now())),
		chromedp.Submit(chromedp.CSS(`input[name=code]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signout`)))
	if where := get(t, invitee, chromedp.Location()); strings.TrimSuffix(where, "/") != base {
		t.Fatalf("after signing in: at %s, want the dashboard", where)
	}

	// 5. The owner, in the other browser, ends all of the new Admin's
	// sessions from their team page.
	m, err := a.db.FindUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	do(t, owner, chromedp.Navigate(base+"/team/"+strconv.FormatInt(m.ID, 10)),
		chromedp.Click(chromedp.CSS(`form[action$="/sessions/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))

	// 6. The first browser's next click lands on the sign-in page.
	do(t, invitee,
		chromedp.Click(chromedp.CSS(`nav a[href="/team"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	if where := get(t, invitee, chromedp.Location()); !strings.HasSuffix(where, "/signin") {
		t.Fatalf("after the session was ended: at %s, want /signin", where)
	}
}

// do runs browser steps with a time limit (generous: a loaded CI machine
// running the race detector is slow, and a step that truly fails fails
// anyway), and on failure shows where the browser was.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Steps(steps...)); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("browser: %v\nat %s\n%s", err, loc, excerpt(body))
	}
}

func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}
