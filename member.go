package fieldops

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// User is a person who can sign in. One user may be a member of several
// organisations, with a different role in each.
type User struct {
	ID          int64
	Email       string
	Name        string
	TOTPEnabled bool
	CreatedAt   time.Time
}

// Member is a user's membership of one organisation.
type Member struct {
	OrgID          int64
	UserID         int64
	Email          string
	Name           string
	Role           Role
	Overrides      []Override
	WorkingMinutes [7]int // Monday first
	Colour         string
	TOTPEnabled    bool
	TelegramLinked bool       // an active Telegram link
	LastSeenAt     *time.Time // last sign-in or new session
	CreatedAt      time.Time
}

// NewMember adds a person to the organisation directly (the invitation
// flow ends here once the invitee has accepted).
type NewMember struct {
	Email     string
	Name      string
	Role      Role
	Overrides []Override
}

// Validate normalises the e-mail address and checks the fields.
func (n *NewMember) Validate() error {
	email, err := NormaliseEmail(n.Email)
	if err != nil {
		return err
	}
	n.Email = email
	n.Name = strings.TrimSpace(n.Name)
	if err := checkText("name", "Name", n.Name, 1, 200); err != nil {
		return err
	}
	if n.Role < RoleOwner || n.Role > RoleAccountant {
		return Invalid("role", "Choose a role: owner, admin, manager, engineer, office_staff, read_only or accountant.")
	}
	return nil
}

// NormaliseEmail trims and lower-cases an address and checks its form.
func NormaliseEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", Invalid("email", "E-mail address is required.")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.IndexByte(s, '@')+1:], ".") || len(s) > 254 {
		return "", Invalid("email", "%q is not an e-mail address: use the form name@example.co.uk.", s)
	}
	return s, nil
}

// MemberFilter narrows FindMembers.
type MemberFilter struct {
	Role           Role // RoleNone: any
	IncludeRemoved bool
}

// MemberService manages the people of the actor's organisation.
type MemberService interface {
	// FindMembers needs team.view; everyone may look themselves up with
	// FindMemberByID.
	FindMembers(ctx context.Context, f MemberFilter) ([]*Member, error)
	FindMemberByID(ctx context.Context, userID int64) (*Member, error)
	// AddMember needs team.invite; the role is no higher than the
	// actor's own rights and the plan must have a free seat.
	AddMember(ctx context.Context, n NewMember) (*Member, error)
	// ChangeRole needs team.change_role and keeps the owner protections.
	ChangeRole(ctx context.Context, userID int64, role Role) (*Member, error)
	// SetOverrides needs team.edit_permissions; it replaces the member's
	// overrides.
	SetOverrides(ctx context.Context, userID int64, overrides []Override) (*Member, error)
	// TransferOwnership makes another member an Owner and the actor an
	// Admin (org.transfer_ownership).
	TransferOwnership(ctx context.Context, toUserID int64) (*Member, error)
	// RemoveMember needs team.remove; the member keeps their history but
	// loses all access.
	RemoveMember(ctx context.Context, userID int64) error
}
