package bot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	tgbot "github.com/go-telegram/bot"

	"github.com/fieldops/fieldops"
)

// Dispatcher sends the queued notifications: by Telegram to members with
// an active link, by e-mail to the others and to e-mail-only rows. It
// keeps within Telegram's flood limits by construction (see limits: a
// global token bucket of 25/s with a burst of 5, one send a second per
// chat, 20 a minute per group), with limiters that a Bot shares with its
// answers to updates. The limiters live in this process, which is exact
// because only one dispatcher runs (the caller holds leadership).
//
// A 429 pauses every send for retry_after and the message is retried; a
// 403 (the user blocked the bot) unlinks the member's chat and the
// message goes by e-mail; other failures are retried with exponential
// backoff and given up after MaxAttempts. Messages are claimed before
// sending, so after a crash they come back once the claim times out.
type Dispatcher struct {
	outbox fieldops.Outbox
	tg     *tgbot.Bot
	mailer fieldops.Mailer
	log    *slog.Logger

	now         func() time.Time
	unit        time.Duration // a Telegram "second": rates and retry_after
	batch       int
	poll        time.Duration
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	loc         *time.Location
	noLimits    bool
	lim         *limits           // shared with the Bot's answers when it made the dispatcher
	step        func(step string) // test hook (Options.OnStep)

	tooMany atomic.Int64
	sent    atomic.Int64
}

// DispatchOption configures a Dispatcher.
type DispatchOption func(*Dispatcher)

// WithClock sets the clock used for claims, retries and the times
// recorded (time.Now by default). The limiters and pauses use the wall
// clock.
func WithClock(now func() time.Time) DispatchOption { return func(d *Dispatcher) { d.now = now } }

// WithTimeUnit sets the length of a Telegram second (1 s by default): the
// limiter rates are per unit and retry_after counts units. Tests pass the
// local Bot API server's RetryAfterUnit().
func WithTimeUnit(unit time.Duration) DispatchOption {
	return func(d *Dispatcher) {
		if unit > 0 {
			d.unit = unit
		}
	}
}

// WithBatchSize sets how many messages one pass claims (100 by default).
func WithBatchSize(n int) DispatchOption { return func(d *Dispatcher) { d.batch = max(n, 1) } }

// WithPollInterval sets Run's pause when nothing is due (1 s by default).
func WithPollInterval(p time.Duration) DispatchOption { return func(d *Dispatcher) { d.poll = p } }

// WithMaxAttempts sets after how many failed attempts a message is given
// up (8 by default).
func WithMaxAttempts(n int) DispatchOption { return func(d *Dispatcher) { d.maxAttempts = max(n, 1) } }

// WithBackoff sets the first retry delay and its cap (1 s and 10 min by
// default); the delay doubles with each attempt.
func WithBackoff(first, limit time.Duration) DispatchOption {
	return func(d *Dispatcher) { d.backoff, d.maxBackoff = first, limit }
}

// WithLocation sets the time zone of the times in message texts
// (Europe/London by default, UTC if it is not available).
func WithLocation(loc *time.Location) DispatchOption { return func(d *Dispatcher) { d.loc = loc } }

// WithoutRateLimits turns the limiters off (tests that want 429s).
func WithoutRateLimits() DispatchOption { return func(d *Dispatcher) { d.noLimits = true } }

// withLimits makes the dispatcher use limiters shared with other senders.
func withLimits(l *limits) DispatchOption { return func(d *Dispatcher) { d.lim = l } }

// withStepHook sets the hook called at "dispatch.claimed" (after a claim,
// before sending) and "dispatch.sent" (after a send, before recording it).
func withStepHook(fn func(step string)) DispatchOption { return func(d *Dispatcher) { d.step = fn } }

// NewDispatcher returns a dispatcher reading outbox and sending through
// tg and mailer (nil when e-mail is not configured).
func NewDispatcher(outbox fieldops.Outbox, tg *tgbot.Bot, mailer fieldops.Mailer, logger *slog.Logger, opts ...DispatchOption) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{outbox: outbox, tg: tg, mailer: mailer, log: logger,
		now: time.Now, unit: time.Second, batch: 100, poll: time.Second, maxAttempts: 8,
		backoff: time.Second, maxBackoff: 10 * time.Minute}
	if loc, err := time.LoadLocation("Europe/London"); err == nil {
		d.loc = loc
	} else {
		d.loc = time.UTC
	}
	for _, o := range opts {
		o(d)
	}
	if d.lim == nil {
		d.lim = newLimits(d.unit, !d.noLimits)
	}
	return d
}

// TooManyRequests is the number of 429 answers received (the
// telegram_429_total metric); it stays 0 in steady state.
func (d *Dispatcher) TooManyRequests() int64 { return d.tooMany.Load() }

// Sent is the number of messages delivered.
func (d *Dispatcher) Sent() int64 { return d.sent.Load() }

// Run sends due messages until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		n, err := d.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Error("notification dispatch", "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d.poll):
			}
		}
	}
}

// RunOnce claims one batch of due messages and sends it, each chat's
// messages in order and the chats side by side. It returns how many
// messages it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	msgs, err := d.outbox.ClaimDue(ctx, d.now(), d.batch)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	d.onStep("dispatch.claimed")
	var (
		byChat = map[int64][]*fieldops.OutboundMessage{}
		order  []int64
		mail   []*fieldops.OutboundMessage
	)
	for _, m := range msgs {
		if m.Channel == fieldops.ViaTelegram && m.ChatID != 0 {
			if _, ok := byChat[m.ChatID]; !ok {
				order = append(order, m.ChatID)
			}
			byChat[m.ChatID] = append(byChat[m.ChatID], m)
			continue
		}
		mail = append(mail, m)
	}
	var wg sync.WaitGroup
	for _, chat := range order {
		wg.Go(func() {
			for _, m := range byChat[chat] {
				if ctx.Err() != nil {
					return // left claimed: it comes back after the claim timeout
				}
				d.sendTelegram(ctx, m)
			}
		})
	}
	wg.Go(func() {
		for _, m := range mail {
			if ctx.Err() != nil {
				return
			}
			d.sendEmail(ctx, m, "")
		}
	})
	wg.Wait()
	return len(msgs), ctx.Err()
}

func (d *Dispatcher) sendTelegram(ctx context.Context, m *fieldops.OutboundMessage) {
	_, text := Render(m, d.loc)
	if err := d.lim.acquire(ctx, m.ChatID); err != nil {
		return
	}
	_, err := d.tg.SendMessage(ctx, &tgbot.SendMessageParams{ChatID: m.ChatID, Text: text})
	d.lim.release(m.ChatID)
	if ctx.Err() != nil && err != nil {
		return // shutting down: the claim expires and the message comes back
	}
	var tooMany *tgbot.TooManyRequestsError
	switch {
	case err == nil:
		d.sent.Add(1)
		d.onStep("dispatch.sent")
		d.mark(ctx, m, d.outbox.MarkSent(context.WithoutCancel(ctx), m.ID, fieldops.ViaTelegram, d.now()))
	case errors.As(err, &tooMany):
		d.tooMany.Add(1)
		wait := d.lim.retryAfter(tooMany.RetryAfter)
		d.lim.pause(wait)
		d.log.Warn("telegram 429: pausing all sends", "retry_after", tooMany.RetryAfter, "notification", m.ID)
		d.mark(ctx, m, d.outbox.MarkRetry(context.WithoutCancel(ctx), m.ID, err.Error(), d.now().Add(wait)))
	case errors.Is(err, tgbot.ErrorForbidden):
		// The user blocked the bot (or deleted the account): stop using
		// the chat and send this message by e-mail.
		d.log.Info("telegram chat blocked: unlinking", "org", m.OrgID, "user", m.UserID, "err", err)
		d.mark(ctx, m, d.outbox.MarkBlocked(context.WithoutCancel(ctx), m.OrgID, m.UserID, d.now()))
		d.sendEmail(ctx, m, "telegram: "+err.Error()+"; ")
	case errors.Is(err, tgbot.ErrorBadRequest):
		// The request itself is wrong (chat not found, bad text): retrying
		// cannot help.
		d.mark(ctx, m, d.outbox.MarkFailed(context.WithoutCancel(ctx), m.ID, err.Error(), d.now()))
	default:
		d.retry(ctx, m, err.Error())
	}
}

func (d *Dispatcher) sendEmail(ctx context.Context, m *fieldops.OutboundMessage, prior string) {
	to := m.EmailTo
	if to == "" {
		to = m.Email
	}
	if d.mailer == nil || to == "" {
		d.mark(ctx, m, d.outbox.MarkFailed(context.WithoutCancel(ctx), m.ID, prior+"no Telegram link and no e-mail configured", d.now()))
		return
	}
	subject, text := Render(m, d.loc)
	body := text
	if m.Name != "" {
		body = "Hello " + m.Name + ",\n\n" + text
	}
	if m.Channel != fieldops.ViaEmail { // security notices are e-mail by design
		body += "\n\nLink your Telegram account in fieldops to get these messages in Telegram."
	}
	err := d.mailer.Send(ctx, fieldops.Mail{To: to, Subject: "fieldops: " + subject, Text: body})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		d.retry(ctx, m, prior+"e-mail: "+err.Error())
		return
	}
	d.sent.Add(1)
	d.onStep("dispatch.sent")
	d.mark(ctx, m, d.outbox.MarkSent(context.WithoutCancel(ctx), m.ID, fieldops.ViaEmail, d.now()))
}

// retry schedules another attempt with exponential backoff, or gives the
// message up after maxAttempts.
func (d *Dispatcher) retry(ctx context.Context, m *fieldops.OutboundMessage, errText string) {
	if m.Attempts+1 >= d.maxAttempts {
		d.log.Warn("notification given up", "notification", m.ID, "attempts", m.Attempts+1, "err", errText)
		d.mark(ctx, m, d.outbox.MarkFailed(context.WithoutCancel(ctx), m.ID, errText, d.now()))
		return
	}
	d.mark(ctx, m, d.outbox.MarkRetry(context.WithoutCancel(ctx), m.ID, errText, d.now().Add(Backoff(m.Attempts, d.backoff, d.maxBackoff))))
}

// Backoff returns the delay before retry number attempts+1: first,
// doubled per earlier attempt, capped at limit.
func Backoff(attempts int, first, limit time.Duration) time.Duration {
	b := first
	for i := 0; i < attempts && b < limit; i++ {
		b *= 2
	}
	return min(b, limit)
}

// mark logs a failure to record an outcome. Outcomes are recorded even
// when ctx ends (context.WithoutCancel): a message sent and not marked
// would be sent again.
func (d *Dispatcher) mark(_ context.Context, m *fieldops.OutboundMessage, err error) {
	if err != nil {
		// The claim runs out and the message is tried again.
		d.log.Error("notification: recording the outcome", "notification", m.ID, "err", err)
	}
}

func (d *Dispatcher) onStep(step string) {
	if d.step != nil {
		d.step(step)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
