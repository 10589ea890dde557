package bot_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// recordingMailer keeps the mail it is given.
type recordingMailer struct {
	mu   sync.Mutex
	sent []fieldops.Mail
}

func (r *recordingMailer) Send(_ context.Context, m fieldops.Mail) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

func (r *recordingMailer) Mail() []fieldops.Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fieldops.Mail(nil), r.sent...)
}

// clock is the wall clock shifted by an offset the test moves.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// fixture is one organisation on its own database, with the local Bot API
// server and a client on it.
type fixture struct {
	pool     *pgxpool.Pool
	jobs     *store.JobService
	members  *store.MemberService
	outbox   *store.Outbox
	orgID    int64
	owner    context.Context
	customer int64
	site     int64
	srv      *telegramtest.Server
	tg       *tgbot.Bot
	mailer   *recordingMailer
	clock    *clock
	n        int
}

var seq atomic.Int64

func newFixture(t testing.TB, opts ...telegramtest.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := storetest.MustOpenDB(t)
	db := store.NewDB(pool, nil)
	f := &fixture{pool: pool, jobs: store.NewJobService(db), members: store.NewMemberService(db), outbox: store.NewOutbox(db),
		mailer: &recordingMailer{}, clock: &clock{}}
	n := seq.Add(1)
	owner, err := db.CreateUser(ctx, fmt.Sprintf("owner%d@example.co.uk", n), "Olive Owner", "")
	if err != nil {
		t.Fatal(err)
	}
	uctx := fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, Channel: fieldops.ChannelWeb})
	o, err := store.NewOrganisationService(db).CreateOrganisation(uctx, fieldops.NewOrganisation{Name: fmt.Sprintf("Sparks %d Ltd", n), Plan: "team"})
	if err != nil {
		t.Fatal(err)
	}
	f.orgID = o.ID
	f.owner = fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, OrgID: o.ID, Channel: fieldops.ChannelWeb})
	if _, err := store.NewOrganisationService(db).ChangePlan(f.owner, "team", 10); err != nil {
		t.Fatal(err)
	}
	c, err := store.NewCustomerService(db).CreateCustomer(f.owner, fieldops.CustomerUpdate{Name: ptr("Acme Lettings")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewSiteService(db).CreateSite(f.owner, fieldops.SiteUpdate{CustomerID: c.ID, Address: ptr("1 Deansgate, Manchester"),
		Postcode: ptr("m3 1aa"), Latitude: ptr(53.4794), Longitude: ptr(-2.2453)})
	if err != nil {
		t.Fatal(err)
	}
	f.customer, f.site = c.ID, s.ID
	f.srv = telegramtest.New(t, opts...)
	f.tg, err = tgbot.New(f.srv.Token(), tgbot.WithServerURL(f.srv.URL()), tgbot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// engineer adds an engineer; with linked, a Telegram user with an active
// link to them.
func (f *fixture) engineer(t testing.TB, linked bool) (int64, *telegramtest.User) {
	t.Helper()
	f.n++
	m, err := f.members.AddMember(f.owner, fieldops.NewMember{Email: fmt.Sprintf("eng%d.%d@example.co.uk", f.orgID, f.n),
		Name: fmt.Sprintf("Engineer %d", f.n), Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	if !linked {
		return m.UserID, nil
	}
	u := f.srv.NewUser(fmt.Sprintf("Eng%d", f.n), fmt.Sprintf("eng%d", f.n))
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO telegram_links (org_id, user_id, telegram_user_id, chat_id) VALUES ($1, $2, $3, $4)`,
		f.orgID, m.UserID, u.ID, u.ChatID()); err != nil {
		t.Fatal(err)
	}
	return m.UserID, u
}

// assign creates a job and assigns the engineers to it (the first is the
// primary), which queues job.assigned for each.
func (f *fixture) assign(t testing.TB, title string, engineers ...int64) *fieldops.Job {
	t.Helper()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	j, err := f.jobs.CreateJob(f.owner, fieldops.NewJob{CustomerID: f.customer, SiteID: f.site, Type: "eicr", Title: title,
		ScheduledStart: start, ScheduledEnd: start.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	as := make([]fieldops.Assignment, len(engineers))
	for i, id := range engineers {
		as[i] = fieldops.Assignment{UserID: id, Primary: i == 0}
	}
	if j, err = f.jobs.AssignEngineers(f.owner, j.ID, as); err != nil {
		t.Fatal(err)
	}
	return j
}

func (f *fixture) dispatcher(opts ...bot.DispatchOption) *bot.Dispatcher {
	opts = append([]bot.DispatchOption{bot.WithClock(f.clock.Now), bot.WithTimeUnit(f.srv.RetryAfterUnit()),
		bot.WithLocation(time.UTC)}, opts...)
	return bot.NewDispatcher(f.outbox, f.tg, f.mailer, nil, opts...)
}

func (f *fixture) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) unsent(t testing.TB) int {
	return f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND sent_at IS NULL`, f.orgID)
}

func runOnce(t testing.TB, d *bot.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain runs passes until nothing is left unsent.
func drain(t testing.TB, f *fixture, d *bot.Dispatcher, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for f.unsent(t) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications still unsent", f.unsent(t))
		}
		if runOnce(t, d) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func fastLimits() telegramtest.Option { return telegramtest.WithLimits(30, 1, 20, 50*time.Millisecond) }

func TestDispatchTelegramAndEmail(t *testing.T) {
	f := newFixture(t, fastLimits())
	linked, alice := f.engineer(t, true)
	unlinked, _ := f.engineer(t, false)
	f.assign(t, "EICR", linked, unlinked)
	d := f.dispatcher()
	if n := runOnce(t, d); n != 2 {
		t.Fatalf("claimed %d, want 2", n)
	}
	msgs := f.srv.WaitSent(t, alice.ChatID(), 1, 5*time.Second)
	// The first engineer assigned is the primary, and is told so.
	if want := "New job: EICR — 1 Deansgate, Manchester, Tue 1 Dec 09:00–12:00. You are the primary engineer."; msgs[0].Text != want {
		t.Fatalf("text = %q, want %q", msgs[0].Text, want)
	}
	mail := f.mailer.Mail()
	if len(mail) == 1 && strings.Contains(mail[0].Text, "primary") {
		t.Fatalf("the second engineer is told they are primary: %q", mail[0].Text)
	}
	if len(mail) != 1 || !strings.HasPrefix(mail[0].To, "eng") || !strings.Contains(mail[0].Text, "New job: EICR") || mail[0].Subject != "fieldops: New job" {
		t.Fatalf("mail = %+v", mail)
	}
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND sent_at IS NOT NULL AND channel = 'telegram'`, f.orgID, linked); n != 1 {
		t.Fatal("telegram message not marked sent")
	}
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND sent_at IS NOT NULL AND channel = 'email'`, f.orgID, unlinked); n != 1 {
		t.Fatal("e-mail not marked sent")
	}
	f.clock.Advance(time.Hour)
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("claimed %d after everything was sent", n)
	}
	if len(f.srv.Messages(alice.ChatID())) != 1 || len(f.mailer.Mail()) != 1 {
		t.Fatal("something was sent twice")
	}
}

func TestDispatchBlockedFallsBackToEmail(t *testing.T) {
	f := newFixture(t, fastLimits())
	eng, alice := f.engineer(t, true)
	f.srv.BlockBot(alice)
	j := f.assign(t, "EICR", eng)
	d := f.dispatcher()
	runOnce(t, d)
	if n := f.count(t, `SELECT count(*) FROM telegram_links WHERE org_id = $1 AND user_id = $2 AND NOT active AND blocked_at IS NOT NULL`, f.orgID, eng); n != 1 {
		t.Fatal("link not marked blocked")
	}
	if mail := f.mailer.Mail(); len(mail) != 1 || !strings.Contains(mail[0].Text, "New job: EICR") {
		t.Fatalf("mail = %+v", mail)
	}
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND sent_at IS NOT NULL AND channel = 'email'`, f.orgID); n != 1 {
		t.Fatal("not marked sent by e-mail")
	}
	// The next message goes straight to e-mail.
	if _, err := f.jobs.CancelJob(f.owner, j.ID); err != nil {
		t.Fatal(err)
	}
	runOnce(t, d)
	if mail := f.mailer.Mail(); len(mail) != 2 || !strings.Contains(mail[1].Text, "Job cancelled: EICR") {
		t.Fatalf("mail = %+v", mail)
	}
	if got := f.srv.RequestsFor("sendMessage"); len(got) != 1 {
		t.Fatalf("sendMessage requests = %d, want the one refused", len(got))
	}
}

func TestDispatchNoLinkNoMailer(t *testing.T) {
	f := newFixture(t, fastLimits())
	eng, _ := f.engineer(t, false)
	f.assign(t, "EICR", eng)
	d := bot.NewDispatcher(f.outbox, f.tg, nil, nil, bot.WithClock(f.clock.Now))
	runOnce(t, d)
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND failed_at IS NOT NULL
		AND last_error = 'no Telegram link and no e-mail configured'`, f.orgID); n != 1 {
		t.Fatal("not marked failed")
	}
}

func TestDispatchWithinLimits(t *testing.T) {
	f := newFixture(t, telegramtest.WithLimits(30, 1, 20, 100*time.Millisecond))
	var ids []int64
	var users []*telegramtest.User
	for range 5 {
		id, u := f.engineer(t, true)
		ids, users = append(ids, id), append(users, u)
	}
	for i := range 10 {
		f.assign(t, fmt.Sprintf("EICR %d", i), ids...)
	}
	d := f.dispatcher()
	start := time.Now()
	drain(t, f, d, 15*time.Second)
	elapsed := time.Since(start)
	if n := f.srv.TooManyRequests(); n != 0 {
		t.Fatalf("server answered %d × 429", n)
	}
	if d.TooManyRequests() != 0 {
		t.Fatalf("dispatcher saw %d × 429", d.TooManyRequests())
	}
	for _, u := range users {
		msgs := f.srv.Messages(u.ChatID())
		if len(msgs) != 10 {
			t.Fatalf("chat %d got %d messages, want 10", u.ChatID(), len(msgs))
		}
		for i, m := range msgs { // each chat in order
			if !strings.HasPrefix(m.Text, fmt.Sprintf("New job: EICR %d ", i)) {
				t.Fatalf("chat %d message %d = %q", u.ChatID(), i, m.Text)
			}
		}
	}
	t.Logf("50 messages to 5 chats in %v", elapsed)
}

func TestDispatchRetriesAfter429(t *testing.T) {
	f := newFixture(t, telegramtest.WithLimits(30, 1, 20, 50*time.Millisecond))
	eng, alice := f.engineer(t, true)
	for i := range 6 {
		f.assign(t, fmt.Sprintf("EICR %d", i), eng)
	}
	d := f.dispatcher(bot.WithoutRateLimits())
	drain(t, f, d, 15*time.Second)
	if f.srv.TooManyRequests() == 0 || d.TooManyRequests() == 0 {
		t.Fatalf("no 429 seen (server %d, dispatcher %d)", f.srv.TooManyRequests(), d.TooManyRequests())
	}
	seen := map[string]int{}
	for _, m := range f.srv.Messages(alice.ChatID()) {
		seen[m.Text]++
	}
	if len(seen) != 6 {
		t.Fatalf("delivered %v, want 6 distinct messages", seen)
	}
	for text, n := range seen {
		if n != 1 {
			t.Fatalf("%q delivered %d times", text, n)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND sent_at IS NOT NULL AND attempts > 0`, f.orgID); n == 0 {
		t.Fatal("no message was retried")
	}
}

func TestDispatchBackoffAndGiveUp(t *testing.T) {
	f := newFixture(t, fastLimits())
	eng, alice := f.engineer(t, true)
	f.assign(t, "EICR", eng)
	d := f.dispatcher(bot.WithMaxAttempts(3))

	f.srv.FailNext("sendMessage", 1, 502)
	runOnce(t, d)
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND sent_at IS NULL AND attempts = 1 AND last_error <> ''`, f.orgID); n != 1 {
		t.Fatal("not marked for retry")
	}
	if n := runOnce(t, d); n != 0 {
		t.Fatal("retried before the backoff")
	}
	f.clock.Advance(time.Second)
	runOnce(t, d)
	f.srv.WaitSent(t, alice.ChatID(), 1, 5*time.Second)
	if f.unsent(t) != 0 {
		t.Fatal("not sent after the backoff")
	}

	// Three failures in a row: given up.
	f.assign(t, "EICR 2", eng)
	f.srv.FailNext("sendMessage", 3, 502)
	for i := range 3 {
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("pass %d claimed %d", i, n)
		}
		f.clock.Advance(bot.Backoff(i, time.Second, 10*time.Minute))
	}
	if n := f.count(t, `SELECT count(*) FROM notifications WHERE org_id = $1 AND failed_at IS NOT NULL AND attempts = 3`, f.orgID); n != 1 {
		t.Fatal("not given up after 3 attempts")
	}
}

func TestDispatchRestartAfterCrash(t *testing.T) {
	f := newFixture(t, fastLimits())
	eng, alice := f.engineer(t, true)
	for i := range 3 {
		f.assign(t, fmt.Sprintf("EICR %d", i), eng)
	}
	// The first dispatcher sends and marks two, then claims the third and
	// dies before sending it.
	d1 := f.dispatcher(bot.WithBatchSize(2))
	if n := runOnce(t, d1); n != 2 {
		t.Fatalf("claimed %d", n)
	}
	if claimed, err := f.outbox.ClaimDue(context.Background(), f.clock.Now(), 10); err != nil || len(claimed) != 1 {
		t.Fatalf("crash claim = %v, %v", claimed, err)
	}
	d2 := f.dispatcher()
	if n := runOnce(t, d2); n != 0 {
		t.Fatalf("claimed %d while the crashed claim holds", n)
	}
	f.clock.Advance(fieldops.ClaimTimeout + time.Second)
	// A new process knows nothing of the last one's sends; a real restart
	// takes longer than Telegram's per-chat second.
	time.Sleep(f.srv.RetryAfterUnit())
	if n := runOnce(t, d2); n != 1 {
		t.Fatalf("claimed %d after the claim timeout, want 1", n)
	}
	f.clock.Advance(time.Hour)
	if n := runOnce(t, d2); n != 0 {
		t.Fatalf("claimed %d once everything was sent", n)
	}
	if f.srv.TooManyRequests() != 0 {
		t.Fatalf("%d × 429", f.srv.TooManyRequests())
	}
	msgs := f.srv.Messages(alice.ChatID())
	if len(msgs) != 3 {
		t.Fatalf("delivered %d, want 3", len(msgs))
	}
	for i, m := range msgs {
		if !strings.HasPrefix(m.Text, fmt.Sprintf("New job: EICR %d ", i)) {
			t.Fatalf("message %d = %q", i, m.Text)
		}
	}
}

func TestDispatchRunStopsWithContext(t *testing.T) {
	f := newFixture(t, fastLimits())
	eng, alice := f.engineer(t, true)
	f.assign(t, "EICR", eng)
	d := f.dispatcher(bot.WithPollInterval(10 * time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	f.srv.WaitSent(t, alice.ChatID(), 1, 5*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestRender(t *testing.T) {
	m := &fieldops.OutboundMessage{Kind: "job.cancelled", Payload: map[string]any{"title": "EICR", "site": "1 Deansgate",
		"scheduled_start": "2026-12-01T09:00:00Z", "scheduled_end": "2026-12-01T12:00:00Z"}}
	if _, text := bot.Render(m, time.UTC); text != "Job cancelled: EICR — 1 Deansgate, Tue 1 Dec 09:00–12:00." {
		t.Fatalf("text = %q", text)
	}
	m = &fieldops.OutboundMessage{Kind: "defect.c1", Payload: map[string]any{"title": "EICR", "description": strings.Repeat("sparks ", 200)}}
	if _, text := bot.Render(m, time.UTC); len([]rune(text)) > 500 || !strings.HasPrefix(text, "C1 defect") {
		t.Fatalf("text = %q (%d)", text, len([]rune(text)))
	}
	m = &fieldops.OutboundMessage{Kind: "something.new_here", Payload: map[string]any{}}
	if subject, text := bot.Render(m, time.UTC); subject != "Notification" || text != "fieldops: something.new here. Open fieldops for the details." {
		t.Fatalf("generic = %q %q", subject, text)
	}
	if got := []time.Duration{bot.Backoff(0, time.Second, 10*time.Minute), bot.Backoff(2, time.Second, 10*time.Minute),
		bot.Backoff(30, time.Second, 10*time.Minute)}; got[0] != time.Second || got[1] != 4*time.Second || got[2] != 10*time.Minute {
		t.Fatalf("backoff = %v", got)
	}
}
