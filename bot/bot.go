// Package bot is the Telegram front end of fieldops: the durable intake of
// updates (long polling or a webhook, into the inbox), the handlers that
// turn them into service calls, the sending of their answers, and the
// dispatch of queued notifications.
//
// The flow of an update:
//
//	getUpdates ─▶ Inbox.Store (with the next offset) ─▶ getUpdates(offset)…
//	                 │                      (the offset confirms only what is stored)
//	webhook POST ─▶ Inbox.Store ─▶ 200
//	                 ▼
//	loader (Inbox.Pending) ─▶ one queue per chat, in update_id order
//	                 ▼        (Workers chats at a time, each chat's updates one by one)
//	Inbox.Handle(tx: handler's service calls + answers queued) ─ retry, set aside
//	                 ▼
//	sender: answerCallbackQuery at once; sends in order per chat, within
//	the limits shared with the Dispatcher ─▶ Inbox.MarkSent
//
// A crash at any point neither loses an update nor applies it twice; an
// answer is sent at least once (rarely twice).
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// Modes of receiving updates.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// Options configure a Bot. Zero values take the defaults.
type Options struct {
	Token, ServerURL, BotUsername string
	Mode                          string // "polling" (default) or "webhook"
	WebhookURL, WebhookSecret     string
	// Workers is how many chats are handled in parallel, default 8. Each
	// worker holds a database connection for the whole of an update (its
	// transaction), and may briefly take a second one from the pool (the
	// link's last-seen touch runs outside the update's transaction). Size
	// the pool for Workers plus headroom: one connection more is the least
	// that cannot stall (with exactly Workers, every worker can hold one
	// and wait for another), and the bot's own loops (the poller's or the
	// webhook's Store, the loader, the answer sender, the dispatcher) and
	// anything else sharing the pool (the web panel, the scheduler) each
	// take one at times. New checks none of this: the caller sizes the
	// pool.
	Workers      int
	PollTimeout  time.Duration // getUpdates long poll, default 30 s
	MaxAttempts  int           // handling attempts before an update is set aside, default 5
	RetryBackoff time.Duration // first retry delay, doubling; default 200 ms
	// TimeUnit is the length of a Telegram second for the limiters and
	// retry_after (tests: the local server's RetryAfterUnit()); default 1 s.
	TimeUnit     time.Duration
	NoRateLimits bool           // turn own limiters off (benchmarks against an unlimited server)
	Location     *time.Location // times shown in messages; default Europe/London
	Now          func() time.Time
	Logger       *slog.Logger
	// OnStep is a test hook called at named points: "intake.fetched"
	// (getUpdates returned, before Store), "intake.stored" (after the
	// Store commit), "intake.handled" (inside the unit of work, after the
	// handler, before the commit), "intake.committed" (after the commit,
	// before the answers are sent), "intake.answered" (answers sent,
	// before MarkSent), "dispatch.claimed" (after ClaimDue, before
	// sending), "dispatch.sent" (after a send, before MarkSent). Nil in
	// production.
	OnStep func(step string)
}

// Bot is the Telegram bot: one per process. Run does what the leader
// does; WebhookHandler serves on every instance.
type Bot struct {
	svc  Services
	opts Options
	log  *slog.Logger
	tg   *tgbot.Bot
	api  string       // <ServerURL>/bot<token>/
	hc   *http.Client // answers and management calls
	poll *http.Client // getUpdates: the long poll plus headroom
	lim  *limits
	disp *Dispatcher

	// handler replaces handle (engine tests).
	handler tgbot.HandlerFunc

	wakeup  chan struct{} // something was stored in the inbox
	running atomic.Bool
	stats   botStats

	// touched is when each Telegram account's link was last touched
	// (TouchLink at most once per touchEvery); pressed is each account's
	// last handled press of a button that acts (the double-tap guard).
	// Only the leader handles updates, so memory of this instance is
	// enough; a new leader starts with none.
	touched *perUser[struct{}]
	pressed *perUser[press]
}

// botStats are the bot's counters (Stats).
type botStats struct {
	polls, conflicts, tooMany, handled, failed, setAside, answered atomic.Int64
	lastPoll                                                       atomic.Int64 // unix nanoseconds
}

// Stats are counters for metrics and tests.
type Stats struct {
	Polls     int64     // getUpdates calls answered
	Conflicts int64     // getUpdates answered 409 (another poller, or a webhook is set)
	LastPoll  time.Time // last successful getUpdates (the poller heartbeat)
	TooMany   int64     // 429 answers to our sends (answers and notifications)
	Handled   int64     // updates handled (committed)
	Failed    int64     // failed handling attempts
	SetAside  int64     // updates set aside after MaxAttempts
	Answered  int64     // updates whose answers were all sent
}

// New makes a bot for the services (Inbox is required; Outbox, when set,
// is dispatched by Run). It does not call Telegram.
func New(svc Services, opts Options) (*Bot, error) {
	if strings.TrimSpace(opts.Token) == "" {
		return nil, errors.New("bot: no token")
	}
	if svc.Inbox == nil {
		return nil, errors.New("bot: no inbox")
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModePolling
	case ModePolling:
	case ModeWebhook:
		if opts.WebhookURL == "" {
			return nil, errors.New("bot: webhook mode needs a webhook URL")
		}
		if !validSecret(opts.WebhookSecret) {
			return nil, errors.New("bot: webhook mode needs a secret of 1-256 characters A-Z, a-z, 0-9, _ and -")
		}
	default:
		return nil, fmt.Errorf("bot: unknown mode %q (polling or webhook)", opts.Mode)
	}
	if opts.ServerURL == "" {
		opts.ServerURL = "https://api.telegram.org"
	}
	opts.ServerURL = strings.TrimRight(opts.ServerURL, "/")
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 30 * time.Second
	}
	opts.PollTimeout = min(opts.PollTimeout, 50*time.Second) // the Bot API's cap
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 200 * time.Millisecond
	}
	if opts.TimeUnit <= 0 {
		opts.TimeUnit = time.Second
	}
	if opts.Location == nil {
		if loc, err := time.LoadLocation("Europe/London"); err == nil {
			opts.Location = loc
		} else {
			opts.Location = time.UTC
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bot{svc: svc, opts: opts, log: opts.Logger,
		api:     opts.ServerURL + "/bot" + opts.Token + "/",
		lim:     newLimits(opts.TimeUnit, !opts.NoRateLimits),
		wakeup:  make(chan struct{}, 1),
		touched: newPerUser[struct{}](touchEvery),
		pressed: newPerUser[press](doubleTapWindow),
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        200,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	b.hc = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	// The long poll's own timeout plus headroom, so that an idle poll never
	// ends in a client timeout (checklist H4).
	b.poll = &http.Client{Transport: transport, Timeout: opts.PollTimeout + 20*time.Second}

	tg, err := tgbot.New(opts.Token,
		tgbot.WithServerURL(opts.ServerURL),
		tgbot.WithSkipGetMe(),
		tgbot.WithNotAsyncHandlers(),
		tgbot.WithHTTPClient(opts.PollTimeout, b.hc),
		tgbot.WithErrorsHandler(func(err error) { b.log.Error("telegram client", "err", err) }),
		tgbot.WithDefaultHandler(b.route),
	)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	b.tg = tg
	if svc.Outbox != nil {
		b.disp = NewDispatcher(svc.Outbox, tg, svc.Mailer, b.log.With("component", "dispatcher"),
			WithClock(opts.Now), WithTimeUnit(opts.TimeUnit), WithLocation(opts.Location),
			withLimits(b.lim), withStepHook(opts.OnStep))
	}
	return b, nil
}

// route is the library's handler: the handlers (handle), or the one a
// test set.
func (b *Bot) route(ctx context.Context, tg *tgbot.Bot, upd *models.Update) {
	if b.handler != nil {
		b.handler(ctx, tg, upd)
		return
	}
	b.handle(ctx, tg, upd)
}

// Client is the Bot API client (for reads such as getFile; answers are
// queued, not sent from handlers).
func (b *Bot) Client() *tgbot.Bot { return b.tg }

// Location is the time zone of the times shown in messages.
func (b *Bot) Location() *time.Location { return b.opts.Location }

// Now is the bot's clock.
func (b *Bot) Now() time.Time { return b.opts.Now() }

// Dispatcher is the notification dispatcher Run runs (nil without an
// outbox).
func (b *Bot) Dispatcher() *Dispatcher { return b.disp }

// Stats returns the bot's counters.
func (b *Bot) Stats() Stats {
	s := Stats{
		Polls: b.stats.polls.Load(), Conflicts: b.stats.conflicts.Load(), TooMany: b.stats.tooMany.Load(),
		Handled: b.stats.handled.Load(), Failed: b.stats.failed.Load(), SetAside: b.stats.setAside.Load(),
		Answered: b.stats.answered.Load(),
	}
	if n := b.stats.lastPoll.Load(); n != 0 {
		s.LastPoll = time.Unix(0, n)
	}
	if b.disp != nil {
		s.TooMany += b.disp.TooManyRequests()
	}
	return s
}

// Run does what the leader does until ctx ends: receive updates (polling
// mode: deleteWebhook, then getUpdates; webhook mode: setWebhook, the
// updates arriving through WebhookHandler on any instance), handle the
// inbox, send the answers (first those a crash left unsent) and dispatch
// the outbox. It returns nil when ctx ends. Run once at a time.
func (b *Bot) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bot: already running")
	}
	defer b.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	e := newEngine(b)
	// Answers committed before a crash go first, so that each chat's
	// answers keep their order.
	if err := e.sender.recover(ctx); err != nil {
		return nil // ctx ended
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.sender.markLoop(ctx) })
	wg.Go(func() { e.sender.sweep(ctx) })
	for range b.opts.Workers {
		wg.Go(func() { e.work(ctx) })
	}
	wg.Go(func() { e.load(ctx) })
	if b.opts.Mode == ModeWebhook {
		wg.Go(func() { b.setWebhook(ctx) })
	} else {
		wg.Go(func() { b.pollLoop(ctx) })
	}
	if b.disp != nil {
		wg.Go(func() { _ = b.disp.Run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	e.sender.wait()
	return nil
}

// Lead runs the bot whenever this instance leads, until ctx ends: of
// several instances under the same leadership, one polls, handles and
// sends at a time; the others stand by and take over when it goes.
func (b *Bot) Lead(ctx context.Context, l fieldops.Leadership) error {
	for ctx.Err() == nil {
		if err := l.Lead(ctx, b.Run); err != nil && ctx.Err() == nil {
			b.log.Error("leadership", "err", err)
			if sleep(ctx, time.Second) != nil {
				break
			}
		}
	}
	return nil
}

// step calls the test hook.
func (b *Bot) step(name string) {
	if b.opts.OnStep != nil {
		b.opts.OnStep(name)
	}
}

// wake tells the loader that the inbox has something new.
func (b *Bot) wake() {
	select {
	case b.wakeup <- struct{}{}:
	default:
	}
}
