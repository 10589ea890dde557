package fieldops

import (
	"context"
	"time"
)

// LinkTokenTTL is how long a Telegram deep link stays valid.
const LinkTokenTTL = 15 * time.Minute

// TelegramUser is the Telegram account an update came from, and the chat
// it came in. Only private chats (the user's own chat with the bot) can be
// linked or act.
type TelegramUser struct {
	ID        int64 // message.from.id
	ChatID    int64
	Private   bool // chat.type == "private"
	Username  string
	FirstName string
}

// TelegramLinkToken is a one-time deep link for a member to tie their
// Telegram account to their membership. Token is shown once; only its
// hash is stored.
type TelegramLinkToken struct {
	Token     string
	URL       string // https://t.me/<bot>?start=<token>
	ExpiresAt time.Time
}

// TelegramLink is a Telegram account tied to a member of an organisation:
// that member's session of channel telegram.
type TelegramLink struct {
	ID             int64
	OrgID          int64
	OrgName        string
	UserID         int64
	UserName       string
	Role           Role
	TelegramUserID int64
	ChatID         int64
	Username       string
	SessionID      string // the public id of the telegram session
	LinkedAt       time.Time
	Blocked        bool // the user blocked the bot
}

// Actor returns the actor the bot acts as for this link.
func (l *TelegramLink) Actor() Actor {
	return Actor{UserID: l.UserID, OrgID: l.OrgID, Channel: ChannelTelegram,
		SessionID: l.SessionID, SessionStart: l.LinkedAt}
}

// ChatState is what a chat is in the middle of: the bot asked a question
// and the next message answers it. Kind "" is no conversation.
type ChatState struct {
	Kind  string         // e.g. "check_in", "check_out", "defect_description"
	JobID int64          // the job the question is about
	Data  map[string]any // e.g. {"code": "C1"}
	At    time.Time      // when the question was asked
}

// ChatStateTTL is how long a question waits for its answer.
const ChatStateTTL = 30 * time.Minute

// TelegramService ties Telegram accounts to members. Resolve and the chat
// state are keyed by the Telegram account (a chat may work for one of
// several organisations).
type TelegramService interface {
	// CreateLinkToken makes a deep link for the actor to link their own
	// Telegram account; an earlier unused link of theirs stops working.
	CreateLinkToken(ctx context.Context) (*TelegramLinkToken, error)
	// Link consumes a token (no actor: the token is the proof) for a
	// Telegram account in a private chat. It starts a session of channel
	// telegram, replaces any earlier link of that member or of that
	// Telegram account in the organisation, makes the organisation the
	// chat's current one, and is audited. An unknown, expired or used
	// token, or a group chat, is refused saying what to do.
	Link(ctx context.Context, token string, u TelegramUser) (*TelegramLink, error)
	// Resolve finds the active link a Telegram account acts through: the
	// link to the chat's current organisation, or the only link. With
	// several links, choices lists them all (for switching), and link is
	// nil when none is the current one.
	// A Telegram account with no active link is EUNAUTHORIZED with the
	// instructions to link. A link whose session was revoked, or whose
	// member was removed, is not active.
	Resolve(ctx context.Context, telegramUserID int64) (link *TelegramLink, choices []*TelegramLink, err error)
	// ChooseOrganisation makes one of the account's linked organisations
	// the chat's current one.
	ChooseOrganisation(ctx context.Context, telegramUserID, orgID int64) (*TelegramLink, error)
	// Unlink ends the actor's own Telegram link, or a member's with
	// session.revoke_all (an Owner's only by an Owner).
	Unlink(ctx context.Context, userID int64) error
	// ChatState returns the account's pending question (Kind "" for none
	// or one older than ChatStateTTL); SetChatState replaces it (a zero
	// state clears it).
	ChatState(ctx context.Context, telegramUserID int64) (ChatState, error)
	SetChatState(ctx context.Context, telegramUserID int64, s ChatState) error
	// TouchLink records that the account was seen and, if it was marked
	// blocked, that it is reachable again.
	TouchLink(ctx context.Context, telegramUserID int64) error
}

// Update statuses in the inbox.
const (
	UpdatePending  = "pending"
	UpdateDone     = "done"
	UpdateSetAside = "set_aside"
)

// InboundUpdate is one Telegram update in the durable inbox.
type InboundUpdate struct {
	UpdateID       int64
	ChatID         int64  // 0 when the update has no chat
	TelegramUserID int64  // 0 when it has no sender
	Payload        []byte // the update as Telegram sent it (JSON)
	Attempts       int
	ReceivedAt     time.Time // when it was stored
}

// BotCall is one Bot API call the bot makes in answer to an update:
// sendMessage, editMessageText, answerCallbackQuery, setMyCommands... It
// is stored with the update in the transaction that handles it and sent
// after the commit, so that a crash never applies an update twice and
// never loses its answer.
type BotCall struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params"`
}

// PendingCalls are the answers of a handled update not sent yet.
type PendingCalls struct {
	UpdateID int64
	ChatID   int64
	Calls    []BotCall
}

// Inbox is the durable queue of Telegram updates.
type Inbox interface {
	// NextOffset is the getUpdates offset to ask for next.
	NextOffset(ctx context.Context) (int64, error)
	// Store saves a batch (update_id unique: a repeat is ignored) and
	// sets the offset to nextOffset (0: leave it, for webhook deliveries),
	// in one transaction.
	Store(ctx context.Context, batch []InboundUpdate, nextOffset int64) error
	// Pending lists pending updates with update_id > after, in update_id
	// order.
	Pending(ctx context.Context, after int64, limit int) ([]*InboundUpdate, error)
	// Handle runs fn in one transaction that it carries in the context
	// (every service called with that context writes in it), then, in
	// the same transaction, marks the update done and stores the calls
	// fn returned. An update already done is skipped (fn not called). If
	// fn fails, nothing it wrote is kept and the error is returned.
	Handle(ctx context.Context, updateID int64, fn func(ctx context.Context) ([]BotCall, error)) error
	// Failed counts a failed attempt; with setAside the update is taken
	// out of the queue (status set_aside) and the owners of the sender's
	// organisation, if known, are alerted, in the same transaction.
	Failed(ctx context.Context, updateID int64, errText string, setAside bool) error
	// Unsent lists handled updates whose calls are not all sent, oldest
	// first; MarkSent records that they were.
	Unsent(ctx context.Context, limit int) ([]PendingCalls, error)
	MarkSent(ctx context.Context, updateIDs []int64) error
}

// Leadership: of several instances, one polls Telegram, handles the inbox
// and sends the outbox; the others stand by.
type Leadership interface {
	// Lead blocks until this instance leads (or ctx ends), then runs fn
	// with a context that is cancelled if leadership is lost. It returns
	// when fn returns or ctx ends.
	Lead(ctx context.Context, fn func(ctx context.Context) error) error
}
