package admin

import (
	"bytes"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"

	"github.com/fieldops/fieldops"
)

// telegramView is the member's own Telegram page.
type telegramView struct {
	Linked bool
	Device string    // e.g. "Telegram @sam", from the link's session
	Since  time.Time // when it was linked
	// Link is a new deep link, shown once in the answer to the POST that
	// made it; QR is the same link as a data: URI image.
	Link    *fieldops.TelegramLinkToken
	QR      template.URL
	Minutes int
	// Sandbox: no real bot, the link opens in the sandbox instead.
	Sandbox bool
}

func (s *Server) handleTelegram(w http.ResponseWriter, r *http.Request) {
	s.renderTelegram(w, r, http.StatusOK, nil, nil)
}

// renderTelegram shows the Telegram page, with a new link or an error.
func (s *Server) renderTelegram(w http.ResponseWriter, r *http.Request, status int, link *fieldops.TelegramLinkToken, failed error) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	v := telegramView{Linked: me.member.TelegramLinked, Link: link, Minutes: int(fieldops.LinkTokenTTL / time.Minute), Sandbox: s.opt.Sandbox != nil}
	if v.Linked {
		sessions, err := s.svc.Sessions.FindSessions(ctx, fieldops.SessionFilter{UserID: me.member.UserID})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, ss := range sessions {
			if ss.Channel == fieldops.ChannelTelegram && ss.CreatedAt.After(v.Since) {
				v.Device, v.Since = ss.Device, ss.CreatedAt
			}
		}
	}
	if link != nil && !v.Sandbox {
		qr, err := qrDataURL(link.URL)
		if err != nil {
			s.fail(w, r, fieldops.Internal(err, "telegram link QR code"))
			return
		}
		v.QR = qr
	}
	s.render(w, r, status, "telegram", &view{Title: "Telegram", Error: fieldops.ErrorMessage(failed), Data: v})
}

// handleTelegramLink makes a one-time deep link for the member's own
// Telegram account. The token is only ever in this response's body
// (no-store, shown once): never in a URL of ours, so it reaches no log
// and no Referer; the QR code is a data: URI in the same page, which the
// CSP allows (img-src 'self' data:).
func (s *Server) handleTelegramLink(w http.ResponseWriter, r *http.Request) {
	link, err := s.svc.Telegram.CreateLinkToken(r.Context())
	if err != nil {
		s.telegramError(w, r, err)
		return
	}
	s.renderTelegram(w, r, http.StatusOK, link, nil)
}

// handleTelegramUnlink ends the member's own Telegram link.
func (s *Server) handleTelegramUnlink(w http.ResponseWriter, r *http.Request) {
	me, _ := memberFrom(r.Context())
	if err := s.svc.Telegram.Unlink(r.Context(), me.member.UserID); err != nil {
		s.telegramError(w, r, err)
		return
	}
	s.back(w, r, "/telegram", "Your Telegram account is unlinked: the bot no longer acts for you.")
}

// telegramError shows the Telegram page again with the service's message;
// errors that leave no page to show go to the error page.
func (s *Server) telegramError(w http.ResponseWriter, r *http.Request, err error) {
	switch fieldops.ErrorCode(err) {
	case fieldops.EUNAUTHORIZED, fieldops.EUNAVAILABLE, fieldops.EINTERNAL:
		s.fail(w, r, err)
		return
	}
	s.renderTelegram(w, r, statusOf(err), nil, err)
}

// handleMemberTelegramUnlink ends a member's Telegram link from the team
// page; the service decides who may (session.revoke_all, an Owner's only
// by an Owner).
func (s *Server) handleMemberTelegramUnlink(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Team member not found."))
		return
	}
	if err := s.svc.Telegram.Unlink(r.Context(), id); err != nil {
		switch fieldops.ErrorCode(err) {
		case fieldops.ENOTFOUND, fieldops.EUNAUTHORIZED, fieldops.EUNAVAILABLE, fieldops.EINTERNAL:
			s.fail(w, r, err)
		default:
			s.teamError(w, r, err)
		}
		return
	}
	s.back(w, r, "/team", "Their Telegram account is unlinked: the bot no longer acts for them.")
}

// qrDataURL draws text as a QR code and returns it as a PNG data: URI.
// The PNG is ours, never user input, so the URL is trusted.
func qrDataURL(text string) (template.URL, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", err
	}
	code, err = barcode.Scale(code, 240, 240)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, code); err != nil {
		return "", fmt.Errorf("png: %w", err)
	}
	return qrURL(buf.Bytes()), nil
}
