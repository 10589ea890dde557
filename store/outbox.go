package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// Outbox is the notifications queue read by the dispatcher. It works
// across organisations: the dispatcher serves them all.
type Outbox struct {
	db *DB
}

var _ fieldops.Outbox = (*Outbox)(nil)

// NewOutbox returns the outbox on db.
func NewOutbox(db *DB) *Outbox { return &Outbox{db: db} }

// ClaimDue locks up to limit due messages (SKIP LOCKED, so a second
// claimer never waits on or takes them), moves their not_before past the
// claim timeout and returns them with the recipient's active, unblocked
// Telegram chat and e-mail address.
// perRecipientClaim is how many of one recipient's messages a claim takes
// at most (the oldest). Telegram allows one message a second to a chat, so
// a batch of one person's backlog would send at that pace however many
// others wait; taking a few of each fills the batch with many chats, which
// are sent side by side (BenchmarkDispatch1000 in bot/).
const perRecipientClaim = 4

func (o *Outbox) ClaimDue(ctx context.Context, now time.Time, limit int) ([]*fieldops.OutboundMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []*fieldops.OutboundMessage
	err := o.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH queue AS (
				SELECT id, not_before,
				       row_number() OVER (PARTITION BY org_id, user_id, email_to ORDER BY not_before, id) AS nth
				FROM notifications
				WHERE sent_at IS NULL AND failed_at IS NULL AND not_before <= $1
			), due AS (
				SELECT n.id FROM notifications n
				JOIN (SELECT id FROM queue WHERE nth <= $4 ORDER BY not_before, id LIMIT $2) q ON q.id = n.id
				FOR UPDATE OF n SKIP LOCKED
			), claimed AS (
				UPDATE notifications n SET not_before = $3
				FROM due WHERE n.id = due.id
				RETURNING n.org_id, n.id, n.user_id, n.email_to, n.channel, n.kind, n.payload, n.attempts
			)
			SELECT c.id, c.org_id, coalesce(c.user_id, 0), coalesce(c.email_to, ''), c.channel, c.kind, c.payload, c.attempts,
			       coalesce(l.chat_id, 0), coalesce(u.email, ''), coalesce(u.name, '')
			FROM claimed c
			LEFT JOIN users u ON u.id = c.user_id
			LEFT JOIN telegram_links l ON l.org_id = c.org_id AND l.user_id = c.user_id AND l.active AND l.blocked_at IS NULL
			ORDER BY c.id`, now, limit, now.Add(fieldops.ClaimTimeout), perRecipientClaim)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*fieldops.OutboundMessage, error) {
			m := &fieldops.OutboundMessage{}
			err := r.Scan(&m.ID, &m.OrgID, &m.UserID, &m.EmailTo, &m.Channel, &m.Kind, &m.Payload, &m.Attempts,
				&m.ChatID, &m.Email, &m.Name)
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return out, nil
}

// MarkSent records delivery; the channel column becomes the one used.
func (o *Outbox) MarkSent(ctx context.Context, id int64, via string, at time.Time) error {
	return o.exec(ctx, "mark sent", `UPDATE notifications SET sent_at = $2, channel = $3, last_error = NULL
		WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL`, id, at, via)
}

// MarkRetry counts an attempt and makes the message due again at next.
func (o *Outbox) MarkRetry(ctx context.Context, id int64, errText string, next time.Time) error {
	return o.exec(ctx, "mark retry", `UPDATE notifications SET attempts = attempts + 1, last_error = $2, not_before = $3
		WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL`, id, truncateError(errText), next)
}

// MarkFailed gives a message up.
func (o *Outbox) MarkFailed(ctx context.Context, id int64, errText string, at time.Time) error {
	return o.exec(ctx, "mark failed", `UPDATE notifications SET attempts = attempts + 1, last_error = $2, failed_at = $3
		WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL`, id, truncateError(errText), at)
}

// MarkBlocked records that a member blocked the bot: their active link is
// marked blocked and unlinked (active is false exactly when unlinked_at is
// set), so later messages go by e-mail until they link again.
func (o *Outbox) MarkBlocked(ctx context.Context, orgID, userID int64, at time.Time) error {
	return o.exec(ctx, "mark blocked", `UPDATE telegram_links SET blocked_at = $3, unlinked_at = $3, active = false
		WHERE org_id = $1 AND user_id = $2 AND active`, orgID, userID, at)
}

func (o *Outbox) exec(ctx context.Context, what, sql string, args ...any) error {
	if _, err := o.db.pool.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("notifications: %s: %w", what, err)
	}
	return nil
}

func truncateError(s string) string {
	const max = 1000
	if len(s) > max {
		r := []rune(s[:max])
		return string(r[:len(r)-1])
	}
	return s
}
