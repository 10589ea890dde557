package store_test

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	smtpmock "github.com/mocktools/go-smtp-mock/v2"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// mustSMTPServer starts a real SMTP listener on a free loopback port for
// the test and returns it with a mailer pointed at it.
func mustSMTPServer(tb testing.TB) (*smtpmock.Server, *store.SMTPMailer) {
	tb.Helper()
	srv := smtpmock.New(smtpmock.ConfigurationAttr{HostAddress: "127.0.0.1", SessionTimeout: 10,
		// Keeps a message when the client sends RSET after it, as go-mail does.
		MultipleMessageReceiving: true})
	if err := srv.Start(); err != nil {
		tb.Fatalf("smtp listener: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	m, err := store.NewSMTPMailer(store.SMTPSettings{Host: "127.0.0.1", Port: srv.PortNumber(),
		From: "fieldops <noreply@fieldops.test>", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, m
}

// receivedMail is a message as the SMTP listener got it, decoded.
type receivedMail struct {
	header netmail.Header
	text   string
	html   string
}

// mustReceive waits for one message and decodes its MIME parts.
func mustReceive(tb testing.TB, srv *smtpmock.Server) receivedMail {
	tb.Helper()
	msgs, err := srv.WaitForMessagesAndPurge(1, 5*time.Second)
	if err != nil {
		tb.Fatalf("no message: %v", err)
	}
	if len(msgs) != 1 || !msgs[0].Msg() {
		tb.Fatalf("messages = %+v", msgs)
	}
	raw := msgs[0].MsgRequest()
	m, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		tb.Fatalf("parse message: %v\n%s", err, raw)
	}
	out := receivedMail{header: m.Header}
	var walk func(ct string, enc string, body io.Reader)
	walk = func(ct, enc string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			tb.Fatalf("content type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				p, err := r.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					tb.Fatalf("part: %v", err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			}
		}
		if strings.EqualFold(enc, "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			tb.Fatalf("read %s: %v", mt, err)
		}
		switch mt {
		case "text/plain":
			out.text = string(b)
		case "text/html":
			out.html = string(b)
		}
	}
	walk(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
	return out
}

func TestSMTPMailer(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		srv, m := mustSMTPServer(t)
		err := m.Send(context.Background(), fieldops.Mail{To: "sam@example.co.uk", Subject: "Hello\r\nBcc: evil@example.com",
			Text: "Plain body £10", HTML: "<p>HTML body</p>"})
		if err != nil {
			t.Fatal(err)
		}
		got := mustReceive(t, srv)
		if to := got.header.Get("To"); !strings.Contains(to, "sam@example.co.uk") {
			t.Errorf("To = %q", to)
		}
		if got.header.Get("Bcc") != "" {
			t.Errorf("a newline in the subject made a header: %q", got.header.Get("Bcc"))
		}
		if subj, _ := new(mime.WordDecoder).DecodeHeader(got.header.Get("Subject")); subj != "Hello Bcc: evil@example.com" {
			t.Errorf("Subject = %q", subj)
		}
		if got.header.Get("Message-Id") == "" || got.header.Get("Date") == "" {
			t.Errorf("no Message-ID or Date: %v", got.header)
		}
		if strings.TrimSpace(got.text) != "Plain body £10" || strings.TrimSpace(got.html) != "<p>HTML body</p>" {
			t.Errorf("text = %q, html = %q", got.text, got.html)
		}
	})

	t.Run("TextOnly", func(t *testing.T) {
		t.Parallel()
		srv, m := mustSMTPServer(t)
		if err := m.Send(context.Background(), fieldops.Mail{To: "sam@example.co.uk", Subject: "Hi", Text: "Only text"}); err != nil {
			t.Fatal(err)
		}
		got := mustReceive(t, srv)
		if strings.TrimSpace(got.text) != "Only text" || got.html != "" {
			t.Errorf("text = %q, html = %q", got.text, got.html)
		}
	})

	t.Run("ErrInvalidRecipient", func(t *testing.T) {
		t.Parallel()
		_, m := mustSMTPServer(t)
		err := m.Send(context.Background(), fieldops.Mail{To: "not an address", Subject: "Hi", Text: "x"})
		wantField(t, err, fieldops.EINVALID, "email")
	})

	t.Run("ErrUnavailable", func(t *testing.T) {
		t.Parallel()
		// A port that was free a moment ago: nothing listens there.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		m, err := store.NewSMTPMailer(store.SMTPSettings{Host: "127.0.0.1", Port: port, Username: "mailer",
			Password: "s3cret-password", From: "noreply@fieldops.test", TLS: "starttls", Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Send(context.Background(), fieldops.Mail{To: "sam@example.co.uk", Subject: "Hi", Text: "x"})
		wantCode(t, err, fieldops.EUNAVAILABLE)
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) || strings.Contains(msg, "s3cret") {
			t.Errorf("error = %q: want the server named and no password", msg)
		}
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		t.Parallel()
		srv, m := mustSMTPServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := m.Send(ctx, fieldops.Mail{To: "sam@example.co.uk", Subject: "Hi", Text: "x"})
		wantCode(t, err, fieldops.EUNAVAILABLE)
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d messages sent with a cancelled context", n)
		}
	})

	t.Run("ErrSettings", func(t *testing.T) {
		t.Parallel()
		for _, cfg := range []store.SMTPSettings{
			{From: "noreply@fieldops.test"},
			{Host: "smtp.example.co.uk", From: "not an address"},
			{Host: "smtp.example.co.uk", From: "noreply@fieldops.test", TLS: "ssl3"},
			{Host: "smtp.example.co.uk", From: "noreply@fieldops.test", Port: 70000},
		} {
			if _, err := store.NewSMTPMailer(cfg); err == nil {
				t.Errorf("NewSMTPMailer(%+v) = nil error", cfg)
			}
		}
		if _, err := store.NewSMTPMailer(store.SMTPSettings{Host: "smtp.example.co.uk", From: "fieldops <noreply@fieldops.test>",
			Username: "u", Password: "p"}); err != nil {
			t.Errorf("defaults: %v", err)
		}
	})
}

func TestInvitationMail(t *testing.T) {
	t.Parallel()
	inv := &fieldops.Invitation{
		ID: 7, OrgID: 1, OrgName: `Sparks & Sons <script>alert(1)</script>`, Email: "sam@example.co.uk",
		Role: fieldops.RoleOfficeStaff, InvitedBy: 2, InvitedByName: "Priya O'Neil",
		// 13:30 UTC in summer is 14:30 in London.
		ExpiresAt: time.Date(2026, 7, 6, 13, 30, 0, 0, time.UTC),
	}
	const link = "https://app.fieldops.test/invite/foi_abc-DEF_123"
	m := fieldops.InvitationMail(inv, link)
	if m.To != inv.Email {
		t.Errorf("To = %q", m.To)
	}
	if want := "Priya O'Neil invited you to Sparks & Sons <script>alert(1)</script> on fieldops"; m.Subject != want {
		t.Errorf("Subject = %q, want %q", m.Subject, want)
	}
	for _, want := range []string{"Priya O'Neil has invited you to join Sparks & Sons", "Office Staff", link,
		"works once, until 14:30 on Monday 6 July 2026 (UK time)", "ask Priya O'Neil to send you a new one", "Not expecting this?"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	for _, want := range []string{`href="` + link + `"`, "Sparks &amp; Sons &lt;script&gt;alert(1)&lt;/script&gt;",
		"Priya O&#39;Neil", "14:30 on Monday 6 July 2026"} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
		}
	}
	if strings.Contains(m.HTML, "<script>") {
		t.Errorf("HTML not escaped:\n%s", m.HTML)
	}
	// Winter: GMT.
	inv.ExpiresAt = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	if m := fieldops.InvitationMail(inv, link); !strings.Contains(m.Text, "09:00 on Monday 5 January 2026") {
		t.Errorf("winter date:\n%s", m.Text)
	}
	// A link that is not a web address never becomes a live link.
	if m := fieldops.InvitationMail(inv, "javascript:alert(1)"); strings.Contains(m.HTML, `href="javascript`) {
		t.Errorf("javascript link kept:\n%s", m.HTML)
	}
}

// TestInvitationMailDelivered sends a real invitation's e-mail through the
// SMTP listener and reads the link back out of it.
func TestInvitationMailDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	svc := newInvitationService(t, e)
	mustAddSeats(t, e, o, 3)
	inv, token, err := svc.CreateInvitation(o.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: "new.starter@example.co.uk", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	srv, m := mustSMTPServer(t)
	link := "https://app.fieldops.test/invite/" + token
	if err := m.Send(context.Background(), fieldops.InvitationMail(inv, link)); err != nil {
		t.Fatal(err)
	}
	got := mustReceive(t, srv)
	if !strings.Contains(got.header.Get("To"), "new.starter@example.co.uk") {
		t.Errorf("To = %q", got.header.Get("To"))
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(got.header.Get("Subject"))
	if !strings.Contains(subj, inv.OrgName) {
		t.Errorf("Subject = %q, want the organisation %q", subj, inv.OrgName)
	}
	for name, body := range map[string]string{"text": got.text, "html": got.html} {
		if !strings.Contains(body, link) || !strings.Contains(body, inv.OrgName) || !strings.Contains(body, inv.InvitedByName) {
			t.Errorf("%s part lacks the link, the organisation or the inviter:\n%s", name, body)
		}
	}
	// The link in the e-mail works.
	found, err := svc.FindInvitationByToken(context.Background(), token)
	if err != nil || found.ID != inv.ID {
		t.Fatalf("FindInvitationByToken = %+v, %v", found, err)
	}
}
