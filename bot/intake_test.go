package bot

// Engine tests: the intake, the answer sender and the shared limits,
// against real Postgres (storetest) and the local Bot API server
// (telegramtest). They replace the handlers (b.handler) with
// auditHandler, which makes one audited write per text message inside the
// update's unit of work and answers "ok <text>", so that they depend on
// nothing the real handlers do.
//
//	go test -race -count=1 ./bot/

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// engineEnv is an engine test's world: a database of its own, the local
// Bot API server, and organisations whose members are simulated Telegram
// users with active links.
type engineEnv struct {
	url       string
	pool      *pgxpool.Pool
	db        *store.DB
	srv       *telegramtest.Server
	inbox     *store.Inbox
	outbox    *store.Outbox
	customers *store.CustomerService
	orgs      []int64
	users     []*telegramtest.User
	members   map[int64]int64 // telegram user id → user id
	logs      *logSink
	slow      time.Duration // how long the handler takes
}

var engineSeq atomic.Int64

// newEngineEnv makes orgs organisations of perOrg linked members each, on
// the database at url (a new one when empty).
func newEngineEnv(tb testing.TB, url string, orgs, perOrg int, srvOpts ...telegramtest.Option) *engineEnv {
	tb.Helper()
	if url == "" {
		url = storetest.MustDatabaseURL(tb)
	}
	ctx := context.Background()
	// Each worker holds a connection while it handles an update; the
	// poller, loader, sender and dispatcher need theirs.
	pool, err := pgxpool.New(ctx, url+"&pool_max_conns=16")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	db := store.NewDB(pool, nil)
	env := &engineEnv{url: url, pool: pool, db: db, srv: telegramtest.New(tb, srvOpts...), inbox: store.NewInbox(db),
		outbox: store.NewOutbox(db), customers: store.NewCustomerService(db), members: map[int64]int64{}, logs: newLogSink(tb)}
	for range orgs {
		n := engineSeq.Add(1)
		owner, err := db.CreateUser(ctx, fmt.Sprintf("owner%d@example.co.uk", n), "Olive Owner", "")
		if err != nil {
			tb.Fatal(err)
		}
		o, err := store.NewOrganisationService(db).CreateOrganisation(fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, Channel: fieldops.ChannelWeb}),
			fieldops.NewOrganisation{Name: fmt.Sprintf("Sparks %d Ltd", n), Plan: "team"})
		if err != nil {
			tb.Fatal(err)
		}
		env.orgs = append(env.orgs, o.ID)
		for i := range perOrg {
			// Members are added directly: seat limits are not the subject.
			u, err := db.CreateUser(ctx, fmt.Sprintf("eng%d.%d@example.co.uk", n, i), fmt.Sprintf("Engineer %d.%d", n, i), "")
			if err != nil {
				tb.Fatal(err)
			}
			tu := env.srv.NewUser(fmt.Sprintf("Eng%d_%d", n, i), fmt.Sprintf("eng%d_%d", n, i))
			if _, err := pool.Exec(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')`, o.ID, u.ID); err != nil {
				tb.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO telegram_links (org_id, user_id, telegram_user_id, chat_id) VALUES ($1, $2, $3, $4)`,
				o.ID, u.ID, tu.ID, tu.ChatID()); err != nil {
				tb.Fatal(err)
			}
			env.users = append(env.users, tu)
			env.members[tu.ID] = u.ID
		}
	}
	return env
}

// auditHandler is the engine tests' handler: a text message from a
// linked member creates a customer named after the update (a domain
// write with its audit entry, in the update's unit of work) and is
// answered "ok <text>"; "/boom" panics; a text starting "noop" is only
// answered (to measure the engine alone). The links are read once, up
// front.
func auditHandler(tb testing.TB, pool *pgxpool.Pool, customers fieldops.CustomerService, slow time.Duration) tgbot.HandlerFunc {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT telegram_user_id, org_id, user_id FROM telegram_links WHERE active`)
	if err != nil {
		tb.Fatal(err)
	}
	actors := map[int64]fieldops.Actor{}
	for rows.Next() {
		var tg int64
		var a fieldops.Actor
		if err := rows.Scan(&tg, &a.OrgID, &a.UserID); err != nil {
			tb.Fatal(err)
		}
		a.Channel = fieldops.ChannelTelegram
		actors[tg] = a
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context, _ *tgbot.Bot, upd *models.Update) {
		m := upd.Message
		if m == nil || m.From == nil || m.Text == "" {
			return
		}
		if m.Text == "/boom" {
			panic("boom")
		}
		a, ok := actors[m.From.ID]
		if !ok {
			queue(ctx, "sendMessage", map[string]any{"chat_id": m.Chat.ID, "text": "not linked"})
			return
		}
		if slow > 0 {
			time.Sleep(slow)
		}
		if strings.HasPrefix(m.Text, "noop") {
			queue(ctx, "sendMessage", &tgbot.SendMessageParams{ChatID: m.Chat.ID, Text: "ok " + m.Text})
			return
		}
		name := fmt.Sprintf("u%d %s", upd.ID, m.Text)
		if _, err := customers.CreateCustomer(fieldops.NewContext(ctx, a), fieldops.CustomerUpdate{Name: &name}); err != nil {
			fail(ctx, err)
			return
		}
		queue(ctx, "sendMessage", &tgbot.SendMessageParams{ChatID: m.Chat.ID, Text: "ok " + m.Text})
	}
}

// newBot makes a bot on the env with the engine handler; edit adjusts the
// options.
func (env *engineEnv) newBot(tb testing.TB, edit func(*Options)) *Bot {
	tb.Helper()
	opts := Options{Token: env.srv.Token(), ServerURL: env.srv.URL(), PollTimeout: 2 * time.Second,
		TimeUnit: env.srv.RetryAfterUnit(), RetryBackoff: 20 * time.Millisecond, Location: time.UTC,
		Logger: slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if edit != nil {
		edit(&opts)
	}
	svc := Services{Inbox: env.inbox}
	if env.outbox != nil {
		svc.Outbox = env.outbox
	}
	b, err := New(svc, opts)
	if err != nil {
		tb.Fatal(err)
	}
	b.handler = auditHandler(tb, env.pool, env.customers, env.slow)
	return b
}

// start runs fn (a Run) until the returned stop is called or the test
// ends; stop waits for it to return.
func start(tb testing.TB, fn func(context.Context) error) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("run: %v", err)
				}
			case <-time.After(15 * time.Second):
				tb.Errorf("run did not stop")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func (env *engineEnv) count(tb testing.TB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := env.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// eventually waits until cond holds.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendMessages has each user send n texts "<prefix><i>".
func (env *engineEnv) sendMessages(users []*telegramtest.User, prefix string, n int) {
	for i := range n {
		for _, u := range users {
			env.srv.SendText(u, fmt.Sprintf("%s%d", prefix, i))
		}
	}
}

// answers returns the texts the bot sent to a chat.
func (env *engineEnv) answers(chat int64) []string {
	var out []string
	for _, m := range env.srv.Messages(chat) {
		out = append(out, m.Text)
	}
	return out
}

// checkOnce checks that every text message was applied exactly once: one
// customer per update, with its audit entry.
func (env *engineEnv) checkOnce(tb testing.TB, want int) {
	tb.Helper()
	var total, distinct, audited int
	if err := env.pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT name),
		(SELECT count(*) FROM audit_events WHERE action = 'customer.create') FROM customers`).Scan(&total, &distinct, &audited); err != nil {
		tb.Fatal(err)
	}
	if total != want || distinct != want || audited != want {
		tb.Fatalf("customers %d (distinct %d), audit entries %d; want %d of each", total, distinct, audited, want)
	}
}

// waitAnswered waits until every user has at least n answers.
func (env *engineEnv) waitAnswered(tb testing.TB, users []*telegramtest.User, n int, timeout time.Duration) {
	tb.Helper()
	for _, u := range users {
		env.srv.WaitSent(tb, u.ChatID(), n, timeout)
	}
}

// logSink collects a test's log and shows it if the test fails.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogSink(tb testing.TB) *logSink {
	s := &logSink{}
	tb.Cleanup(func() {
		if tb.Failed() {
			s.mu.Lock()
			defer s.mu.Unlock()
			tb.Logf("log:\n%s", s.buf.String())
		}
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

var _ io.Writer = (*logSink)(nil)

func TestIntakeBatchInOrderOnce(t *testing.T) {
	env := newEngineEnv(t, "", 2, 3)
	// Queued while the bot is offline: one batch, six chats.
	env.sendMessages(env.users, "m", 6)
	// The first batch's answer is lost in transit (the request took
	// effect); the poller asks again with the same offset.
	env.srv.LoseResponseNext("getUpdates")
	b := env.newBot(t, nil)
	start(t, b.Run)
	env.waitAnswered(t, env.users, 6, 20*time.Second)

	for _, u := range env.users {
		got := env.answers(u.ChatID())
		want := []string{"ok m0", "ok m1", "ok m2", "ok m3", "ok m4", "ok m5"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chat %d answers %q, want %q", u.ChatID(), got, want)
		}
		// Handled in order: the customers of a chat were created in its
		// message order.
		rows, err := env.pool.Query(context.Background(), `SELECT name FROM customers WHERE created_by = $1 ORDER BY id`, env.members[u.ID])
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			if !strings.HasSuffix(n, fmt.Sprintf(" m%d", i)) {
				t.Fatalf("chat %d handled out of order: %q", u.ChatID(), names)
			}
		}
	}
	env.checkOnce(t, 36)
	eventually(t, 5*time.Second, "answers recorded sent", func() bool {
		return env.count(t, `SELECT count(*) FROM telegram_updates WHERE status = 'done' AND calls_sent_at IS NOT NULL`) == 36
	})

	// The same updates delivered again (getUpdates after a lost answer, a
	// webhook retry): stored once, handled once, answered once.
	pending, err := env.pool.Query(context.Background(), `SELECT update_id, payload::text FROM telegram_updates`)
	if err != nil {
		t.Fatal(err)
	}
	var again []fieldops.InboundUpdate
	for pending.Next() {
		var u fieldops.InboundUpdate
		var payload string
		if err := pending.Scan(&u.UpdateID, &payload); err != nil {
			t.Fatal(err)
		}
		u.Payload = []byte(payload)
		again = append(again, u)
	}
	if err := pending.Err(); err != nil {
		t.Fatal(err)
	}
	if err := env.inbox.Store(context.Background(), again, 0); err != nil {
		t.Fatal(err)
	}
	b.wake()
	time.Sleep(500 * time.Millisecond)
	env.checkOnce(t, 36)
	if n := len(env.srv.Sent()); n != 36 {
		t.Fatalf("%d messages sent, want 36", n)
	}
	if st := b.Stats(); st.Handled != 36 || st.SetAside != 0 || st.Conflicts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIntakePanicIsSetAside(t *testing.T) {
	env := newEngineEnv(t, "", 1, 3)
	env.outbox = nil // the alert stays queued, to be looked at
	alice, others := env.users[0], env.users[1:]
	env.srv.SendText(alice, "/boom")
	env.srv.SendText(alice, "after")
	env.sendMessages(others, "m", 3)
	b := env.newBot(t, func(o *Options) { o.MaxAttempts = 3 })
	start(t, b.Run)

	env.waitAnswered(t, others, 3, 10*time.Second)
	msgs := env.srv.WaitSent(t, alice.ChatID(), 2, 10*time.Second)
	if msgs[0].Text != textSetAside || msgs[1].Text != "ok after" {
		t.Fatalf("alice got %q, %q", msgs[0].Text, msgs[1].Text)
	}
	if n := env.count(t, `SELECT count(*) FROM telegram_updates WHERE status = 'set_aside' AND attempts = 3
		AND last_error LIKE 'handler panic: boom%'`); n != 1 {
		t.Fatal("the poison update is not set aside after 3 attempts")
	}
	if n := env.count(t, `SELECT count(*) FROM notifications WHERE kind = 'alert.update_set_aside' AND org_id = $1`, env.orgs[0]); n == 0 {
		t.Fatal("no alert for the organisation's owners")
	}
	env.checkOnce(t, 7)
	log := env.logs.String()
	if !strings.Contains(log, "handler panicked") || !strings.Contains(log, "runtime/debug.Stack") {
		t.Fatalf("the panic and its stack are not logged:\n%s", log)
	}
	if st := b.Stats(); st.SetAside != 1 || st.Failed != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIntake429Storm(t *testing.T) {
	// Telegram's limits with a 100 ms second; 30 chats each send five
	// messages at once and have two notifications queued for them, so
	// answers and notifications compete for the same chats.
	env := newEngineEnv(t, "", 3, 10, telegramtest.WithLimits(30, 1, 20, 100*time.Millisecond))
	ctx := context.Background()
	for _, u := range env.users {
		var org int64
		if err := env.pool.QueryRow(ctx, `SELECT org_id FROM telegram_links WHERE telegram_user_id = $1`, u.ID).Scan(&org); err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			if _, err := env.pool.Exec(ctx, `INSERT INTO notifications (org_id, user_id, channel, kind, payload)
				VALUES ($1, $2, 'telegram', 'test.storm', jsonb_build_object('k', $3::int))`, org, env.members[u.ID], k); err != nil {
				t.Fatal(err)
			}
		}
	}
	env.sendMessages(env.users, "m", 5)
	b := env.newBot(t, nil)
	began := time.Now()
	start(t, b.Run)
	env.waitAnswered(t, env.users, 7, 60*time.Second)
	elapsed := time.Since(began)

	for _, u := range env.users {
		var oks []string
		notes := 0
		for _, text := range env.answers(u.ChatID()) {
			if strings.HasPrefix(text, "ok ") {
				oks = append(oks, text)
			} else {
				notes++
			}
		}
		if strings.Join(oks, "|") != "ok m0|ok m1|ok m2|ok m3|ok m4" || notes != 2 {
			t.Fatalf("chat %d got %q", u.ChatID(), env.answers(u.ChatID()))
		}
	}
	env.checkOnce(t, 150)
	eventually(t, 5*time.Second, "notifications recorded sent", func() bool {
		return env.count(t, `SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL`) == 60
	})
	t.Logf("210 sends to 30 chats in %v: server answered %d × 429 (bot saw %d)", elapsed, env.srv.TooManyRequests(), b.Stats().TooMany)
	if n := env.srv.TooManyRequests(); n > 3 {
		t.Fatalf("server answered %d × 429; the limiters should keep it at or near 0", n)
	}
}

func TestIntakePostgresRestart(t *testing.T) {
	pg := storetest.StartPostgres(t)
	env := newEngineEnv(t, pg.URL, 2, 5, telegramtest.WithoutLimits())
	env.slow = 10 * time.Millisecond // a backlog, so that units of work are open when Postgres goes
	b := env.newBot(t, func(o *Options) { o.NoRateLimits = true })
	start(t, b.Run)

	// Messages keep coming while Postgres goes away and comes back.
	const rounds = 30
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range rounds {
			for _, u := range env.users {
				env.srv.SendText(u, fmt.Sprintf("m%d", i))
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	eventually(t, 20*time.Second, "some answers", func() bool { return len(env.srv.Sent()) >= 30 })
	pg.Stop()
	time.Sleep(1500 * time.Millisecond)
	pg.Start()
	<-sent
	total := rounds * len(env.users)
	eventually(t, 60*time.Second, "every update handled", func() bool {
		var n int
		err := env.pool.QueryRow(context.Background(), `SELECT count(*) FROM telegram_updates WHERE status = 'done' AND calls_sent_at IS NOT NULL`).Scan(&n)
		return err == nil && n == total
	})
	env.checkOnce(t, total)
	dups := 0
	for _, u := range env.users {
		seen := map[string]int{}
		for _, text := range env.answers(u.ChatID()) {
			seen[text]++
		}
		if len(seen) != rounds {
			t.Fatalf("chat %d got %d distinct answers, want %d", u.ChatID(), len(seen), rounds)
		}
		for _, n := range seen {
			dups += n - 1
		}
	}
	if n := env.count(t, `SELECT count(*) FROM telegram_updates WHERE status <> 'done'`); n != 0 {
		t.Fatalf("%d updates not done", n)
	}
	if !strings.Contains(env.logs.String(), "SQLSTATE 57P01") {
		t.Fatal("Postgres' restart went unnoticed")
	}
	t.Logf("%d updates across a Postgres restart: each applied once; %d answers sent twice; stats %+v", total, dups, b.Stats())
}

func TestIntakeLeadership(t *testing.T) {
	env := newEngineEnv(t, "", 1, 4)
	lead := func() *store.Leadership {
		l, err := store.NewLeadership(env.url, 424242, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.RetryEvery, l.PingEvery = 100*time.Millisecond, 200*time.Millisecond
		return l
	}
	b1, b2 := env.newBot(t, nil), env.newBot(t, nil)
	stops := map[*Bot]func(){}
	for _, b := range []*Bot{b1, b2} {
		stops[b] = start(t, func(ctx context.Context) error { return b.Lead(ctx, lead()) })
	}

	env.sendMessages(env.users, "a", 3)
	env.waitAnswered(t, env.users, 3, 15*time.Second)
	env.checkOnce(t, 12)
	s1, s2 := b1.Stats(), b2.Stats()
	if (s1.Polls == 0) == (s2.Polls == 0) {
		t.Fatalf("polls by instance: %d and %d; want exactly one poller", s1.Polls, s2.Polls)
	}
	for _, r := range env.srv.RequestsFor("getUpdates") {
		if r.Status == 409 {
			t.Fatalf("a getUpdates was refused with 409: %+v", r)
		}
	}
	// The leader goes; the other takes over and nothing is lost.
	leader, standby := b1, b2
	if s1.Polls == 0 {
		leader, standby = b2, b1
	}
	stops[leader]()
	env.sendMessages(env.users, "b", 2)
	env.waitAnswered(t, env.users, 5, 20*time.Second)
	env.checkOnce(t, 20)
	if standby.Stats().Polls == 0 {
		t.Fatal("the standby never polled after the leader went")
	}
	conflicts := 0
	for _, r := range env.srv.RequestsFor("getUpdates") {
		if r.Status == 409 {
			conflicts++
		}
	}
	t.Logf("handover: %d getUpdates answered 409", conflicts)
}

func TestSenderBlockedChat(t *testing.T) {
	env := newEngineEnv(t, "", 1, 2)
	alice, bob := env.users[0], env.users[1]
	env.srv.SendText(alice, "hi")
	env.srv.BlockBot(alice) // before the answer goes: it gets 403
	env.srv.SendText(bob, "hi")
	b := env.newBot(t, nil)
	b.svc.Telegram = store.NewTelegramService(env.db, store.NewSessionService(env.db, storetest.MustOpenRedis(t)), env.srv.Me().Username)
	start(t, b.Run)
	if msgs := env.srv.WaitSent(t, bob.ChatID(), 1, 10*time.Second); msgs[0].Text != "ok hi" {
		t.Fatalf("bob got %q", msgs[0].Text)
	}
	eventually(t, 10*time.Second, "alice's link marked blocked", func() bool {
		return env.count(t, `SELECT count(*) FROM telegram_links WHERE telegram_user_id = $1 AND blocked_at IS NOT NULL AND NOT active`, alice.ID) == 1
	})
	eventually(t, 5*time.Second, "answers recorded sent", func() bool {
		return env.count(t, `SELECT count(*) FROM telegram_updates WHERE status = 'done' AND calls_sent_at IS NOT NULL`) == 2
	})
	if n := len(env.srv.Messages(alice.ChatID())); n != 0 {
		t.Fatalf("alice has %d messages", n)
	}
	env.checkOnce(t, 2)
}

func TestSenderRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(*telegramtest.Server)
		tooMany int64
	}{
		{"TooManyRequests", func(s *telegramtest.Server) { s.FailNext("sendMessage", 2, 429) }, 2},
		{"BadGateway", func(s *telegramtest.Server) { s.FailNext("sendMessage", 3, 502) }, 0},
		{"Timeout", func(s *telegramtest.Server) { s.DelayNext("sendMessage", 40*time.Second) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEngineEnv(t, "", 1, 1, telegramtest.WithLimits(30, 1, 20, 20*time.Millisecond))
			alice := env.users[0]
			tc.fault(env.srv)
			env.srv.SendText(alice, "hi")
			b := env.newBot(t, nil)
			b.hc.Timeout = time.Second // the delayed send times out
			start(t, b.Run)
			if msgs := env.srv.WaitSent(t, alice.ChatID(), 1, 15*time.Second); msgs[0].Text != "ok hi" {
				t.Fatalf("alice got %q", msgs[0].Text)
			}
			eventually(t, 5*time.Second, "the answer recorded sent", func() bool {
				return env.count(t, `SELECT count(*) FROM telegram_updates WHERE calls_sent_at IS NOT NULL`) == 1
			})
			if got := b.Stats().TooMany; got != tc.tooMany {
				t.Fatalf("429s seen %d, want %d", got, tc.tooMany)
			}
			if n := len(env.srv.Messages(alice.ChatID())); n != 1 {
				t.Fatalf("%d messages", n)
			}
		})
	}
}
