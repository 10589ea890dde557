package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// run runs the program with the given environment and arguments.
func run(t *testing.T, ctx context.Context, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Environ: environ}
	code = m.Run(ctx, args)
	return code, out.String(), errb.String()
}

func testEnviron(t *testing.T) []string {
	t.Helper()
	return []string{
		"FIELDOPS_DATABASE_URL=" + storetest.MustDatabaseURL(t),
		"FIELDOPS_REDIS_URL=" + storetest.MustRedisURL(t),
		"FIELDOPS_HTTP_ADDR=127.0.0.1:0",
		"FIELDOPS_LOG_LEVEL=warn",
		"FIELDOPS_SECURITY_TOTP_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serve starts `fieldops serve` and returns its base URL and a function
// that stops it and returns the exit code.
func serve(t *testing.T, environ []string) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	var out bytes.Buffer
	var mu sync.Mutex
	m := &Main{Stdout: &out, Stderr: &lockedWriter{w: &out, mu: &mu}, Environ: environ, Listening: func(a string) { addrc <- a }}
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"serve"}) }()
	select {
	case a := <-addrc:
		return "http://" + a, func() int { cancel(); return <-done }
	case code := <-done:
		cancel()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serve exited %d: %s", code, out.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func readyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Checks
}

func TestServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		breakKey   string // an environment variable pointed at a closed port
		wantStatus int
		wantDown   string
	}{
		{"OK", "", 200, ""},
		{"ErrRedisDown", "FIELDOPS_REDIS_URL=redis://%s/0", 503, "redis"},
		{"ErrPostgresDown", "FIELDOPS_DATABASE_URL=postgres://postgres@%s/x?sslmode=disable&connect_timeout=1", 503, "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := testEnviron(t)
			if tt.breakKey != "" {
				environ = append(environ, strings.Replace(tt.breakKey, "%s", closedAddr(t), 1))
			}
			base, stop := serve(t, environ)
			status, checks := readyz(t, base)
			if status != tt.wantStatus {
				t.Errorf("readyz = %d %v, want %d", status, checks, tt.wantStatus)
			}
			for name, state := range checks {
				want := "ok"
				if name == tt.wantDown {
					want = "down"
				}
				if state != want {
					t.Errorf("check %s = %q, want %q", name, state, want)
				}
			}
			if resp, err := http.Get(base + "/livez"); err != nil || resp.StatusCode != 200 {
				t.Errorf("livez = %v, %v", resp, err)
			}
			if code := stop(); code != 0 {
				t.Errorf("serve exit code after shutdown = %d, want 0", code)
			}
		})
	}
}

func TestMigrateAndDemo(t *testing.T) {
	t.Parallel()
	environ := testEnviron(t)
	ctx := context.Background()

	code, out, errs := run(t, ctx, environ, "migrate")
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate on a migrated database = %d %q %q", code, out, errs)
	}
	code, out, errs = run(t, ctx, environ, "demo")
	if code != 0 || !strings.Contains(out, "Created the demo organisation") || !strings.Contains(out, "owner@demo.fieldops.test") {
		t.Fatalf("demo = %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, ctx, environ, "demo")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second demo = %d %q", code, out)
	}

	conn, err := pgx.Connect(ctx, strings.TrimPrefix(environ[0], "FIELDOPS_DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var orgs, members, roles, jobs, twoEngineer, sites int
	if err := conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM organisations),
		(SELECT count(*) FROM memberships),
		(SELECT count(DISTINCT role) FROM memberships),
		(SELECT count(*) FROM jobs),
		(SELECT count(*) FROM (SELECT job_id FROM job_assignments GROUP BY job_id HAVING count(*) = 2) x),
		(SELECT count(*) FROM sites WHERE latitude BETWEEN 53.3 AND 53.6 AND longitude BETWEEN -2.4 AND -2.1)`).
		Scan(&orgs, &members, &roles, &jobs, &twoEngineer, &sites); err != nil {
		t.Fatal(err)
	}
	if orgs != 1 || members != 7 || roles != 7 || jobs != 10 || twoEngineer == 0 || sites != 6 {
		t.Errorf("demo made orgs=%d members=%d roles=%d jobs=%d two-engineer=%d sites-around-Manchester=%d",
			orgs, members, roles, jobs, twoEngineer, sites)
	}
	var plan string
	if err := conn.QueryRow(ctx, `SELECT plan FROM organisations`).Scan(&plan); err != nil || plan != "team" {
		t.Errorf("plan = %q, %v", plan, err)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"ErrNoCommand", nil, 2},
		{"ErrUnknownCommand", []string{"deploy"}, 2},
		{"ErrUnknownFlag", []string{"migrate", "-verbose"}, 2},
		{"ErrStrayArgument", []string{"version", "now"}, 2},
		{"ErrUnknownFormat", []string{"permissions", "-format", "xml"}, 2},
		{"OKHelp", []string{"help"}, 0},
		{"OKVersion", []string{"version"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, context.Background(), nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit = %d, want %d (%q %q)", code, tt.code, out, errs)
			}
			if tt.code == 2 && !strings.Contains(errs, "Usage:") {
				t.Errorf("stderr lacks the usage: %q", errs)
			}
		})
	}
}

func TestConfigErrorStopsStart(t *testing.T) {
	t.Parallel()
	code, _, errs := run(t, context.Background(), []string{"FIELDOPS_REDIS_URL=redis://127.0.0.1:1/0"}, "serve")
	if code != 1 || !strings.Contains(errs, "database.url") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("serve without database.url = %d %q, want one line naming database.url", code, errs)
	}
}

func TestPermissionsJSONMatchesGolden(t *testing.T) {
	t.Parallel()
	golden, err := os.ReadFile("../../testdata/permissions.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, context.Background(), nil, "permissions", "-format", "json")
	if code != 0 || strings.TrimSpace(out) != strings.TrimSpace(string(golden)) {
		t.Fatalf("permissions --format json differs from testdata/permissions.golden.json (exit %d)", code)
	}
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	environ := testEnviron(t)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, environ, "demo"); code != 0 {
		t.Fatalf("demo = %d %q %q", code, out, errs)
	}
	code, out, _ := run(t, ctx, environ, "audit", "verify")
	if code != 0 || !strings.Contains(out, "chain intact") {
		t.Fatalf("audit verify on an untouched log = %d %q", code, out)
	}
	// Tamper as the database superuser, who can switch the triggers off.
	conn, err := pgx.Connect(ctx, strings.TrimPrefix(environ[0], "FIELDOPS_DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`ALTER TABLE audit_events DISABLE TRIGGER USER`,
		`UPDATE audit_events SET actor_label = 'Someone else' WHERE seq = 5`,
		`ALTER TABLE audit_events ENABLE TRIGGER USER`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := run(t, ctx, environ, "audit", "verify")
	if code != 1 || !strings.Contains(out, "first broken link at event #5") || !strings.Contains(errs, "tampered") {
		t.Fatalf("audit verify on a tampered log = %d %q %q", code, out, errs)
	}
	if code, _, _ := run(t, ctx, environ, "audit"); code != 2 {
		t.Fatalf("audit without verify = %d, want 2", code)
	}
}

// TestServeDispatchesToTelegram: with a bot token, serve sends what the
// services put in the outbox through the (local) Bot API.
func TestServeDispatchesToTelegram(t *testing.T) {
	t.Parallel()
	tg := telegramtest.New(t)
	environ := append(testEnviron(t), "FIELDOPS_TELEGRAM_TOKEN="+tg.Token(), "FIELDOPS_TELEGRAM_API_URL="+tg.URL(),
		"FIELDOPS_TELEGRAM_BOT_USERNAME="+tg.Me().Username)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, environ, "demo"); code != 0 {
		t.Fatalf("demo = %d %q %q", code, out, errs)
	}
	conn, err := pgx.Connect(ctx, strings.TrimPrefix(environ[0], "FIELDOPS_DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Link the demo engineer's Telegram before serve starts: the demo's
	// assignment notices for them then go out by Telegram.
	u := tg.NewUser("Ethan", "ethan_eng")
	if _, err := conn.Exec(ctx, `INSERT INTO telegram_links (org_id, user_id, telegram_user_id, chat_id)
		SELECT m.org_id, m.user_id, $1, $2 FROM memberships m JOIN users x ON x.id = m.user_id WHERE x.email = 'engineer@demo.fieldops.test'`,
		u.ID, u.ChatID()); err != nil {
		t.Fatal(err)
	}
	_, stop := serve(t, environ)
	defer stop()
	msgs := tg.WaitSent(t, u.ChatID(), 1, 20*time.Second)
	if len(msgs) == 0 || !strings.Contains(msgs[0].Text, "job") && !strings.Contains(msgs[0].Text, "Job") {
		t.Fatalf("messages to the engineer = %+v", msgs)
	}
	// The row is marked sent just after the message went out.
	var sent int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL AND channel = 'telegram'`).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		if sent > 0 {
			break
		}
	}
	if sent == 0 {
		t.Fatal("no notification marked sent by telegram")
	}
}

// TestServeBotLinksAndAnswers: serve runs the bot: a /start with a link
// token sent to the (local) Bot API is polled, stored, handled and
// answered, and the chat then lists the engineer's jobs.
func TestServeBotLinksAndAnswers(t *testing.T) {
	t.Parallel()
	tg := telegramtest.New(t)
	environ := append(testEnviron(t), "FIELDOPS_TELEGRAM_TOKEN="+tg.Token(), "FIELDOPS_TELEGRAM_API_URL="+tg.URL(),
		"FIELDOPS_TELEGRAM_BOT_USERNAME="+tg.Me().Username)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, environ, "demo"); code != 0 {
		t.Fatalf("demo = %d %q %q", code, out, errs)
	}
	conn, err := pgx.Connect(ctx, strings.TrimPrefix(environ[0], "FIELDOPS_DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A link token for the demo engineer, as the panel's Link Telegram
	// makes one (only its SHA-256 is stored).
	const token = "AbCdEfGhIjKlMnOpQrStUv"
	if _, err := conn.Exec(ctx, `INSERT INTO telegram_link_tokens (token_hash, org_id, user_id, expires_at)
		SELECT sha256(convert_to($1, 'UTF8')), m.org_id, m.user_id, now() + interval '15 minutes'
		FROM memberships m JOIN users x ON x.id = m.user_id WHERE x.email = 'engineer@demo.fieldops.test'`, token); err != nil {
		t.Fatal(err)
	}
	_, stop := serve(t, environ)
	defer stop()
	u := tg.NewUser("Ethan", "ethan_eng")
	tg.SendCommand(u, "/start", token)
	// Once linked, the demo's queued job notices reach the chat too, so
	// the welcome is looked for among the messages.
	sentText := func(want string) string {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, m := range tg.Messages(u.ChatID()) {
				if strings.Contains(m.Text, want) {
					return m.Text
				}
			}
		}
		return ""
	}
	if welcome := sentText("Welcome"); !strings.Contains(welcome, "Demo") {
		t.Fatalf("no welcome naming the organisation: %+v", tg.Messages(u.ChatID()))
	}
	// The chat's command menu follows the member's permissions.
	var cmds []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(cmds) == 0; time.Sleep(50 * time.Millisecond) {
		cmds = nil
		for _, c := range tg.CommandsFor(u) {
			cmds = append(cmds, c.Command)
		}
	}
	if !slices.Contains(cmds, "today") || slices.Contains(cmds, "capacity") {
		t.Errorf("the engineer's commands = %v, want today and not capacity", cmds)
	}
	tg.SendCommand(u, "/week", "")
	if sentText("his week") == "" {
		t.Fatalf("no answer to /week: %+v", tg.Messages(u.ChatID()))
	}
	var linked int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM telegram_links WHERE telegram_user_id = $1 AND active`, u.ID).Scan(&linked); err != nil || linked != 1 {
		t.Fatalf("active links = %d (%v)", linked, err)
	}
}
