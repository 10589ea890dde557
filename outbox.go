package fieldops

import (
	"context"
	"time"
)

// Notification channels (notifications.channel).
const (
	ViaTelegram = "telegram"
	ViaEmail    = "email"
)

// OutboundMessage is one queued notification as the dispatcher sees it,
// joined to its recipient: the chat of the member's active, unblocked
// Telegram link (0 if none) and their e-mail address.
type OutboundMessage struct {
	ID, OrgID int64
	UserID    int64 // 0 for a message addressed by EmailTo only
	EmailTo   string
	Channel   string // "telegram" or "email"
	Kind      string
	Payload   map[string]any
	Attempts  int
	ChatID    int64  // the active Telegram link's chat, 0 if none
	Email     string // the member's e-mail address
	Name      string // the member's name
}

// ClaimTimeout is how long a claimed message stays invisible to other
// claims; a dispatcher that crashes mid-batch loses its claims after it.
const ClaimTimeout = 2 * time.Minute

// Outbox is the queue of outgoing notifications. Only one dispatcher
// sends at a time (the caller ensures leadership).
type Outbox interface {
	// ClaimDue returns up to limit unsent, unfailed messages due at now,
	// oldest first, and claims them by moving not_before to
	// now + ClaimTimeout.
	ClaimDue(ctx context.Context, now time.Time, limit int) ([]*OutboundMessage, error)
	// MarkSent records delivery; via is "telegram" or "email".
	MarkSent(ctx context.Context, id int64, via string, at time.Time) error
	// MarkRetry counts a failed attempt and makes the message due at next.
	MarkRetry(ctx context.Context, id int64, errText string, next time.Time) error
	// MarkFailed gives the message up.
	MarkFailed(ctx context.Context, id int64, errText string, at time.Time) error
	// MarkBlocked records that the member blocked the bot: their active
	// Telegram link is marked blocked and inactive.
	MarkBlocked(ctx context.Context, orgID, userID int64, at time.Time) error
}
