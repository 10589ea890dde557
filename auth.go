package fieldops

import (
	"context"
	"net/netip"
)

// SignIn is one attempt at the password step.
type SignIn struct {
	Email     string
	Password  string
	IP        netip.Addr
	UserAgent string
	OrgID     int64 // optional: the organisation to sign in to; default the member's first
}

// SignInResult is where a sign-in stands after a step.
type SignInResult struct {
	// Challenge is set when a second factor is needed: pass it to
	// VerifySecondFactor with the code. It lives five minutes.
	Challenge string
	// Session and Token are set once the member is signed in; Token is
	// the secret for the cookie.
	Session *Session
	Token   string
	// MustEnrol is set when the member's role requires two-factor sign-in
	// and they have not set it up: nothing but enrolment is allowed.
	MustEnrol bool
}

// Enrolment is a new TOTP secret waiting for its first code.
type Enrolment struct {
	Secret string // base32, for typing into an authenticator by hand
	URL    string // otpauth:// URL
	QRPNG  []byte // the URL as a QR code image
}

// AuthService signs people in and manages their second factor. Failed
// attempts are throttled per account and per IP, and every answer to a
// wrong e-mail or password is the same whether the account exists or not.
type AuthService interface {
	SignIn(ctx context.Context, s SignIn) (*SignInResult, error)
	// VerifySecondFactor takes a TOTP code or a recovery code. A TOTP
	// code is accepted once only, for the current or the previous 30 s.
	VerifySecondFactor(ctx context.Context, challenge, code string, s SignIn) (*SignInResult, error)
	// SignOut ends the session of the token.
	SignOut(ctx context.Context, token string) error
	// BeginEnrolment makes a new TOTP secret for the actor.
	BeginEnrolment(ctx context.Context) (*Enrolment, error)
	// ConfirmEnrolment checks a first code against the pending secret,
	// turns two-factor sign-in on and returns ten single-use recovery
	// codes, shown once.
	ConfirmEnrolment(ctx context.Context, code string) ([]string, error)
	// RequiresEnrolment reports whether the actor must set up two-factor
	// sign-in before doing anything else.
	RequiresEnrolment(ctx context.Context) (bool, error)
	// ResetTwoFactor turns a member's two-factor sign-in off, for when
	// they have lost their phone (security.policy; only an Owner resets
	// an Owner). Their authenticator secret and recovery codes are
	// deleted and their sessions in the organisation end; they set
	// two-factor sign-in up again at their next sign-in. The second
	// factor belongs to the person, not to the organisation, so the
	// implementation may refuse a member who also belongs to another
	// organisation.
	ResetTwoFactor(ctx context.Context, userID int64) error
}
