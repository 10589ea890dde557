package fieldops

import (
	"context"
	"net/netip"
	"time"
)

// Invitation statuses.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	InvitationRevoked  = "revoked"
	InvitationReplaced = "replaced" // a resend made a new link
	InvitationExpired  = "expired"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation offers someone a place in the organisation. The link's token
// is shown once and only its hash is kept.
type Invitation struct {
	ID            int64
	OrgID         int64
	OrgName       string
	Email         string
	Role          Role
	Overrides     []Override
	InvitedBy     int64
	InvitedByName string
	Status        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// NewInvitation is the input of CreateInvitation.
type NewInvitation struct {
	Email     string
	Role      Role
	Overrides []Override
}

// Accept is what the invitee fills in.
type Accept struct {
	Name      string
	Password  string
	IP        netip.Addr
	UserAgent string
}

// InvitationService runs invitations. Creating, resending and revoking
// need team.invite; a pending invitation takes a seat; the role on offer
// can be no higher than the inviter's own rights.
type InvitationService interface {
	// CreateInvitation returns the invitation and the secret token of its
	// link. The caller e-mails the link, or shows it once when e-mail is
	// not configured.
	CreateInvitation(ctx context.Context, n NewInvitation) (*Invitation, string, error)
	// ResendInvitation makes a new link; the old one stops working.
	ResendInvitation(ctx context.Context, id int64) (*Invitation, string, error)
	RevokeInvitation(ctx context.Context, id int64) error
	// FindInvitations lists pending invitations (team.view).
	FindInvitations(ctx context.Context) ([]*Invitation, error)
	// FindInvitationByToken needs no actor. An expired, revoked, replaced
	// or used link is an error whose message says which and whom to ask.
	FindInvitationByToken(ctx context.Context, token string) (*Invitation, error)
	// AcceptInvitation makes (or joins) the account, adds the member and
	// signs them in; MustEnrol is set when their role needs two-factor
	// sign-in first.
	AcceptInvitation(ctx context.Context, token string, a Accept) (*SignInResult, error)
}

// APITokenService issues personal API tokens. A token is a session of
// channel api: listed and revoked through the SessionService.
type APITokenService interface {
	// CreateAPIToken returns the session and the secret token, shown once.
	CreateAPIToken(ctx context.Context, name string) (*Session, string, error)
}
