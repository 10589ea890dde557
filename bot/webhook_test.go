package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

const testSecret = "s3cret_-Token"

// webhookBot makes a webhook-mode bot served by an httptest server.
func (env *engineEnv) webhookBot(t *testing.T, edit func(*Options)) (*Bot, *httptest.Server) {
	t.Helper()
	var b *Bot
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.WebhookHandler().ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	b = env.newBot(t, func(o *Options) {
		o.Mode, o.WebhookURL, o.WebhookSecret = ModeWebhook, hs.URL+"/telegram", testSecret
		if edit != nil {
			edit(o)
		}
	})
	return b, hs
}

// rawUpdate is a text message from u as Telegram posts it.
func rawUpdate(id int64, u *telegramtest.User, text string) string {
	return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"date":%d,"chat":{"id":%d,"type":"private","first_name":%q},`+
		`"from":{"id":%d,"is_bot":false,"first_name":%q},"text":%q}}`,
		id, id%1000+1, time.Now().Unix(), u.ChatID(), u.FirstName, u.ID, u.FirstName, text)
}

func post(t *testing.T, url, secret, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebhookSecret(t *testing.T) {
	env := newEngineEnv(t, "", 1, 1)
	alice := env.users[0]
	b, hs := env.webhookBot(t, nil)
	url := hs.URL + "/telegram"

	for _, tc := range []struct {
		name, secret string
		want         int
	}{
		{"ErrMissing", "", http.StatusUnauthorized},
		{"ErrWrong", "s3cret_-Tokem", http.StatusUnauthorized},
		{"ErrPrefix", "s3cret", http.StatusUnauthorized},
		{"ErrLonger", testSecret + "x", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(t, url, tc.secret, rawUpdate(500, alice, "forged")); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	if n := env.count(t, `SELECT count(*) FROM telegram_updates`); n != 0 {
		t.Fatalf("%d updates stored without the secret", n)
	}
	t.Run("ErrNotAnUpdate", func(t *testing.T) {
		if got := post(t, url, testSecret, `{"hello":1}`); got != http.StatusBadRequest {
			t.Fatalf("status %d", got)
		}
	})
	t.Run("OK", func(t *testing.T) {
		// Delivered twice (Telegram retries when it misses our answer):
		// stored once, handled once, answered once.
		for range 2 {
			if got := post(t, url, testSecret, rawUpdate(501, alice, "direct")); got != http.StatusOK {
				t.Fatalf("status %d", got)
			}
		}
		if n := env.count(t, `SELECT count(*) FROM telegram_updates WHERE update_id = 501 AND status = 'pending'`); n != 1 {
			t.Fatal("not stored before the 200")
		}
		start(t, b.Run)
		msgs := env.srv.WaitSent(t, alice.ChatID(), 1, 10*time.Second)
		if msgs[0].Text != "ok direct" {
			t.Fatalf("answer %q", msgs[0].Text)
		}
		if got := post(t, url, testSecret, rawUpdate(501, alice, "direct")); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
		time.Sleep(300 * time.Millisecond)
		env.checkOnce(t, 1)
		if n := len(env.srv.Messages(alice.ChatID())); n != 1 {
			t.Fatalf("%d answers", n)
		}
	})
}

func TestWebhookEndToEnd(t *testing.T) {
	env := newEngineEnv(t, "", 1, 3, telegramtest.WithLimits(30, 1, 20, 50*time.Millisecond))
	b, hs := env.webhookBot(t, nil)
	start(t, b.Run)
	env.sendMessages(env.users, "m", 3)
	env.waitAnswered(t, env.users, 3, 15*time.Second)
	for _, u := range env.users {
		if got := strings.Join(env.answers(u.ChatID()), "|"); got != "ok m0|ok m1|ok m2" {
			t.Fatalf("chat %d: %s", u.ChatID(), got)
		}
	}
	env.checkOnce(t, 9)
	atts := env.srv.WebhookAttempts()
	if len(atts) != 9 {
		t.Fatalf("%d webhook attempts, want 9", len(atts))
	}
	for _, a := range atts {
		if a.Status != http.StatusOK || a.Secret != testSecret || a.URL != hs.URL+"/telegram" {
			t.Fatalf("attempt %+v", a)
		}
	}
	if n := len(env.srv.RequestsFor("getUpdates")); n != 0 {
		t.Fatalf("%d getUpdates in webhook mode", n)
	}
}

// flakyInbox fails the first n Stores, as a database that is away.
type flakyInbox struct {
	fieldops.Inbox
	fails atomic.Int32
}

func (f *flakyInbox) Store(ctx context.Context, batch []fieldops.InboundUpdate, next int64) error {
	if f.fails.Add(-1) >= 0 {
		return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Err: errors.New("database away")}
	}
	return f.Inbox.Store(ctx, batch, next)
}

func TestWebhookStoreFails(t *testing.T) {
	env := newEngineEnv(t, "", 1, 1, telegramtest.WithWebhookRetryDelay(50*time.Millisecond))
	alice := env.users[0]
	b, _ := env.webhookBot(t, nil)
	flaky := &flakyInbox{Inbox: env.inbox}
	flaky.fails.Store(2)
	b.svc.Inbox = flaky
	start(t, b.Run)
	env.srv.SendText(alice, "hello")
	msgs := env.srv.WaitSent(t, alice.ChatID(), 1, 10*time.Second)
	if msgs[0].Text != "ok hello" {
		t.Fatalf("answer %q", msgs[0].Text)
	}
	var statuses []int
	for _, a := range env.srv.WebhookAttempts() {
		statuses = append(statuses, a.Status)
	}
	if fmt.Sprint(statuses) != "[503 503 200]" {
		t.Fatalf("webhook answers %v, want two 503s (Telegram retries) then 200", statuses)
	}
	env.checkOnce(t, 1)
}
