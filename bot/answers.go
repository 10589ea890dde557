package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldops/fieldops"
)

// An update is handled inside one transaction (fieldops.Inbox.Handle). The
// handler does not call Telegram: it queues its answers (sendMessage,
// editMessageText, answerCallbackQuery, setMyCommands, ...) here, they are
// stored with the update when it is marked done, and sent after the
// commit. A crash can then neither apply an update twice nor lose its
// answer (it may, rarely, send an answer twice).

type answersKey struct{}

// receivedKey carries when the update being handled was received.
type receivedKey struct{}

// receivedAt is when the update being handled was stored in the inbox
// (zero when unknown): a location's age is judged at arrival, not when a
// backlog is handled.
func receivedAt(ctx context.Context) time.Time {
	t, _ := ctx.Value(receivedKey{}).(time.Time)
	return t
}

// answers collects what one update's handler wants sent, and whether it
// failed in a way that must roll the update back and retry it.
type answers struct {
	calls []fieldops.BotCall
	err   error
	after []func() // run once the update's transaction has committed
}

// withAnswers returns a context that collects a handler's answers.
func withAnswers(ctx context.Context) (context.Context, *answers) {
	a := &answers{}
	return context.WithValue(ctx, answersKey{}, a), a
}

// queue records a Bot API call to make after the update commits. params
// is a go-telegram/bot params struct (such as *bot.SendMessageParams) or a
// map with the Bot API's field names.
func queue(ctx context.Context, method string, params any) {
	a, ok := ctx.Value(answersKey{}).(*answers)
	if !ok {
		panic("bot: queue called outside an update's handling")
	}
	m, err := toParams(params)
	if err != nil {
		a.fail(fmt.Errorf("queue %s: %w", method, err))
		return
	}
	a.calls = append(a.calls, fieldops.BotCall{Method: method, Params: m})
}

// afterCommit runs fn once the update's handling has committed (not at
// all if it rolls back and is retried): for what the bot keeps in memory
// about an update it handled.
func afterCommit(ctx context.Context, fn func()) {
	a, ok := ctx.Value(answersKey{}).(*answers)
	if !ok {
		panic("bot: afterCommit called outside an update's handling")
	}
	a.after = append(a.after, fn)
}

// fail marks the update's handling as failed for a reason that is not the
// user's (the database is down, a bug): its transaction is rolled back and
// the update is retried, then set aside. Refusals by the services
// (fieldops.Error with a user message) are answered, not failed.
func fail(ctx context.Context, err error) {
	if a, ok := ctx.Value(answersKey{}).(*answers); ok {
		a.fail(err)
	}
}

func (a *answers) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// toParams turns a params struct into the Bot API's JSON object.
func toParams(params any) (map[string]any, error) {
	if m, ok := params.(map[string]any); ok {
		return m, nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
