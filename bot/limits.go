package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Telegram's flood limits as the bot applies them, per time unit (a
// Telegram second): a global token bucket of 25 sends a second with a
// burst of 5, so at most 30 in any second; one send a second to a private
// chat; 20 a minute to a group (one every 3 seconds).
const (
	globalRate  = 25
	globalBurst = 5
	chatGap     = 1 // units between two sends to a private chat
	groupGap    = 3 // units between two sends to a group: 20 a minute
)

// limits keeps every send of this process (the answers to updates and
// the outbox's notifications) within Telegram's flood limits. Only sends
// count (sendMessage, sendPhoto, ...): edits and callback answers are not
// limited by Telegram and do not come through here.
//
// A chat has one send in flight at a time, and the next starts a full gap
// after the previous one ended, so the gap Telegram sees is at least the
// gap whatever the latency. The limiters live in this process, which is
// exact because only the leader sends.
//
// A 429 pauses every send for retry_after (pause): the answer does not say
// which limit was hit, and the global bucket spreads the sends out again
// when the pause ends.
type limits struct {
	on     bool
	unit   time.Duration
	global *rate.Limiter

	mu      sync.Mutex
	chats   map[int64]*chatTurn
	pauseTo time.Time // no send before this (wall clock)
}

// chatTurn is one chat's state: whether a send to it is in flight, and
// when the last one ended.
type chatTurn struct {
	busy bool
	last time.Time
	free chan struct{} // closed when the send in flight ends
}

// newLimits returns the limiters for a time unit; with on false only the
// pauses after a 429 apply.
func newLimits(unit time.Duration, on bool) *limits {
	if unit <= 0 {
		unit = time.Second
	}
	per := rate.Limit(globalRate * float64(time.Second) / float64(unit))
	return &limits{on: on, unit: unit, global: rate.NewLimiter(per, globalBurst), chats: map[int64]*chatTurn{}}
}

// gap is the time between two sends to a chat: groups (negative ids) have
// the per-minute limit.
func (l *limits) gap(chat int64) time.Duration {
	if chat < 0 {
		return groupGap * l.unit
	}
	return chatGap * l.unit
}

// acquire waits until a send to chat may start: no pause, no other send
// to the chat in flight, a full gap since the last one ended, and a global
// token. Unless it returns an error, the caller must call release when
// the send has completed (whatever its outcome).
func (l *limits) acquire(ctx context.Context, chat int64) error {
	for {
		if err := l.waitPause(ctx); err != nil {
			return err
		}
		if !l.on {
			return nil
		}
		l.mu.Lock()
		if len(l.chats) > 10000 {
			l.pruneLocked()
		}
		t, ok := l.chats[chat]
		if !ok {
			t = &chatTurn{free: make(chan struct{})}
			l.chats[chat] = t
		}
		if t.busy {
			free := t.free
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-free:
			}
			continue
		}
		if wait := l.gap(chat) - time.Since(t.last); !t.last.IsZero() && wait > 0 {
			l.mu.Unlock()
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		t.busy = true
		l.mu.Unlock()
		if err := l.global.Wait(ctx); err != nil {
			l.end(chat, false)
			return err
		}
		if l.paused() {
			l.end(chat, false) // a 429 arrived meanwhile: wait for the pause
			continue
		}
		return nil
	}
}

// release records that the send to chat acquired has completed.
func (l *limits) release(chat int64) {
	if l.on {
		l.end(chat, true)
	}
}

func (l *limits) end(chat int64, sent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.chats[chat]
	if !ok {
		return
	}
	t.busy = false
	if sent {
		t.last = time.Now()
	}
	close(t.free)
	t.free = make(chan struct{})
}

// pruneLocked forgets chats whose gap has passed: they behave as new ones.
func (l *limits) pruneLocked() {
	for id, t := range l.chats {
		if !t.busy && time.Since(t.last) > l.gap(id) {
			delete(l.chats, id)
		}
	}
}

// pause stops every send for wait (a 429's retry_after).
func (l *limits) pause(wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(wait); until.After(l.pauseTo) {
		l.pauseTo = until
	}
}

func (l *limits) paused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.pauseTo)
}

func (l *limits) waitPause(ctx context.Context) error {
	for {
		l.mu.Lock()
		wait := time.Until(l.pauseTo)
		l.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retryAfter converts a 429's retry_after into a wait.
func (l *limits) retryAfter(n int) time.Duration {
	return time.Duration(max(n, 1)) * l.unit
}
