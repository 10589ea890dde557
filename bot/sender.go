package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldops/fieldops"
)

// How the sender retries.
const (
	maxSendAttempts = 8  // transport errors and 5xx, per call
	maxTooMany      = 20 // 429s, per call
	recoverLimit    = 1000
	sweepEvery      = 10 * time.Second
	markTimeout     = 5 * time.Second
)

// textSetAside is what a user is told when their update is set aside.
const textSetAside = "Sorry, something went wrong on our side with that message. It has been reported; please try again later."

// errBlocked is a 403: the user blocked the bot (or the chat is gone).
var errBlocked = errors.New("telegram: the bot is blocked in this chat")

// sender sends the answers of handled updates after their commit, then
// records them sent (Inbox.MarkSent, batched). Callback answers go at
// once; the other calls of a chat go in order, one update after the
// other, within the limits shared with the Dispatcher; chats go side by
// side. An answer not recorded sent when the process stops is sent again
// by the next Run (Unsent): at least once.
type sender struct {
	b *Bot

	mu       sync.Mutex
	chats    map[int64]*chatAnswers
	inflight map[int64]bool      // updates queued, in sending, or sent and not yet recorded
	marked   map[int64]time.Time // recorded sent lately: a read begun before may still list them
	toMark   []int64
	markWake chan struct{}
	wg       sync.WaitGroup
}

// chatAnswers are the answers waiting for one chat.
type chatAnswers struct {
	parts   []answerPart
	running bool
}

// answerJob is one update's answers; it is done when each of its parts
// (callback answers; the rest) is.
type answerJob struct {
	updateID int64 // 0: not an update's (not recorded)
	parts    atomic.Int32
}

type answerPart struct {
	job   *answerJob
	calls []fieldops.BotCall
}

func newSender(b *Bot) *sender {
	return &sender{b: b, chats: map[int64]*chatAnswers{}, inflight: map[int64]bool{}, marked: map[int64]time.Time{},
		markWake: make(chan struct{}, 1)}
}

// recover queues the answers a previous run committed and did not record
// sent, oldest first. It returns an error only when ctx ends.
func (s *sender) recover(ctx context.Context) error {
	var unsent []fieldops.PendingCalls
	if err := s.b.retry(ctx, "reading unsent answers", func() error {
		var err error
		unsent, err = s.b.svc.Inbox.Unsent(ctx, recoverLimit)
		return err
	}); err != nil {
		return err
	}
	if len(unsent) > 0 {
		s.b.log.Info("sending answers left unsent", "updates", len(unsent))
	}
	for _, p := range unsent {
		s.enqueue(ctx, p)
	}
	return nil
}

// sweep queues, now and then, answers left unsent that are not in hand:
// those beyond the first recoverLimit after a crash.
func (s *sender) sweep(ctx context.Context) {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		unsent, err := s.b.svc.Inbox.Unsent(ctx, recoverLimit)
		if err != nil {
			if ctx.Err() == nil {
				s.b.log.Warn("reading unsent answers", "err", err)
			}
			continue
		}
		s.mu.Lock()
		for id, at := range s.marked {
			if time.Since(at) > 2*sweepEvery {
				delete(s.marked, id)
			}
		}
		s.mu.Unlock()
		for _, p := range unsent {
			s.mu.Lock()
			_, recent := s.marked[p.UpdateID]
			s.mu.Unlock()
			if !recent {
				s.enqueue(ctx, p)
			}
		}
	}
}

// enqueue queues an update's answers.
func (s *sender) enqueue(ctx context.Context, p fieldops.PendingCalls) {
	var callbacks, rest []fieldops.BotCall
	for _, c := range p.Calls {
		if c.Method == "answerCallbackQuery" {
			callbacks = append(callbacks, c)
		} else {
			rest = append(rest, c)
		}
	}
	job := &answerJob{updateID: p.UpdateID}
	s.mu.Lock()
	if p.UpdateID != 0 {
		if s.inflight[p.UpdateID] {
			s.mu.Unlock()
			return
		}
		s.inflight[p.UpdateID] = true
	}
	if len(callbacks) > 0 {
		job.parts.Add(1)
	}
	if len(rest) > 0 {
		job.parts.Add(1)
		s.queueLocked(ctx, p.ChatID, answerPart{job: job, calls: rest})
	}
	s.mu.Unlock()
	switch {
	case len(callbacks) > 0:
		s.wg.Go(func() {
			for _, c := range callbacks {
				if s.sendCall(ctx, c) != nil && ctx.Err() != nil {
					return
				}
			}
			s.partDone(job)
		})
	case len(rest) == 0:
		s.done(job) // nothing to send
	}
}

// apologise tells a user that their update was set aside (not durable;
// private chats only).
func (s *sender) apologise(ctx context.Context, chat int64) {
	if chat <= 0 {
		return
	}
	job := &answerJob{}
	job.parts.Store(1)
	call := fieldops.BotCall{Method: "sendMessage", Params: map[string]any{"chat_id": chat, "text": textSetAside}}
	s.mu.Lock()
	s.queueLocked(ctx, chat, answerPart{job: job, calls: []fieldops.BotCall{call}})
	s.mu.Unlock()
}

func (s *sender) queueLocked(ctx context.Context, chat int64, part answerPart) {
	q := s.chats[chat]
	if q == nil {
		q = &chatAnswers{}
		s.chats[chat] = q
	}
	q.parts = append(q.parts, part)
	if !q.running {
		q.running = true
		s.wg.Go(func() { s.drain(ctx, chat) })
	}
}

// drain sends a chat's queued answers in order until none is left.
func (s *sender) drain(ctx context.Context, chat int64) {
	for {
		s.mu.Lock()
		q := s.chats[chat]
		if len(q.parts) == 0 || ctx.Err() != nil {
			// Left unsent when ctx ended: the next run sends them.
			delete(s.chats, chat)
			s.mu.Unlock()
			return
		}
		part := q.parts[0]
		q.parts = q.parts[1:]
		s.mu.Unlock()

		blocked := map[int64]bool{}
		complete := true
		for _, c := range part.calls {
			target := callChat(c)
			if blocked[target] {
				continue
			}
			err := s.sendCall(ctx, c)
			if ctx.Err() != nil {
				complete = false
				break
			}
			if errors.Is(err, errBlocked) {
				blocked[target] = true
				s.blocked(ctx, target)
			}
		}
		if complete {
			s.partDone(part.job)
		}
	}
}

func (s *sender) partDone(job *answerJob) {
	if job.parts.Add(-1) == 0 {
		s.done(job)
	}
}

// done records that an update's answers were all sent (or given up).
func (s *sender) done(job *answerJob) {
	if job.updateID == 0 {
		return
	}
	s.b.step("intake.answered")
	s.b.stats.answered.Add(1)
	s.mu.Lock()
	s.toMark = append(s.toMark, job.updateID)
	s.mu.Unlock()
	select {
	case s.markWake <- struct{}{}:
	default:
	}
}

// markLoop records sent answers in batches until ctx ends.
func (s *sender) markLoop(ctx context.Context) {
	pause := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.markWake:
		}
		for {
			err := s.flush(ctx)
			if err == nil {
				pause.reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := pause.next()
			s.b.log.Error("recording answers sent", "err", err, "retry_in", wait)
			if sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// flush records the answers sent so far; on failure they stay queued.
func (s *sender) flush(ctx context.Context) error {
	s.mu.Lock()
	ids := s.toMark
	s.toMark = nil
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if err := s.b.svc.Inbox.MarkSent(ctx, ids); err != nil {
		s.mu.Lock()
		s.toMark = append(ids, s.toMark...)
		s.mu.Unlock()
		return err
	}
	now := time.Now()
	s.mu.Lock()
	for _, id := range ids {
		delete(s.inflight, id)
		s.marked[id] = now
	}
	s.mu.Unlock()
	return nil
}

// wait waits for the sends in flight to stop (ctx has ended) and records
// what was sent, so that it is not sent again.
func (s *sender) wait() {
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), markTimeout)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		s.b.log.Warn("recording answers sent at shutdown; they will be sent again", "err", err)
	}
}

// sendCall makes one queued Bot API call. Sends wait for the limiters; a
// 429 pauses every send for retry_after and the call is repeated; a 403
// is errBlocked; other refusals (400: "message is not modified", a
// callback query too old...) are dropped, as retrying cannot help;
// transport errors and 5xx are retried with backoff, a bounded number of
// times (callback answers are not retried: Telegram may have applied
// them). It returns an error when the call was not made.
func (s *sender) sendCall(ctx context.Context, c fieldops.BotCall) error {
	b := s.b
	body, err := json.Marshal(c.Params)
	if err != nil {
		b.log.Error("answer dropped: cannot encode it", "method", c.Method, "err", err)
		return err
	}
	chat := callChat(c)
	limited := isSend(c.Method)
	delay := b.opts.RetryBackoff
	var transient, tooMany int
	for {
		if limited {
			if err := b.lim.acquire(ctx, chat); err != nil {
				return err
			}
		}
		err := b.post(ctx, b.hc, c.Method, body, nil)
		if limited {
			b.lim.release(chat)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *apiError
		if errors.As(err, &ae) {
			switch ae.Code {
			case http.StatusTooManyRequests:
				b.stats.tooMany.Add(1)
				tooMany++
				wait := b.lim.retryAfter(ae.RetryAfter)
				b.log.Warn("telegram 429: pausing sends", "method", c.Method, "retry_after", ae.RetryAfter)
				if tooMany > maxTooMany {
					b.log.Error("answer dropped after repeated 429s", "method", c.Method, "chat", chat)
					return err
				}
				if limited {
					b.lim.pause(wait)
				} else if sleep(ctx, wait) != nil {
					return ctx.Err()
				}
				continue
			case http.StatusForbidden:
				b.log.Info("answer not delivered: the bot is blocked", "method", c.Method, "chat", chat)
				return errBlocked
			case http.StatusBadRequest:
				if harmless(ae.Description) {
					b.log.Debug("answer refused, harmless", "method", c.Method, "err", err)
				} else {
					b.log.Warn("answer refused by telegram", "method", c.Method, "chat", chat, "err", err)
				}
				return err
			}
		}
		transient++
		if c.Method == "answerCallbackQuery" || transient >= maxSendAttempts {
			b.log.Error("answer given up", "method", c.Method, "chat", chat, "attempts", transient, "err", err)
			return err
		}
		b.log.Warn("answer failed, retrying", "method", c.Method, "chat", chat, "attempt", transient, "err", err)
		if sleep(ctx, jitter(delay)) != nil {
			return ctx.Err()
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// blocked records that a private chat's user blocked the bot: their
// links are marked blocked, so that notifications go by e-mail.
func (s *sender) blocked(ctx context.Context, chat int64) {
	b := s.b
	if chat > 0 {
		b.touched.forget(chat) // its next message touches the link, which brings it back
	}
	if chat <= 0 || b.svc.Telegram == nil || b.svc.Outbox == nil {
		return
	}
	link, choices, err := b.svc.Telegram.Resolve(ctx, chat) // a private chat's id is the user's
	if err != nil {
		if fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED {
			b.log.Warn("blocked chat: resolving its link", "chat", chat, "err", err)
		}
		return
	}
	if len(choices) == 0 && link != nil {
		choices = []*fieldops.TelegramLink{link}
	}
	for _, l := range choices {
		if err := b.svc.Outbox.MarkBlocked(ctx, l.OrgID, l.UserID, b.Now()); err != nil {
			b.log.Warn("blocked chat: marking the link", "org", l.OrgID, "user", l.UserID, "err", err)
		}
	}
}

// harmless are refusals that need no attention: the edit changed
// nothing, the callback query is too old to answer (after a restart).
func harmless(desc string) bool {
	for _, s := range []string{"message is not modified", "query is too old", "query ID is invalid"} {
		if strings.Contains(desc, s) {
			return true
		}
	}
	return false
}

// isSend reports whether a method sends a message, which Telegram's flood
// limits count (edits and callback answers do not).
func isSend(method string) bool {
	switch method {
	case "sendChatAction":
		return false
	case "copyMessage", "copyMessages", "forwardMessage", "forwardMessages":
		return true
	}
	return strings.HasPrefix(method, "send")
}

// callChat is the chat a call goes to (0 when it names none, or names a
// channel by @username).
func callChat(c fieldops.BotCall) int64 {
	switch v := c.Params["chat_id"].(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
