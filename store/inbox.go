package store

// The inbox of Telegram updates (telegram_updates) and the getUpdates
// offset (telegram_poll_state).
//
// The poller stores each batch and moves the offset in one statement, so
// that Telegram is asked for the next batch only after this one is
// durable. A worker handles an update in one transaction (Handle) that
// locks its row, runs the handler with the transaction in its context,
// marks the update done and stores the Bot API calls that answer it; the
// calls are sent after the commit (Unsent, MarkSent). So an update is
// applied at most once and its answer is never lost, though it may be
// sent twice after a crash.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// Inbox implements fieldops.Inbox.
type Inbox struct {
	db *DB
}

var _ fieldops.Inbox = (*Inbox)(nil)

// NewInbox returns the inbox.
func NewInbox(db *DB) *Inbox { return &Inbox{db: db} }

// Limits of Pending and Unsent.
const (
	defaultInboxLimit = 100
	maxInboxLimit     = 1000
)

func inboxLimit(n int) int {
	switch {
	case n <= 0:
		return defaultInboxLimit
	case n > maxInboxLimit:
		return maxInboxLimit
	}
	return n
}

// NextOffset is the getUpdates offset to ask for next.
func (i *Inbox) NextOffset(ctx context.Context) (int64, error) {
	var n int64
	if err := i.db.pool.QueryRow(ctx, `SELECT next_offset FROM telegram_poll_state WHERE id = 1`).Scan(&n); err != nil {
		return 0, translate(fmt.Errorf("read poll offset: %w", err))
	}
	return n, nil
}

// Store saves a batch, ignoring updates already stored, and sets the
// offset to nextOffset (0 leaves it: a webhook delivery), in one
// statement. The offset may move back: Telegram re-bases update ids after
// a quiet week.
func (i *Inbox) Store(ctx context.Context, batch []fieldops.InboundUpdate, nextOffset int64) error {
	ids := make([]int64, len(batch))
	chats := make([]int64, len(batch))
	users := make([]int64, len(batch))
	payloads := make([]string, len(batch))
	for n, u := range batch {
		if !json.Valid(u.Payload) || len(u.Payload) == 0 || u.Payload[0] != '{' {
			return fieldops.Internal(fmt.Errorf("update %d: payload is not a JSON object", u.UpdateID), "store updates")
		}
		ids[n], chats[n], users[n], payloads[n] = u.UpdateID, u.ChatID, u.TelegramUserID, string(u.Payload)
	}
	now := i.db.now()
	// A data-modifying WITH runs to completion whether or not the outer
	// statement reads it: the batch and the offset commit together.
	if _, err := i.db.pool.Exec(ctx, `
		WITH stored AS (
			INSERT INTO telegram_updates (update_id, chat_id, telegram_user_id, payload, received_at)
			SELECT u.id, NULLIF(u.chat, 0), NULLIF(u.usr, 0), u.payload::jsonb, $5
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS u(id, chat, usr, payload)
			ON CONFLICT (update_id) DO NOTHING
		)
		UPDATE telegram_poll_state SET next_offset = CASE WHEN $6 > 0 THEN $6 ELSE next_offset END, updated_at = $5 WHERE id = 1`,
		ids, chats, users, payloads, now, nextOffset); err != nil {
		return translate(fmt.Errorf("store updates: %w", err))
	}
	return nil
}

// Pending lists pending updates after an update id, in update_id order.
func (i *Inbox) Pending(ctx context.Context, after int64, limit int) ([]*fieldops.InboundUpdate, error) {
	rows, err := i.db.pool.Query(ctx, `
		SELECT update_id, COALESCE(chat_id, 0), COALESCE(telegram_user_id, 0), payload, attempts, received_at
		FROM telegram_updates WHERE status = 'pending' AND update_id > $1
		ORDER BY update_id LIMIT $2`, after, inboxLimit(limit))
	if err != nil {
		return nil, translate(fmt.Errorf("pending updates: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*fieldops.InboundUpdate, error) {
		u := &fieldops.InboundUpdate{}
		err := r.Scan(&u.UpdateID, &u.ChatID, &u.TelegramUserID, &u.Payload, &u.Attempts, &u.ReceivedAt)
		return u, err
	})
	if err != nil {
		return nil, translate(fmt.Errorf("pending updates: %w", err))
	}
	return out, nil
}

// Handle runs fn in a unit of work (db.WithinTx) that first locks the
// update's row: an update that is no longer pending (done by another
// worker, or set aside) is skipped without calling fn. When fn succeeds
// the update is marked done with its calls in the same transaction; when
// it fails, everything is rolled back and fn's error returned as it is.
// Around fn, Handle costs one SELECT ... FOR UPDATE (sent with the BEGIN)
// and one UPDATE (sent with the COMMIT): no round trip of its own.
func (i *Inbox) Handle(ctx context.Context, updateID int64, fn func(ctx context.Context) ([]fieldops.BotCall, error)) error {
	var fnErr error
	err := i.db.WithinTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM telegram_updates WHERE update_id = $1 FOR UPDATE`, updateID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldops.Errorf(fieldops.ENOTFOUND, "Update %d is not in the inbox.", updateID)
		}
		if err != nil {
			return fmt.Errorf("lock update %d: %w", updateID, err)
		}
		if status != fieldops.UpdatePending {
			return nil
		}
		calls, err := fn(ctx)
		if err != nil {
			fnErr = err
			return err
		}
		var callsJSON []byte
		if len(calls) > 0 {
			if callsJSON, err = json.Marshal(calls); err != nil {
				return fmt.Errorf("update %d: encode calls: %w", updateID, err)
			}
		}
		// Sent with the COMMIT (one round trip): a failure fails the commit.
		if err := execHeld(ctx, tx, `UPDATE telegram_updates SET status = 'done', done_at = $2, attempts = attempts + 1, calls = $3,
				payload = `+withoutStartToken+`
			WHERE update_id = $1`, updateID, i.db.now(), callsJSON); err != nil {
			return fmt.Errorf("mark update %d done: %w", updateID, err)
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// withoutStartToken is the stored update without the argument of a
// /start command, which is a link token: once the update is handled (or
// set aside) the inbox keeps no usable secret.
const withoutStartToken = `CASE WHEN payload #>> '{message,text}' ~ '^/start(@[A-Za-z0-9_]+)?\s'
	THEN jsonb_set(payload, '{message,text}', '"/start"') ELSE payload END`

// Failed counts a failed attempt at a pending update; with setAside it
// takes the update out of the queue and alerts the alert recipients of the
// sender's organisation (the chat's current one, or each one the sender is
// linked in), all in one transaction. An update that is no longer pending
// is left as it is.
func (i *Inbox) Failed(ctx context.Context, updateID int64, errText string, setAside bool) error {
	return i.db.inTx(ctx, func(tx pgx.Tx) error {
		var tgUser *int64
		err := tx.QueryRow(ctx, `
			UPDATE telegram_updates SET attempts = attempts + 1, last_error = $2,
				status = CASE WHEN $3 THEN 'set_aside' ELSE status END,
				payload = CASE WHEN $3 THEN `+withoutStartToken+` ELSE payload END
			WHERE update_id = $1 AND status = 'pending'
			RETURNING telegram_user_id`, updateID, truncateError(errText), setAside).Scan(&tgUser)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("update %d failed: %w", updateID, err)
		}
		if !setAside || tgUser == nil {
			return nil
		}
		return i.alertSetAside(ctx, tx, updateID, *tgUser)
	})
}

// alertSetAside queues alert.update_set_aside for the alert recipients of
// the organisations the sender acts in.
func (i *Inbox) alertSetAside(ctx context.Context, tx pgx.Tx, updateID, telegramUserID int64) error {
	type sender struct {
		orgID, userID int64
		name          string
		current       bool
	}
	rows, err := tx.Query(ctx, `
		SELECT l.org_id, l.user_id, u.name, COALESCE(c.active_org_id = l.org_id, false)
		FROM telegram_links l
		JOIN memberships m ON m.org_id = l.org_id AND m.user_id = l.user_id AND m.status = 'active'
		JOIN users u ON u.id = l.user_id
		LEFT JOIN telegram_chats c ON c.telegram_user_id = l.telegram_user_id
		WHERE l.telegram_user_id = $1 AND l.active
		ORDER BY l.org_id`, telegramUserID)
	if err != nil {
		return fmt.Errorf("update %d: find sender: %w", updateID, err)
	}
	senders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sender, error) {
		var s sender
		err := r.Scan(&s.orgID, &s.userID, &s.name, &s.current)
		return s, err
	})
	if err != nil {
		return fmt.Errorf("update %d: find sender: %w", updateID, err)
	}
	for _, s := range senders {
		if s.current {
			senders = []sender{s}
			break
		}
	}
	for _, s := range senders {
		to, err := alertRecipients(ctx, tx, s.orgID)
		if err != nil {
			return fmt.Errorf("update %d: alert recipients: %w", updateID, err)
		}
		// No error text: it may hold internals (SQL, a panic value) and the
		// alert goes by Telegram or e-mail. The log and last_error have it.
		payload := map[string]any{"update_id": updateID, "user_id": s.userID, "user_name": s.name}
		for _, uid := range to {
			// One row per recipient: the dedupe key is unique per organisation.
			if _, err := notify(ctx, tx, s.orgID, uid, "alert.update_set_aside", dedupeKey("update", updateID, uid), payload, i.db.now()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unsent lists handled updates whose calls are not sent yet, oldest first.
func (i *Inbox) Unsent(ctx context.Context, limit int) ([]fieldops.PendingCalls, error) {
	rows, err := i.db.pool.Query(ctx, `
		SELECT update_id, COALESCE(chat_id, 0), calls FROM telegram_updates
		WHERE status = 'done' AND calls IS NOT NULL AND calls_sent_at IS NULL
		ORDER BY update_id LIMIT $1`, inboxLimit(limit))
	if err != nil {
		return nil, translate(fmt.Errorf("unsent calls: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fieldops.PendingCalls, error) {
		var p fieldops.PendingCalls
		var raw []byte
		if err := r.Scan(&p.UpdateID, &p.ChatID, &raw); err != nil {
			return p, err
		}
		if err := json.Unmarshal(raw, &p.Calls); err != nil {
			return p, fmt.Errorf("update %d: decode calls: %w", p.UpdateID, err)
		}
		return p, nil
	})
	if err != nil {
		return nil, translate(fmt.Errorf("unsent calls: %w", err))
	}
	return out, nil
}

// MarkSent records that the calls of the updates were sent, in one
// statement.
func (i *Inbox) MarkSent(ctx context.Context, updateIDs []int64) error {
	if len(updateIDs) == 0 {
		return nil
	}
	if _, err := i.db.pool.Exec(ctx, `UPDATE telegram_updates SET calls_sent_at = $2
		WHERE update_id = ANY($1) AND calls IS NOT NULL AND calls_sent_at IS NULL`, updateIDs, i.db.now()); err != nil {
		return translate(fmt.Errorf("mark calls sent: %w", err))
	}
	return nil
}
