package fieldops

import (
	"context"
	"net/netip"
	"time"
)

// Session is one way a member is signed in: a web sign-in, a personal API
// token or a linked Telegram chat. ID is a public identifier; the secret
// token that proves the session is never stored or shown after creation.
type Session struct {
	ID         string
	OrgID      int64
	UserID     int64
	UserName   string
	Channel    Channel // web, api or telegram
	Device     string  // e.g. "Firefox on desktop", "API token “Xero sync”", "Telegram @sam"
	IP         string
	TwoFactor  bool // the sign-in used a second factor
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// NewSession is what a sign-in, a new API token or a Telegram link hands
// the session store.
type NewSession struct {
	OrgID     int64
	UserID    int64
	Channel   Channel
	UserAgent string // for web sessions; the device is derived from it
	Device    string // for api and telegram sessions
	IP        netip.Addr
	TwoFactor bool
	// TTL bounds the session's life; zero takes the channel's default.
	TTL time.Duration
}

// SessionFilter narrows FindSessions: UserID 0 lists the organisation's
// sessions (session.view_all); otherwise one member's (their own, or
// anyone's with session.view_all).
type SessionFilter struct {
	UserID int64
}

// SessionService keeps the live sessions and their revocation.
type SessionService interface {
	// CreateSession starts a session and returns it with its secret token,
	// which is shown once (a cookie, an API token, nothing for Telegram).
	CreateSession(ctx context.Context, n NewSession) (*Session, string, error)
	// Authenticate resolves a secret token to its live session and the
	// actor to act as. An unknown, expired or revoked token is
	// EUNAUTHORIZED; an unreachable session store is EUNAVAILABLE (fail
	// closed, never signed in).
	Authenticate(ctx context.Context, token string, ip netip.Addr) (*Session, Actor, error)
	FindSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// RevokeSession ends one session: one's own, or anyone's with
	// session.revoke_all (an Admin cannot end an Owner's).
	RevokeSession(ctx context.Context, id string) error
	// RevokeUserSessions ends every session of a member.
	RevokeUserSessions(ctx context.Context, userID int64) error
}
