package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
)

// sandboxID is a member's Telegram id in the sandbox.
func sandboxID(orgID, userID int64) int64 { return 7_000_000_000 + orgID<<24 + userID }

// newSandboxApp is a panel with a sandbox on a local Bot API server.
func newSandboxApp(t *testing.T) *app {
	t.Helper()
	a := newApp(t)
	a.tg = telegramtest.New(t, telegramtest.WithoutLimits())
	return a.withServer(t, a.sessions, a.auth)
}

// botSay sends a message from the bot to chatID through the Bot API, as
// the bot would, with one inline button if buttonText is set, and
// returns its message id.
func botSay(t testing.TB, srv *telegramtest.Server, chatID int64, text, buttonText, data string) int {
	t.Helper()
	srv.AddUser(telegramtest.User{ID: chatID, FirstName: "Sandbox"}) // the chat must exist
	params := map[string]any{"chat_id": chatID, "text": text}
	if buttonText != "" {
		params["reply_markup"] = map[string]any{"inline_keyboard": [][]map[string]string{{{"text": buttonText, "callback_data": data}}}}
	}
	return botCall(t, srv, "sendMessage", params)
}

func botCall(t testing.TB, srv *telegramtest.Server, method string, params map[string]any) int {
	t.Helper()
	b, _ := json.Marshal(params)
	resp, err := http.Post(srv.URL()+"/bot"+srv.Token()+"/"+method, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		OK          bool
		Description string
		Result      json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !out.OK {
		t.Fatalf("%s: %v %s", method, err, out.Description)
	}
	var msg struct {
		MessageID int `json:"message_id"`
	}
	json.Unmarshal(out.Result, &msg) // true for methods that return no message
	return msg.MessageID
}

var versionRE = regexp.MustCompile(`hx-get="(/sandbox/\d+/history\?v=[0-9a-f]+)"`)

// TestSandboxChat: an Owner chats as an engineer: text, location, photo
// and a button press reach the local Bot API server as that engineer's
// messages, and the bot's replies show in the history the page polls.
func TestSandboxChat(t *testing.T) {
	t.Parallel()
	a := newSandboxApp(t)
	o := a.mustOrg(t)
	owner := o.client[fieldops.RoleOwner]
	engID := o.user[fieldops.RoleEngineer]
	chat := fmt.Sprintf("/sandbox/%d", engID)
	tgID := sandboxID(o.id, engID)

	code, body, _ := a.do(t, owner, "GET", "/sandbox", nil)
	if code != 200 || !strings.Contains(body, `href="`+chat+`"`) || !strings.Contains(body, `<a href="/sandbox">Sandbox</a>`) {
		t.Fatalf("sandbox page = %d\n%s", code, excerpt(body))
	}

	// Text.
	if code, body, resp := a.do(t, owner, "POST", chat+"/text", url.Values{"text": {"hello bot"}}); code != 303 || resp.Header.Get("Location") != chat {
		t.Fatalf("send text = %d\n%s", code, excerpt(body))
	}
	code, body, _ = a.do(t, owner, "GET", chat, nil)
	if code != 200 || !strings.Contains(body, "hello bot") || !strings.Contains(body, `hx-trigger="every 1s"`) {
		t.Fatalf("chat page = %d\n%s", code, excerpt(body))
	}
	h := a.tg.History(tgID)
	if len(h) != 1 || h[0].Text != "hello bot" || h[0].From == nil || h[0].From.ID != tgID {
		t.Fatalf("the server got %+v", h)
	}
	if u := a.tg.Users(); len(u) != 1 || u[0].FirstName != "Engineer" {
		t.Errorf("sandbox users = %+v", u)
	}

	// Polling: 204 while nothing changed, the new history once the bot
	// answered.
	poll := versionRE.FindStringSubmatch(body)
	if poll == nil {
		t.Fatal("no polling address")
	}
	if code, _, _ := a.do(t, owner, "GET", html.UnescapeString(poll[1]), nil); code != http.StatusNoContent {
		t.Fatalf("unchanged history = %d, want 204", code)
	}
	msgID := botSay(t, a.tg, tgID, "EICR at 12 Princess St, 10:00", "Check in", "job:checkin:42")
	botCall(t, a.tg, "sendMessage", map[string]any{"chat_id": tgID, "text": "Share your location to check in.",
		"reply_markup": map[string]any{"keyboard": [][]map[string]any{{{"text": "Share location", "request_location": true}}, {{"text": "Cancel"}}}}})
	code, body, _ = a.do(t, owner, "GET", html.UnescapeString(poll[1]), nil)
	if code != 200 || !strings.Contains(body, "EICR at 12 Princess St") || strings.Contains(body, "<html") {
		t.Fatalf("changed history = %d\n%s", code, body)
	}
	if !strings.Contains(body, `value="job:checkin:42"`) || !strings.Contains(body, "Share location") || !strings.Contains(body, `value="Cancel"`) {
		t.Fatalf("no buttons in\n%s", body)
	}

	// Press the inline button; the bot's answer shows under the message.
	if code, body, _ := a.do(t, owner, "POST", chat+"/press", url.Values{"message": {fmt.Sprint(msgID)}, "data": {"job:checkin:42"}}); code != 303 {
		t.Fatalf("press = %d\n%s", code, excerpt(body))
	}
	cbs := a.tg.Callbacks()
	if len(cbs) != 1 || cbs[0].Data != "job:checkin:42" || cbs[0].UserID != tgID || cbs[0].MessageID != msgID {
		t.Fatalf("callbacks = %+v", cbs)
	}
	botCall(t, a.tg, "answerCallbackQuery", map[string]any{"callback_query_id": cbs[0].ID, "text": "Checked in at 10:02"})
	if _, body, _ := a.do(t, owner, "GET", chat+"/history", nil); !strings.Contains(body, "Checked in at 10:02") {
		t.Errorf("the bot's answer is not shown\n%s", body)
	}
	// A button that is not there is refused with a message.
	code, body, _ = a.do(t, owner, "POST", chat+"/press", url.Values{"message": {fmt.Sprint(msgID)}, "data": {"job:checkin:99"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "no longer there") {
		t.Fatalf("press a missing button = %d\n%s", code, excerpt(body))
	}

	// Location.
	if code, body, _ := a.do(t, owner, "POST", chat+"/location", url.Values{"lat": {"53.4776"}, "lng": {"-2.2367"}, "accuracy": {"12"}}); code != 303 {
		t.Fatalf("location = %d\n%s", code, excerpt(body))
	}
	h = a.tg.History(tgID)
	if l := h[len(h)-1].Location; l == nil || l.Latitude != 53.4776 || l.Longitude != -2.2367 || l.HorizontalAccuracy != 12 {
		t.Fatalf("last message = %+v", h[len(h)-1])
	}
	code, body, _ = a.do(t, owner, "POST", chat+"/location", url.Values{"lat": {"north"}, "lng": {"-2.2367"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Latitude") {
		t.Fatalf("bad location = %d\n%s", code, excerpt(body))
	}

	// Photo, as multipart.
	code, body = postPhoto(t, a, owner, chat+"/photo", "meter.png", pngBytes(t), "meter cupboard")
	if code != 303 {
		t.Fatalf("photo = %d\n%s", code, excerpt(body))
	}
	h = a.tg.History(tgID)
	if last := h[len(h)-1]; len(last.Photo) == 0 || last.Caption != "meter cupboard" {
		t.Fatalf("last message = %+v", last)
	}
	if _, body, _ := a.do(t, owner, "GET", chat+"/history", nil); !strings.Contains(body, "photo") || !strings.Contains(body, "meter cupboard") {
		t.Errorf("the photo is not shown\n%s", body)
	}
	code, body = postPhoto(t, a, owner, chat+"/photo", "notes.txt", []byte("not a photo at all"), "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "not a photo") {
		t.Fatalf("text as a photo = %d\n%s", code, excerpt(body))
	}
	code, body = postPhoto(t, a, owner, chat+"/photo", "huge.png", bytes.Repeat([]byte{0}, 21<<20), "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "larger than 20 MB") {
		t.Fatalf("a 21 MB photo = %d\n%s", code, excerpt(body))
	}
}

// TestSandboxPrefillsSite: the location form starts at the site of the
// engineer's job today.
func TestSandboxPrefillsSite(t *testing.T) {
	t.Parallel()
	a := newSandboxApp(t)
	o := a.mustFieldOrg(t)
	// Early today in the organisation's zone, so that the job is today's
	// whenever the test runs.
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(london)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 1, 0, 0, london)
	o.mustJob(t, "Consumer unit swap", today, today.Add(2*time.Hour),
		fieldops.Assignment{UserID: o.user[fieldops.RoleEngineer], Primary: true})
	_, body, _ := a.do(t, o.client[fieldops.RoleOwner], "GET", fmt.Sprintf("/sandbox/%d", o.user[fieldops.RoleEngineer]), nil)
	if !strings.Contains(body, `name="lat" value="53.4776"`) || !strings.Contains(body, "Consumer unit swap") {
		t.Fatalf("location not prefilled with the site\n%s", excerpt(body))
	}
}

// TestSandboxStart: a member opens their own link in the sandbox, which
// sends /start with the token as their sandbox account; those who may
// use the sandbox land in the chat.
func TestSandboxStart(t *testing.T) {
	t.Parallel()
	a := newSandboxApp(t)
	o := a.mustOrg(t)
	for _, role := range []fieldops.Role{fieldops.RoleEngineer, fieldops.RoleOwner} {
		t.Run(role.String(), func(t *testing.T) {
			c, id := o.client[role], o.user[role]
			code, body, _ := a.do(t, c, "POST", "/telegram/link", url.Values{})
			m := regexp.MustCompile(`name="token" value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(body)
			if code != 200 || m == nil || strings.Contains(body, "t.me/") || strings.Contains(body, "data:image/png") {
				t.Fatalf("link in the sandbox = %d\n%s", code, excerpt(body))
			}
			code, body, resp := a.do(t, c, "POST", "/sandbox/start", url.Values{"token": {m[1]}})
			want := "/telegram"
			if role == fieldops.RoleOwner {
				want = fmt.Sprintf("/sandbox/%d", id)
			}
			if code != 303 || resp.Header.Get("Location") != want {
				t.Fatalf("start = %d → %s, want → %s\n%s", code, resp.Header.Get("Location"), want, excerpt(body))
			}
			h := a.tg.History(sandboxID(o.id, id))
			if len(h) != 1 || h[0].Text != "/start "+m[1] {
				t.Fatalf("the sandbox got %+v", h)
			}
			// The bot links with it as it would from Telegram.
			if _, err := a.telegram.Link(t.Context(), m[1], fieldops.TelegramUser{ID: sandboxID(o.id, id), ChatID: sandboxID(o.id, id), Private: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
	_, body, _ := a.do(t, o.client[fieldops.RoleOwner], "GET", "/sandbox", nil)
	if n := strings.Count(body, "<td>linked</td>"); n != 2 {
		t.Errorf("%d linked members on the sandbox page, want 2", n)
	}
}

// TestSandboxRefused: the sandbox acts as other people, so only members
// who can change the organisation's settings use it, and never as
// someone with more permissions or of another organisation; without a
// sandbox the page does not exist.
func TestSandboxRefused(t *testing.T) {
	t.Parallel()
	a := newSandboxApp(t)
	o := a.mustOrg(t)
	eng, owner := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleOwner]

	t.Run("ErrEngineer", func(t *testing.T) {
		c := o.client[fieldops.RoleEngineer]
		_, body, _ := a.do(t, c, "GET", "/", nil)
		if strings.Contains(body, `href="/sandbox"`) {
			t.Error("an Engineer is shown the Sandbox")
		}
		for _, r := range []struct{ method, path string }{
			{"GET", "/sandbox"}, {"GET", fmt.Sprintf("/sandbox/%d", eng)}, {"GET", fmt.Sprintf("/sandbox/%d", owner)},
			{"POST", fmt.Sprintf("/sandbox/%d/text", owner)},
		} {
			if code, body, _ := a.do(t, c, r.method, r.path, url.Values{"text": {"hi"}}); code != http.StatusForbidden {
				t.Errorf("%s %s = %d, want 403\n%s", r.method, r.path, code, excerpt(body))
			}
		}
	})
	t.Run("ErrAdminAsOwner", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", fmt.Sprintf("/sandbox/%d/text", owner), url.Values{"text": {"hi"}})
		if code != http.StatusForbidden || !strings.Contains(body, "can do things you cannot") {
			t.Fatalf("= %d\n%s", code, excerpt(body))
		}
		if h := a.tg.History(sandboxID(o.id, owner)); len(h) != 0 {
			t.Fatalf("sent anyway: %+v", h)
		}
	})
	t.Run("ErrOtherOrganisation", func(t *testing.T) {
		other := a.mustOrg(t)
		code, _, _ := a.do(t, other.client[fieldops.RoleOwner], "POST", fmt.Sprintf("/sandbox/%d/text", eng), url.Values{"text": {"hi"}})
		if code != http.StatusNotFound {
			t.Fatalf("= %d, want 404", code)
		}
	})
	t.Run("ErrNoSandbox", func(t *testing.T) {
		b := newApp(t)
		p := b.mustOrg(t)
		code, _, _ := b.do(t, p.client[fieldops.RoleOwner], "GET", "/sandbox", nil)
		if code != http.StatusNotFound {
			t.Fatalf("GET /sandbox without a sandbox = %d, want 404", code)
		}
		if _, body, _ := b.do(t, p.client[fieldops.RoleOwner], "GET", "/", nil); strings.Contains(body, `href="/sandbox"`) {
			t.Error("the navigation offers a sandbox that does not exist")
		}
	})
}

func pngBytes(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		img.Set(x, x%48, color.RGBA{200, 30, 30, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postPhoto uploads a file as the photo form does.
func postPhoto(t *testing.T, a *app, c *http.Client, path, filename string, data []byte, caption string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("photo", filename)
	fw.Write(data)
	mw.WriteField("caption", caption)
	mw.Close()
	req, _ := http.NewRequest("POST", a.srv.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserSandboxChat is the sandbox in a real browser, under the
// panel's CSP: type a message and see it, see the bot's reply arrive by
// polling, and press its button.
func TestBrowserSandboxChat(t *testing.T) {
	exe := chromium(t)
	a := newApp(t)
	o := a.mustOrg(t)
	tg := telegramtest.New(t, telegramtest.WithoutLimits())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s, err := admin.NewServer(nil, admin.Services{
		Sessions: a.sessions, Auth: a.auth, Orgs: a.orgs, Members: a.members, Jobs: store.NewJobService(a.db),
		Audit: store.NewAuditService(a.db), Invitations: a.invites, Tokens: store.NewAPITokenService(a.db, a.sessions),
		Telegram: a.telegram,
	}, admin.Options{BaseURL: base, Sandbox: tg.Sandbox()})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.Handler()}}
	srv.Start()
	t.Cleanup(srv.Close)

	_, token, err := a.sessions.CreateSession(t.Context(), fieldops.NewSession{OrgID: o.id, UserID: o.user[fieldops.RoleOwner],
		Channel: fieldops.ChannelWeb, UserAgent: "test", TwoFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	b := browserCtx(t, exe)
	httpOnly := true
	if _, err := chromedp.Call(b, network.SetCookie, network.SetCookieParams{Name: "fieldops", Value: token, URL: base, Path: "/", HTTPOnly: &httpOnly}); err != nil {
		t.Fatal(err)
	}
	engID := o.user[fieldops.RoleEngineer]

	// From the navigation to the engineer's chat; type and send.
	do(t, b, chromedp.Navigate(base+"/"),
		chromedp.Click(chromedp.CSS(`nav a[href="/sandbox"]`)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/sandbox/%d"]`, engID))),
		chromedp.WaitVisible(chromedp.CSS(`input[name=text]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=text]`), "on my way"),
		chromedp.Submit(chromedp.CSS(`input[name=text]`)),
		chromedp.WaitVisible(chromedp.CSS(`.msg.from-me`)))
	if got := get(t, b, chromedp.Text(chromedp.CSS(`.msg.from-me .pre`))); got != "on my way" {
		t.Fatalf("my message shows %q", got)
	}
	if h := tg.History(sandboxID(o.id, engID)); len(h) != 1 || h[0].Text != "on my way" {
		t.Fatalf("the server got %+v", h)
	}

	// The bot answers; the page picks it up by polling, and its button
	// presses.
	msgID := botSay(t, tg, sandboxID(o.id, engID), "EICR at 10:00", "Check in", "job:checkin:7")
	do(t, b, chromedp.WaitVisible(chromedp.CSS(`.msg.from-bot button.inline-btn`)),
		chromedp.Click(chromedp.CSS(`.msg.from-bot button.inline-btn`)))
	deadline := time.Now().Add(10 * time.Second)
	for len(tg.Callbacks()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if cbs := tg.Callbacks(); len(cbs) != 1 || cbs[0].Data != "job:checkin:7" || cbs[0].MessageID != msgID {
		t.Fatalf("callbacks = %+v", cbs)
	}

	// A refused send shows why.
	do(t, b, chromedp.Click(chromedp.CSS(`details summary`)),
		chromedp.SetValue(chromedp.CSS(`input[name=lat]`), "north"),
		chromedp.Submit(chromedp.CSS(`input[name=lat]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)))
	if msg := get(t, b, chromedp.Text(chromedp.CSS(`p.error`))); !strings.Contains(msg, "Latitude") {
		t.Fatalf("error shown: %q", msg)
	}
}
