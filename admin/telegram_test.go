package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

// mustLinkTelegram links the member's Telegram account tgID as the bot
// would: a link token of theirs, consumed for a private chat.
func (a *app) mustLinkTelegram(t testing.TB, orgID, userID, tgID int64) *fieldops.TelegramLink {
	t.Helper()
	ctx := fieldops.NewContext(context.Background(), fieldops.Actor{UserID: userID, OrgID: orgID, Channel: fieldops.ChannelWeb})
	tok, err := a.telegram.CreateLinkToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.telegram.Link(context.Background(), tok.Token, fieldops.TelegramUser{ID: tgID, ChatID: tgID, Private: true,
		Username: fmt.Sprintf("user%d", tgID), FirstName: "Sam"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var deepLinkRE = regexp.MustCompile(`href="(https://t\.me/` + testBotUsername + `\?start=([A-Za-z0-9_-]+))"`)

// TestTelegramLink: a member makes a deep link on their Telegram page,
// shown with a QR code and never in a URL of ours; the token links their
// account once, and they unlink it again.
func TestTelegramLink(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	eng := o.client[fieldops.RoleEngineer]

	code, body, _ := a.do(t, eng, "GET", "/telegram", nil)
	if code != 200 || !strings.Contains(body, "not linked") || !strings.Contains(body, `action="/telegram/link"`) {
		t.Fatalf("Telegram page = %d\n%s", code, excerpt(body))
	}
	if !strings.Contains(body, `<a href="/telegram">Telegram</a>`) {
		t.Error("no Telegram entry in the navigation")
	}

	code, body, resp := a.do(t, eng, "POST", "/telegram/link", url.Values{})
	if code != 200 {
		t.Fatalf("link = %d\n%s", code, excerpt(body))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	body = html.UnescapeString(body)
	m := deepLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no deep link in\n%s", body)
	}
	token := m[2]
	if !strings.Contains(body, "15 minutes") || !strings.Contains(body, "works once") {
		t.Errorf("the page does not say how long and how often the link works")
	}
	// The QR code is a PNG in a data: URI of the page itself.
	q := regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`).FindStringSubmatch(body)
	if q == nil {
		t.Fatal("no QR code image")
	}
	raw, err := base64.StdEncoding.DecodeString(q[1])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil || img.Bounds().Dx() != 240 {
		t.Fatalf("QR code: %v, %v", img, err)
	}
	// The token appears only in the deep link itself (never in a URL of
	// ours, where it would reach logs and Referer headers), and the page
	// shows it once: reloading the Telegram page does not show it again.
	if n, inLink := strings.Count(body, token), strings.Count(body, "?start="+token); n != inLink || n == 0 {
		t.Errorf("the token appears %d times, %d of them in the deep link", n, inLink)
	}
	if _, again, _ := a.do(t, eng, "GET", "/telegram", nil); strings.Contains(html.UnescapeString(again), token) {
		t.Error("the token is shown again on the Telegram page")
	}

	// The token links the account, once.
	tg := fieldops.TelegramUser{ID: 4242, ChatID: 4242, Private: true, Username: "sam_sparks", FirstName: "Sam"}
	if _, err := a.telegram.Link(context.Background(), token, tg); err != nil {
		t.Fatalf("link with the page's token: %v", err)
	}
	if _, err := a.telegram.Link(context.Background(), token, tg); err == nil {
		t.Fatal("the token worked twice")
	}
	code, body, _ = a.do(t, eng, "GET", "/telegram", nil)
	if code != 200 || !strings.Contains(body, "is linked") || !strings.Contains(body, "@sam_sparks") || !strings.Contains(body, `action="/telegram/unlink"`) {
		t.Fatalf("after linking = %d\n%s", code, excerpt(body))
	}

	// Unlink.
	if code, body, resp := a.do(t, eng, "POST", "/telegram/unlink", url.Values{}); code != 303 || resp.Header.Get("Location") != "/telegram" {
		t.Fatalf("unlink = %d\n%s", code, excerpt(body))
	}
	if _, _, err := a.telegram.Resolve(context.Background(), tg.ID); fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED {
		t.Fatalf("Resolve after unlink: %v", err)
	}
	code, body, _ = a.do(t, eng, "GET", "/telegram", nil)
	if !strings.Contains(body, "unlinked") || !strings.Contains(body, "not linked") {
		t.Fatalf("after unlinking = %d\n%s", code, excerpt(body))
	}
	// Nothing left to unlink: the page says so.
	code, body, _ = a.do(t, eng, "POST", "/telegram/unlink", url.Values{})
	if code != http.StatusNotFound || !strings.Contains(body, `class="error"`) {
		t.Fatalf("unlink again = %d\n%s", code, excerpt(body))
	}
}

// TestTelegramUnlinkMember: the team page offers Unlink to those who may
// end others' sessions; the service refuses the rest, and its message is
// shown.
func TestTelegramUnlinkMember(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	eng, owner := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleOwner]
	a.mustLinkTelegram(t, o.id, eng, 5001)
	a.mustLinkTelegram(t, o.id, owner, 5002)
	unlinkEng := fmt.Sprintf(`action="/team/%d/telegram/unlink"`, eng)

	t.Run("Hidden", func(t *testing.T) {
		_, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", "/team", nil)
		if strings.Contains(body, unlinkEng) {
			t.Error("a Manager, who cannot end others' sessions, is offered Unlink")
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleManager], "POST", fmt.Sprintf("/team/%d/telegram/unlink", eng), url.Values{})
		if code != http.StatusForbidden || !strings.Contains(body, `class="error"`) {
			t.Fatalf("= %d\n%s", code, excerpt(body))
		}
	})
	t.Run("ErrOwnerByAdmin", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", fmt.Sprintf("/team/%d/telegram/unlink", owner), url.Values{})
		if code != http.StatusForbidden || !strings.Contains(body, `class="error"`) || !strings.Contains(body, "<table>") {
			t.Fatalf("= %d, want 403 on the team page\n%s", code, excerpt(body))
		}
	})
	t.Run("OK", func(t *testing.T) {
		_, body, _ := a.do(t, o.client[fieldops.RoleAdmin], "GET", "/team", nil)
		if !strings.Contains(body, unlinkEng) {
			t.Fatal("an Admin is not offered Unlink for a linked engineer")
		}
		code, body, resp := a.do(t, o.client[fieldops.RoleAdmin], "POST", fmt.Sprintf("/team/%d/telegram/unlink", eng), url.Values{})
		if code != 303 || resp.Header.Get("Location") != "/team" {
			t.Fatalf("= %d\n%s", code, excerpt(body))
		}
		if _, _, err := a.telegram.Resolve(context.Background(), 5001); fieldops.ErrorCode(err) != fieldops.EUNAUTHORIZED {
			t.Fatalf("Resolve after unlink: %v", err)
		}
		if _, _, err := a.telegram.Resolve(context.Background(), 5002); err != nil {
			t.Fatalf("the Owner's link went too: %v", err)
		}
	})
	t.Run("ErrOtherOrganisation", func(t *testing.T) {
		other := a.mustOrg(t)
		code, _, _ := a.do(t, other.client[fieldops.RoleOwner], "POST", fmt.Sprintf("/team/%d/telegram/unlink", owner), url.Values{})
		if code != http.StatusNotFound {
			t.Fatalf("= %d, want 404", code)
		}
	})
}

// TestInviteOffersTelegram: a new member lands on a dashboard that offers
// to link Telegram, until they have.
func TestInviteOffersTelegram(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	_, token, err := a.invites.CreateInvitation(o.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: "newsparky@example.co.uk", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	c := a.newClient(t)
	code, body, resp := a.do(t, c, "POST", "/invite/"+token, url.Values{"name": {"Nell Newsparky"}, "password": {"consumer unit swap"}})
	if code != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("accept = %d → %s\n%s", code, resp.Header.Get("Location"), excerpt(body))
	}
	_, body, _ = a.do(t, c, "GET", "/", nil)
	if !strings.Contains(body, `<a class="button" href="/telegram">Link your Telegram now</a>`) {
		t.Fatalf("the landing page does not offer Telegram\n%s", body)
	}
	// Once linked, the offer is gone.
	u, err := a.db.FindUserByEmail(context.Background(), "newsparky@example.co.uk")
	if err != nil {
		t.Fatal(err)
	}
	a.mustLinkTelegram(t, o.id, u.ID, 6001)
	if _, body, _ = a.do(t, c, "GET", "/", nil); strings.Contains(body, "Link your Telegram now") {
		t.Error("a linked member is still offered to link")
	}
}
