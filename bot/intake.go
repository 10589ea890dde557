package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops"
)

// allowedUpdates are the kinds of update the bot asks for (checklist G7).
var allowedUpdates = []string{
	models.AllowedUpdateMessage, models.AllowedUpdateEditedMessage,
	models.AllowedUpdateCallbackQuery, models.AllowedUpdateMyChatMember,
}

// Sizes of the intake.
const (
	pollLimit     = 100              // updates per getUpdates
	loadLimit     = 500              // updates per Pending
	maxQueued     = 2000             // updates queued in memory before the loader waits
	rescanEvery   = 3 * time.Second  // Pending from the start, for stragglers
	loadEvery     = time.Second      // Pending when nobody wakes the loader
	forgetDone    = 30 * time.Second // how long a handled update stays known
	maxInfraPause = 5 * time.Second  // longest pause while the database is away
	maxInfraWait  = 10 * time.Minute // then an update's "unavailable" counts as a failure
)

// engine is the state of one Run: the loader's bookkeeping, the chats'
// queues and the answer sender.
//
// Updates wait in one queue per chat. A chat with updates and none in
// hand is ready; each of the Workers takes the chat that has been ready
// longest and handles its next update, so that a chat's updates are
// handled one after the other in update_id order, Workers chats go on in
// parallel, and no worker idles while a chat waits (unlike fixed shards
// by hash of the chat, where a busy or stuck chat holds up the others of
// its shard).
type engine struct {
	b      *Bot
	sender *sender

	mu     sync.Mutex
	known  map[int64]time.Time // queued or in hand (zero), or finished at
	cursor int64               // Pending reads after it: the highest update queued, unless stragglers were found below
	chats  map[int64]*chatQueue
	ready  []int64 // chats ready, oldest first
	queued int
	more   chan struct{} // a chat became ready
	space  chan struct{} // the queues went below maxQueued
}

// chatQueue is one chat's updates waiting, and whether one is in hand.
type chatQueue struct {
	ups  []*fieldops.InboundUpdate
	busy bool
}

func newEngine(b *Bot) *engine {
	return &engine{b: b, sender: newSender(b), known: map[int64]time.Time{}, chats: map[int64]*chatQueue{},
		more: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// ---- Polling ----

// pollLoop long-polls getUpdates and stores each batch with the next
// offset before asking for more: the offset confirms an update to
// Telegram only once it is in the inbox.
func (b *Bot) pollLoop(ctx context.Context) {
	if err := b.retry(ctx, "deleteWebhook", func() error {
		_, err := b.call(ctx, "deleteWebhook", map[string]any{"drop_pending_updates": false})
		return err
	}); err != nil {
		return
	}
	var offset int64
	if err := b.retry(ctx, "read the update offset", func() error {
		var err error
		offset, err = b.svc.Inbox.NextOffset(ctx)
		return err
	}); err != nil {
		return
	}
	pause := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		raws, err := b.getUpdates(ctx, offset)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := pause.next()
			var apiErr *apiError
			switch {
			case errors.As(err, &apiErr) && apiErr.Code == http.StatusConflict:
				// Another poller, or a webhook is set: an alert, not a
				// silent retry loop (checklist G3).
				b.stats.conflicts.Add(1)
				b.log.Error("getUpdates conflict: another instance polls or a webhook is set", "err", err)
				wait = max(wait, time.Second)
			case errors.As(err, &apiErr) && apiErr.Code == http.StatusUnauthorized:
				b.log.Error("getUpdates: the bot token was refused", "err", err)
				wait = 30 * time.Second
			default:
				b.log.Warn("getUpdates", "err", err, "retry_in", wait)
			}
			if sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		b.stats.polls.Add(1)
		b.stats.lastPoll.Store(time.Now().UnixNano())
		if len(raws) == 0 {
			pause.reset()
			if b.opts.PollTimeout < time.Second && sleep(ctx, 100*time.Millisecond) != nil {
				return
			}
			continue
		}
		b.step("intake.fetched")
		batch, last := inboundBatch(raws, b)
		if last < offset-1 {
			// After a week without updates Telegram numbers them afresh
			// from a random id (checklist G2): follow it.
			b.log.Warn("update ids went back: re-basing the offset", "offset", offset, "update_id", last)
		}
		next := last + 1
		if len(batch) == 0 {
			next = offset // nothing readable; should not happen
		}
		if err := b.svc.Inbox.Store(ctx, batch, next); err != nil {
			// The offset stays: Telegram keeps the batch and sends it again.
			if ctx.Err() != nil {
				return
			}
			wait := pause.next()
			b.log.Error("storing updates", "err", err, "updates", len(batch), "retry_in", wait)
			if sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		b.step("intake.stored")
		pause.reset()
		offset = next
		b.wake()
	}
}

// getUpdates asks for the updates from offset. The library has no public
// getUpdates (its poller confirms updates before they are handled), so
// this is a plain Bot API call that keeps each update's JSON.
func (b *Bot) getUpdates(ctx context.Context, offset int64) ([]json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{
		"offset": offset, "limit": pollLimit, "timeout": int(b.opts.PollTimeout / time.Second),
		"allowed_updates": allowedUpdates,
	})
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	if err := b.post(ctx, b.poll, "getUpdates", body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// updateHead is what the inbox needs of an update: its id, chat and sender.
type updateHead struct {
	ID                int64        `json:"update_id"`
	Message           *messageHead `json:"message"`
	EditedMessage     *messageHead `json:"edited_message"`
	ChannelPost       *messageHead `json:"channel_post"`
	EditedChannelPost *messageHead `json:"edited_channel_post"`
	CallbackQuery     *struct {
		From    idHead       `json:"from"`
		Message *messageHead `json:"message"`
	} `json:"callback_query"`
	MyChatMember *struct {
		Chat idHead `json:"chat"`
		From idHead `json:"from"`
	} `json:"my_chat_member"`
}

type idHead struct {
	ID int64 `json:"id"`
}

type messageHead struct {
	Chat idHead  `json:"chat"`
	From *idHead `json:"from"`
}

// inboundOf reads an update's id, chat and sender.
func inboundOf(raw []byte) (fieldops.InboundUpdate, error) {
	var h updateHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return fieldops.InboundUpdate{}, fmt.Errorf("decode update: %w", err)
	}
	if h.ID <= 0 {
		return fieldops.InboundUpdate{}, errors.New("decode update: no update_id")
	}
	u := fieldops.InboundUpdate{UpdateID: h.ID, Payload: raw}
	msg := h.Message
	for _, m := range []*messageHead{h.EditedMessage, h.ChannelPost, h.EditedChannelPost} {
		if msg == nil {
			msg = m
		}
	}
	switch {
	case msg != nil:
		u.ChatID = msg.Chat.ID
		if msg.From != nil {
			u.TelegramUserID = msg.From.ID
		}
	case h.CallbackQuery != nil:
		u.TelegramUserID = h.CallbackQuery.From.ID
		if h.CallbackQuery.Message != nil && h.CallbackQuery.Message.Chat.ID != 0 {
			u.ChatID = h.CallbackQuery.Message.Chat.ID
		} else {
			u.ChatID = h.CallbackQuery.From.ID // an inline message: answer privately
		}
	case h.MyChatMember != nil:
		u.ChatID, u.TelegramUserID = h.MyChatMember.Chat.ID, h.MyChatMember.From.ID
	}
	return u, nil
}

// inboundBatch reads a getUpdates batch; last is the highest update_id.
func inboundBatch(raws []json.RawMessage, b *Bot) (batch []fieldops.InboundUpdate, last int64) {
	batch = make([]fieldops.InboundUpdate, 0, len(raws))
	for _, raw := range raws {
		u, err := inboundOf(raw)
		if err != nil {
			b.log.Error("unreadable update skipped", "err", err)
			continue
		}
		batch = append(batch, u)
		last = max(last, u.UpdateID)
	}
	return batch, last
}

// ---- Loading and scheduling ----

// load moves pending updates from the inbox to the chats' queues, in
// update_id order. It reads after the highest update it has seen when
// woken (or every second), and from the start now and then for updates
// stored out of order (concurrent webhook deliveries, ids re-based by
// Telegram).
func (e *engine) load(ctx context.Context) {
	rescan := time.Now().Add(rescanEvery)
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		if !e.waitSpace(ctx) {
			return
		}
		e.mu.Lock()
		after := e.cursor
		e.mu.Unlock()
		rescanning := time.Now().After(rescan)
		if rescanning {
			after, rescan = 0, time.Now().Add(rescanEvery)
			e.forget()
		}
		ups, err := e.b.svc.Inbox.Pending(ctx, after, loadLimit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.b.log.Error("reading the inbox", "err", err)
			if sleep(ctx, time.Second) != nil {
				return
			}
			continue
		}
		e.mu.Lock()
		before, back := e.cursor, int64(0)
		for _, u := range ups {
			if e.pushLocked(u) && rescanning && u.UpdateID < before {
				back = max(back, u.UpdateID)
			}
		}
		if back > 0 {
			// Stored below the cursor (a webhook delivery overtaken by a
			// later one, or ids re-based by Telegram): read on from there.
			e.cursor = back
		}
		e.mu.Unlock()
		if len(ups) == loadLimit {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-e.b.wakeup:
		case <-tick.C:
		}
	}
}

// pushLocked queues an update for its chat, unless it is already queued,
// in hand or recently finished (a read that began before it finished). It
// reports whether it queued it.
func (e *engine) pushLocked(u *fieldops.InboundUpdate) bool {
	e.cursor = max(e.cursor, u.UpdateID)
	if _, ok := e.known[u.UpdateID]; ok {
		return false
	}
	e.known[u.UpdateID] = time.Time{}
	q := e.chats[u.ChatID]
	if q == nil {
		q = &chatQueue{}
		e.chats[u.ChatID] = q
	}
	q.ups = append(q.ups, u)
	e.queued++
	if !q.busy && len(q.ups) == 1 {
		e.ready = append(e.ready, u.ChatID)
		signal(e.more)
	}
	return true
}

// next waits for a ready chat and takes its next update.
func (e *engine) next(ctx context.Context) (*fieldops.InboundUpdate, bool) {
	for {
		e.mu.Lock()
		if len(e.ready) > 0 {
			chat := e.ready[0]
			e.ready = e.ready[1:]
			q := e.chats[chat]
			u := q.ups[0]
			q.ups = q.ups[1:]
			q.busy = true
			e.queued--
			if len(e.ready) > 0 {
				signal(e.more) // wake another worker
			}
			if e.queued < maxQueued {
				signal(e.space)
			}
			e.mu.Unlock()
			return u, true
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-e.more:
		}
	}
}

// finish records that an update is done with and frees its chat.
func (e *engine) finish(u *fieldops.InboundUpdate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.known[u.UpdateID] = time.Now()
	q := e.chats[u.ChatID]
	q.busy = false
	if len(q.ups) > 0 {
		e.ready = append(e.ready, u.ChatID)
		signal(e.more)
	} else {
		delete(e.chats, u.ChatID)
	}
}

// waitSpace waits while maxQueued updates are queued.
func (e *engine) waitSpace(ctx context.Context) bool {
	for {
		e.mu.Lock()
		full := e.queued >= maxQueued
		e.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-e.space:
		}
	}
}

// forget drops updates finished long enough ago that no read still in
// flight can return them as pending.
func (e *engine) forget() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, at := range e.known {
		if !at.IsZero() && time.Since(at) > forgetDone {
			delete(e.known, id)
		}
	}
}

// signal wakes a waiter on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ---- Handling ----

// work handles updates, one at a time, until ctx ends.
func (e *engine) work(ctx context.Context) {
	for {
		u, ok := e.next(ctx)
		if !ok {
			return
		}
		e.handle(ctx, u)
		e.finish(u)
	}
}

// handle handles one update: in one transaction with its answers, retried
// with backoff, and set aside after MaxAttempts failed attempts so that
// the chat is not blocked for ever. A database that cannot be reached is
// not the update's fault: the attempt is not counted and the chat waits
// (for up to maxInfraWait, after which such failures count too).
func (e *engine) handle(ctx context.Context, u *fieldops.InboundUpdate) {
	b := e.b
	attempts := u.Attempts
	delay := b.opts.RetryBackoff
	infraDelay := b.opts.RetryBackoff
	var infraSince time.Time
	infra := func() bool { // waits; false when ctx ended
		if infraSince.IsZero() {
			infraSince = time.Now()
		}
		if sleep(ctx, jitter(infraDelay)) != nil {
			return false
		}
		infraDelay = min(infraDelay*2, maxInfraPause)
		return true
	}
	for {
		calls, ran, err := e.handleOnce(ctx, u)
		if err == nil {
			if !ran {
				return // already handled (a duplicate read)
			}
			b.stats.handled.Add(1)
			b.step("intake.committed")
			e.sender.enqueue(ctx, fieldops.PendingCalls{UpdateID: u.UpdateID, ChatID: u.ChatID, Calls: calls})
			return
		}
		if ctx.Err() != nil {
			return // rolled back; handled by the next leader
		}
		if unavailable(err) && (infraSince.IsZero() || time.Since(infraSince) < maxInfraWait) {
			b.log.Warn("update waits: a backing service is unavailable", "update", u.UpdateID, "err", err)
			if !infra() {
				return
			}
			continue
		}
		last := attempts+1 >= b.opts.MaxAttempts
		if ferr := b.svc.Inbox.Failed(ctx, u.UpdateID, errorText(err), last); ferr != nil {
			// Cannot even record the failure: the database is away. Not
			// counted; try again when it is back.
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("update waits: cannot record a failed attempt", "update", u.UpdateID, "err", err, "record_err", ferr)
			if !infra() {
				return
			}
			continue
		}
		attempts++
		b.stats.failed.Add(1)
		var pe *panicError
		if errors.As(err, &pe) {
			b.log.Error("handler panicked", "update", u.UpdateID, "attempt", attempts, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		} else {
			b.log.Error("handling update failed", "update", u.UpdateID, "attempt", attempts, "err", err)
		}
		if last {
			b.stats.setAside.Add(1)
			b.log.Error("update set aside", "update", u.UpdateID, "attempts", attempts)
			e.sender.apologise(ctx, u.ChatID)
			return
		}
		if sleep(ctx, jitter(delay)) != nil {
			return
		}
		delay *= 2
	}
}

// unavailable reports whether err says that a backing service could not
// be reached (the database restarting, a connection lost): not the
// update's fault. Postgres errors are told by SQLSTATE (class 08,
// connection exception; 57P01-03, shutdown or starting up; 53300, too
// many connections), read through the SQLState method of the driver's
// error so that this package needs no driver.
func unavailable(err error) bool {
	if fieldops.ErrorCode(err) == fieldops.EUNAVAILABLE {
		return true
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch code := pg.SQLState(); {
		case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03", code == "53300":
			return true
		}
	}
	return false
}

// handleOnce runs the handler in the update's unit of work. ran is false
// when the inbox had already handled the update (fn not called).
func (e *engine) handleOnce(ctx context.Context, u *fieldops.InboundUpdate) (calls []fieldops.BotCall, ran bool, err error) {
	var a *answers
	err = e.b.svc.Inbox.Handle(ctx, u.UpdateID, func(tctx context.Context) ([]fieldops.BotCall, error) {
		ran = true
		var upd models.Update
		if err := json.Unmarshal(u.Payload, &upd); err != nil {
			return nil, fmt.Errorf("decode update %d: %w", u.UpdateID, err)
		}
		var hctx context.Context
		hctx, a = withAnswers(context.WithValue(tctx, receivedKey{}, u.ReceivedAt))
		if err := e.b.process(hctx, &upd); err != nil {
			return nil, err
		}
		if a.err != nil {
			return nil, a.err
		}
		e.b.step("intake.handled")
		calls = callbacksFirst(a.calls)
		return calls, nil
	})
	if err != nil {
		return nil, ran, err
	}
	if a != nil {
		for _, fn := range a.after {
			fn()
		}
	}
	return calls, ran, nil
}

// panicError is a handler's panic, recovered.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("handler panic: %v", p.value) }

// process runs the handlers on an update, turning a panic into an error
// (the library recovers nothing, checklist H1).
func (b *Bot) process(ctx context.Context, upd *models.Update) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	b.tg.ProcessUpdate(ctx, upd)
	return nil
}

// callbacksFirst puts the callback answers first: Telegram wants them
// within seconds, and they are not rate limited.
func callbacksFirst(calls []fieldops.BotCall) []fieldops.BotCall {
	out := make([]fieldops.BotCall, 0, len(calls))
	for _, c := range calls {
		if c.Method == "answerCallbackQuery" {
			out = append(out, c)
		}
	}
	for _, c := range calls {
		if c.Method != "answerCallbackQuery" {
			out = append(out, c)
		}
	}
	return out
}

func errorText(err error) string {
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}

// ---- Bot API calls ----

// apiError is an error answer from the Bot API.
type apiError struct {
	Method      string
	Code        int
	Description string
	RetryAfter  int
	MigrateTo   int64
}

func (e *apiError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

// call makes a Bot API call with JSON parameters through the answers'
// client and returns the raw result.
func (b *Bot) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("telegram %s: encode: %w", method, err)
	}
	var out json.RawMessage
	if err := b.post(ctx, b.hc, method, body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// post sends one Bot API request. Transport errors are returned with the
// token scrubbed; error answers as *apiError.
func (b *Bot) post(ctx context.Context, hc *http.Client, method string, body []byte, dest any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.api+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, b.scrub(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, b.scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: read answer: %w", method, b.scrub(err))
	}
	var r struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter      int   `json:"retry_after"`
			MigrateToChatID int64 `json:"migrate_to_chat_id"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return &apiError{Method: method, Code: resp.StatusCode, Description: "unreadable answer"}
	}
	if !r.OK {
		code := r.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &apiError{Method: method, Code: code, Description: r.Description,
			RetryAfter: r.Parameters.RetryAfter, MigrateTo: r.Parameters.MigrateToChatID}
	}
	if dest != nil {
		if err := json.Unmarshal(r.Result, dest); err != nil {
			return fmt.Errorf("telegram %s: decode result: %w", method, err)
		}
	}
	return nil
}

// scrubbedError hides the bot token in a transport error's text (a
// url.Error carries the request URL).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (b *Bot) scrub(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, b.opts.Token) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(msg, b.opts.Token, "<token>"), err: err}
}

// retry runs fn until it succeeds or ctx ends, backing off with jitter.
func (b *Bot) retry(ctx context.Context, what string, fn func() error) error {
	pause := newBackoff(200*time.Millisecond, 10*time.Second)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := pause.next()
		b.log.Warn(what, "err", err, "retry_in", wait)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// backoff doubles a delay up to a cap, with jitter.
type backoff struct {
	first, limit, cur time.Duration
}

func newBackoff(first, limit time.Duration) *backoff {
	return &backoff{first: first, limit: limit, cur: first}
}

func (p *backoff) next() time.Duration {
	d := jitter(p.cur)
	p.cur = min(p.cur*2, p.limit)
	return d
}

func (p *backoff) reset() { p.cur = p.first }

// jitter returns d ± 20%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d*4/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}
