package store

import (
	"context"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London for e-mails even where the system has no zoneinfo

	"github.com/wneessen/go-mail"

	"github.com/fieldops/fieldops"
)

// SMTPSettings configure the SMTP server that e-mail goes through.
type SMTPSettings struct {
	Host     string
	Port     int // 0: 587 for starttls, 465 for tls, 25 for none
	Username string
	Password string
	From     string // "fieldops <noreply@example.co.uk>" or a bare address
	// TLS is starttls (the default: the connection must be upgraded),
	// tls (implicit TLS from the first byte) or none (local relays and
	// tests only).
	TLS     string
	Timeout time.Duration // 0: 15 s, for the connection and each command
}

// SMTPMailer sends e-mail through an SMTP server. It implements
// fieldops.Mailer and is safe for concurrent use: each message goes over
// a connection of its own.
type SMTPMailer struct {
	cfg  SMTPSettings
	opts []mail.Option
}

var _ fieldops.Mailer = (*SMTPMailer)(nil)

// NewSMTPMailer checks the settings and returns a mailer. It does not
// connect: the first Send does.
func NewSMTPMailer(cfg SMTPSettings) (*SMTPMailer, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	if cfg.Host == "" {
		return nil, fmt.Errorf("smtp: no host")
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: from address %q: %w", cfg.Host, cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	cfg.TLS = strings.ToLower(strings.TrimSpace(cfg.TLS))
	var opts []mail.Option
	switch cfg.TLS {
	case "", "starttls":
		cfg.TLS = "starttls"
		if cfg.Port == 0 {
			cfg.Port = 587
		}
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		if cfg.Port == 0 {
			cfg.Port = 465
		}
		opts = append(opts, mail.WithSSL())
	case "none":
		if cfg.Port == 0 {
			cfg.Port = 25
		}
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return nil, fmt.Errorf("smtp %s: tls %q: use starttls, tls or none", cfg.Host, cfg.TLS)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp %s: port %d out of range", cfg.Host, cfg.Port)
	}
	// Introduce ourselves by the sender's domain: some servers refuse
	// the bare "localhost" that is go-mail's default.
	opts = append(opts, mail.WithPort(cfg.Port), mail.WithHELO(from.Address[strings.LastIndexByte(from.Address, '@')+1:]))
	if cfg.Username != "" {
		// Picks the strongest mechanism the server offers; PLAIN and
		// LOGIN only over an encrypted connection.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	m := &SMTPMailer{cfg: cfg, opts: opts}
	if _, err := m.client(cfg.Timeout); err != nil {
		return nil, err
	}
	return m, nil
}

// client returns a go-mail client for one message.
func (m *SMTPMailer) client(timeout time.Duration) (*mail.Client, error) {
	c, err := mail.NewClient(m.cfg.Host, append(m.opts, mail.WithTimeout(timeout))...)
	if err != nil {
		return nil, fmt.Errorf("smtp %s:%d: %w", m.cfg.Host, m.cfg.Port, err)
	}
	return c, nil
}

// Send delivers one message: plain text, with the HTML body as an
// alternative when there is one. The context bounds the connection and,
// through its deadline, each command; errors name the server, never the
// credentials.
func (m *SMTPMailer) Send(ctx context.Context, ml fieldops.Mail) error {
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("smtp %s:%d: from: %w", m.cfg.Host, m.cfg.Port, err)
	}
	if err := msg.To(ml.To); err != nil {
		return &fieldops.Error{Code: fieldops.EINVALID, Field: "email", Err: err,
			Message: fmt.Sprintf("%q is not an e-mail address we can send to.", ml.To)}
	}
	msg.Subject(oneLine(ml.Subject))
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, ml.Text)
	if ml.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, ml.HTML)
	}
	if err := ctx.Err(); err != nil {
		return m.sendError(err)
	}
	timeout := m.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	c, err := m.client(timeout)
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return m.sendError(err)
	}
	return nil
}

func (m *SMTPMailer) sendError(err error) error {
	return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Err: fmt.Errorf("smtp %s:%d: %w", m.cfg.Host, m.cfg.Port, err),
		Message: "The e-mail could not be sent just now. Please try again in a few minutes."}
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }), " ")
}
