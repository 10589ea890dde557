package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// The chat tests run the real bot (intake, handlers, answers) against the
// local Bot API server, with the real services on real PostgreSQL and
// Redis. The bot package itself never imports store: only its tests wire
// it, as cmd/fieldops does.

// chatClock is the wall clock shifted by an offset the test moves.
type chatClock struct{ off atomic.Int64 }

func (c *chatClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *chatClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// Set moves the clock so that it reads t now.
func (c *chatClock) Set(t time.Time) { c.off.Store(int64(time.Until(t))) }

// chatHarness is one organisation on its own database, the local Bot API
// server and a running bot.
type chatHarness struct {
	t        *testing.T
	pool     *pgxpool.Pool
	db       *store.DB
	srv      *telegramtest.Server
	svc      bot.Services
	sessions *store.SessionService
	tgsvc    *store.TelegramService
	jobs     *store.JobService
	members  *store.MemberService
	orgs     *store.OrganisationService
	photoDir string
	clock    *chatClock
	london   *time.Location

	bot  *bot.Bot
	stop func()

	orgID    int64
	ownerID  int64
	owner    context.Context
	customer int64
	site     int64
	n        int
}

// chatSite is where the test organisation's site is: 1 Deansgate,
// Manchester.
var chatSite = fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}

// chatOptions configure newChatHarness.
type chatOptions struct {
	notify bool // dispatch the outbox too (job.assigned and alerts reach the chats)
	server []telegramtest.Option
}

var chatSeq atomic.Int64

func newChatHarness(t *testing.T, o chatOptions) *chatHarness {
	t.Helper()
	ctx := context.Background()
	pool := storetest.MustOpenDB(t)
	rdb := storetest.MustOpenRedis(t)
	h := &chatHarness{t: t, pool: pool, db: store.NewDB(pool, nil), clock: &chatClock{}, photoDir: t.TempDir()}
	var err error
	if h.london, err = time.LoadLocation("Europe/London"); err != nil {
		t.Fatal(err)
	}
	// Noon in London today, whenever the test runs: "today" has jobs on
	// both sides and does not end during the test.
	wall := time.Now().In(h.london)
	h.clock.Set(time.Date(wall.Year(), wall.Month(), wall.Day(), 12, 0, 0, 0, h.london))
	h.db.Now = h.clock.Now
	h.sessions = store.NewSessionService(h.db, rdb)
	h.tgsvc = store.NewTelegramService(h.db, h.sessions, "fieldops_test_bot")
	h.jobs = store.NewJobService(h.db)
	h.members = store.NewMemberService(h.db)
	h.members.Sessions = h.sessions
	h.orgs = store.NewOrganisationService(h.db)
	h.svc = bot.Services{
		Telegram: h.tgsvc, Inbox: store.NewInbox(h.db), Orgs: h.orgs, Members: h.members, Jobs: h.jobs,
		Field: store.NewFieldWorkService(h.db, &store.PhotoFiles{Dir: h.photoDir}), Evidence: store.NewJobEvidenceService(h.db),
		Defects: store.NewDefectService(h.db), Certificates: store.NewCertificateService(h.db), Capacity: store.NewCapacityService(h.db),
	}
	if o.notify {
		h.svc.Outbox = store.NewOutbox(h.db)
	}

	n := chatSeq.Add(1)
	h.orgID, h.ownerID, h.owner = h.newOrg(fmt.Sprintf("Chat Sparks %d Ltd", n), fmt.Sprintf("chat.owner%d@example.co.uk", n))
	c, err := store.NewCustomerService(h.db).CreateCustomer(h.owner, fieldops.CustomerUpdate{Name: ptr("Acme Lettings")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewSiteService(h.db).CreateSite(h.owner, fieldops.SiteUpdate{CustomerID: c.ID, Address: ptr("1 Deansgate, Manchester"),
		Postcode: ptr("m3 1aa"), Latitude: ptr(chatSite.Lat), Longitude: ptr(chatSite.Lng)})
	if err != nil {
		t.Fatal(err)
	}
	h.customer, h.site = c.ID, s.ID

	h.srv = telegramtest.New(t, append([]telegramtest.Option{telegramtest.WithLimits(30, 1, 20, 20*time.Millisecond)}, o.server...)...)
	h.start()
	t.Cleanup(func() { h.stopBot() })
	_ = ctx
	return h
}

// newOrg starts an organisation on the team plan with room to grow, and
// returns its id and its owner.
func (h *chatHarness) newOrg(name, email string) (orgID, ownerID int64, owner context.Context) {
	h.t.Helper()
	ctx := context.Background()
	u, err := h.db.CreateUser(ctx, email, "Olive Owner", "")
	if err != nil {
		h.t.Fatal(err)
	}
	uctx := fieldops.NewContext(ctx, fieldops.Actor{UserID: u.ID, Channel: fieldops.ChannelWeb})
	o, err := h.orgs.CreateOrganisation(uctx, fieldops.NewOrganisation{Name: name, Plan: "team"})
	if err != nil {
		h.t.Fatal(err)
	}
	owner = fieldops.NewContext(ctx, fieldops.Actor{UserID: u.ID, OrgID: o.ID, Channel: fieldops.ChannelWeb})
	if _, err := h.orgs.ChangePlan(owner, "team", 10); err != nil {
		h.t.Fatal(err)
	}
	return o.ID, u.ID, owner
}

// start runs a bot on the harness's services.
func (h *chatHarness) start() {
	h.t.Helper()
	b, err := bot.New(h.svc, bot.Options{Token: h.srv.Token(), ServerURL: h.srv.URL(), BotUsername: h.srv.Me().Username, TimeUnit: h.srv.RetryAfterUnit(),
		PollTimeout: time.Second, RetryBackoff: 20 * time.Millisecond, MaxAttempts: 2, Location: h.london, Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Run(ctx); err != nil {
			h.t.Errorf("bot run: %v", err)
		}
	}()
	h.bot = b
	h.stop = func() { cancel(); <-done }
}

func (h *chatHarness) stopBot() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// member adds a member of role to the organisation and returns their id
// and a context acting as them on the web.
func (h *chatHarness) member(role fieldops.Role) (int64, context.Context) {
	h.t.Helper()
	h.n++
	m, err := h.members.AddMember(h.owner, fieldops.NewMember{Email: fmt.Sprintf("chat%d.%d@example.co.uk", h.orgID, h.n),
		Name: fmt.Sprintf("%s %d", role.Label(), h.n), Role: role})
	if err != nil {
		h.t.Fatal(err)
	}
	return m.UserID, fieldops.NewContext(context.Background(), fieldops.Actor{UserID: m.UserID, OrgID: h.orgID, Channel: fieldops.ChannelWeb})
}

// linked adds a member of role and links a new Telegram user to them
// through the deep link, as the member would.
func (h *chatHarness) linked(role fieldops.Role) (int64, *telegramtest.User) {
	h.t.Helper()
	id, mctx := h.member(role)
	u := h.srv.NewUser(fmt.Sprintf("U%d", h.n), fmt.Sprintf("user%d", h.n))
	h.link(mctx, u)
	return id, u
}

// link sends /start with a fresh link token of the member in mctx.
func (h *chatHarness) link(mctx context.Context, u *telegramtest.User) {
	h.t.Helper()
	tok, err := h.tgsvc.CreateLinkToken(mctx)
	if err != nil {
		h.t.Fatal(err)
	}
	msgs := h.act(u, func() { h.srv.SendCommand(u, "/start", tok.Token) })
	if len(msgs) == 0 || !strings.Contains(msgs[0].Text, "Welcome") {
		h.t.Fatalf("link: got %q", chatTexts(msgs))
	}
}

// today is the local day of the clock in London at hh:mm.
func (h *chatHarness) today(hh, mm int) time.Time {
	n := h.clock.Now().In(h.london)
	return time.Date(n.Year(), n.Month(), n.Day(), hh, mm, 0, 0, h.london)
}

// job creates a job in the window on the test site, assigned to the
// engineers (the first is the primary).
func (h *chatHarness) job(title string, start, end time.Time, engineers ...int64) *fieldops.Job {
	h.t.Helper()
	return h.jobIn(h.owner, h.customer, h.site, title, start, end, engineers...)
}

func (h *chatHarness) jobIn(owner context.Context, customer, site int64, title string, start, end time.Time, engineers ...int64) *fieldops.Job {
	h.t.Helper()
	j, err := h.jobs.CreateJob(owner, fieldops.NewJob{CustomerID: customer, SiteID: site, Type: "eicr", Title: title,
		ScheduledStart: start, ScheduledEnd: end})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(engineers) == 0 {
		return j
	}
	as := make([]fieldops.Assignment, len(engineers))
	for i, id := range engineers {
		as[i] = fieldops.Assignment{UserID: id, Primary: i == 0}
	}
	if j, err = h.jobs.AssignEngineers(owner, j.ID, as); err != nil {
		h.t.Fatal(err)
	}
	return j
}

// settled is the number of updates the bot is done with.
func (h *chatHarness) settled() int64 {
	s := h.bot.Stats()
	return s.Answered + s.SetAside
}

// act does what a user does (one update) and waits until the bot has
// handled it and sent its answers; it returns the messages the bot sent
// to u's chat since.
func (h *chatHarness) act(u *telegramtest.User, fn func()) []telegramtest.SentMessage {
	h.t.Helper()
	before := len(h.srv.Messages(u.ChatID()))
	want := h.settled() + 1
	fn()
	h.waitUntil("the update to be answered", func() bool { return h.settled() >= want })
	return h.srv.Messages(u.ChatID())[before:]
}

// press presses a button (it must exist) on a bot message.
func (h *chatHarness) press(u *telegramtest.User, msgID int, data string) []telegramtest.SentMessage {
	h.t.Helper()
	return h.act(u, func() {
		if _, err := h.srv.PressButton(u, msgID, data); err != nil {
			h.t.Fatal(err)
		}
	})
}

// waitUntil polls cond until it holds, or fails the test after 15 s.
func (h *chatHarness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-h.srv.Changed():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// message returns the bot's message msgID in u's chat as it is now.
func (h *chatHarness) message(u *telegramtest.User, msgID int) telegramtest.SentMessage {
	h.t.Helper()
	for _, m := range h.srv.Messages(u.ChatID()) {
		if m.MessageID == msgID {
			return m
		}
	}
	h.t.Fatalf("no message %d in chat %d", msgID, u.ChatID())
	return telegramtest.SentMessage{}
}

// openCard sends /job <id> and returns the card.
func (h *chatHarness) openCard(u *telegramtest.User, jobID int64) telegramtest.SentMessage {
	h.t.Helper()
	msgs := h.act(u, func() { h.srv.SendCommand(u, "/job", fmt.Sprint(jobID)) })
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, fmt.Sprintf("(job #%d)", jobID)) {
		h.t.Fatalf("/job %d: got %q", jobID, chatTexts(msgs))
	}
	return msgs[0]
}

// checkIn presses Check in on the card and sends a location with opts.
func (h *chatHarness) checkIn(u *telegramtest.User, card telegramtest.SentMessage, jobID int64, at fieldops.LatLng, opts ...telegramtest.MessageOption) []telegramtest.SentMessage {
	h.t.Helper()
	msgs := h.press(u, card.MessageID, fmt.Sprintf("j:ci:%d", jobID))
	if len(msgs) != 1 || !msgs[0].Markup.RequestsLocation() {
		h.t.Fatalf("check in: expected the location keyboard, got %q", chatTexts(msgs))
	}
	opts = append([]telegramtest.MessageOption{telegramtest.Dated(h.clock.Now())}, opts...)
	return h.act(u, func() { h.srv.SendLocation(u, at.Lat, at.Lng, opts...) })
}

func (h *chatHarness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// storeWaiting puts an update in the bot's inbox, as the intake would,
// while the bot is stopped: it is handled when the bot starts.
func (h *chatHarness) storeWaiting(upd any, updateID, chatID, userID int64) {
	h.t.Helper()
	payload, err := json.Marshal(upd)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Inbox.Store(context.Background(), []fieldops.InboundUpdate{{UpdateID: updateID, ChatID: chatID,
		TelegramUserID: userID, Payload: payload}}, updateID+1); err != nil {
		h.t.Fatal(err)
	}
}

func chatTexts(msgs []telegramtest.SentMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

// chatOffset returns a point about metres north of p.
func chatOffset(p fieldops.LatLng, metres float64) fieldops.LatLng {
	return fieldops.LatLng{Lat: p.Lat + metres/111195, Lng: p.Lng}
}
