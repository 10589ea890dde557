package fieldops

import "context"

// Mail is one e-mail message, plain text with an optional HTML body.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer sends e-mail. It is nil when SMTP is not configured; callers then
// show the person what the mail would have carried (an invitation link,
// say) instead.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
