package telegramtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops/bot/telegramtest"
)

// newBot returns a go-telegram/bot client for srv. Its long poll asks for
// a 1 s timeout so that a stuck test fails fast.
func newBot(tb testing.TB, srv *telegramtest.Server, opts ...bot.Option) *bot.Bot {
	tb.Helper()
	opts = append([]bot.Option{
		bot.WithServerURL(srv.URL()),
		bot.WithSkipGetMe(),
		bot.WithHTTPClient(2*time.Second, &http.Client{Timeout: 10 * time.Second}),
		bot.WithErrorsHandler(func(error) {}),
		bot.WithDefaultHandler(func(context.Context, *bot.Bot, *models.Update) {}),
	}, opts...)
	b, err := bot.New(srv.Token(), opts...)
	if err != nil {
		tb.Fatalf("bot.New: %v", err)
	}
	return b
}

// run starts b polling; the returned func stops it and waits for Start to
// return (it also runs at cleanup).
func run(tb testing.TB, b *bot.Bot) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		b.Start(ctx)
		close(done)
	}()
	stop = func() {
		cancel()
		<-done
	}
	tb.Cleanup(stop)
	return stop
}

// collect is a default handler that forwards updates to a channel.
func collect(ch chan<- *models.Update) bot.Option {
	return bot.WithDefaultHandler(func(_ context.Context, _ *bot.Bot, u *models.Update) { ch <- u })
}

func receive[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		tb.Fatalf("nothing received in 5 s")
		var zero T
		return zero
	}
}

// waitFor waits until cond holds, re-checking at each change of the server.
func waitFor(tb testing.TB, srv *telegramtest.Server, what string, cond func() bool) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ch := srv.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

type apiAnswer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call makes a raw Bot API request with a urlencoded form.
func call(tb testing.TB, srv *telegramtest.Server, method string, form url.Values) (int, apiAnswer, string) {
	tb.Helper()
	resp, err := http.PostForm(srv.URL()+"/bot"+srv.Token()+"/"+method, form)
	if err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a apiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		tb.Fatalf("%s: decode %q: %v", method, body, err)
	}
	return resp.StatusCode, a, string(body)
}

func updatesOf(tb testing.TB, a apiAnswer) []models.Update {
	tb.Helper()
	var ups []models.Update
	if err := json.Unmarshal(a.Result, &ups); err != nil {
		tb.Fatalf("decode updates %s: %v", a.Result, err)
	}
	return ups
}

func TestGetMe(t *testing.T) {
	srv := telegramtest.New(t)
	b, err := bot.New(srv.Token(), bot.WithServerURL(srv.URL())) // calls getMe itself
	if err != nil {
		t.Fatal(err)
	}
	me, err := b.GetMe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if me.ID != 123456 || !me.IsBot || me.Username != srv.Me().Username || b.ID() != me.ID {
		t.Fatalf("getMe = %+v", me)
	}
}

func TestAuthAndRouting(t *testing.T) {
	srv := telegramtest.New(t)

	t.Run("ErrUnauthorized", func(t *testing.T) {
		_, err := bot.New("123456:WRONG", bot.WithServerURL(srv.URL()))
		if !errors.Is(err, bot.ErrorUnauthorized) {
			t.Fatalf("err = %v, want ErrorUnauthorized", err)
		}
		resp, err := http.Post(srv.URL()+"/bot123456:WRONG/sendMessage", "application/json", strings.NewReader(`{"chat_id":1,"text":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || string(body) != `{"ok":false,"error_code":401,"description":"Unauthorized"}` {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})

	t.Run("ErrUnknownMethod", func(t *testing.T) {
		status, _, body := call(t, srv, "sendHologram", nil)
		if status != 404 || body != `{"ok":false,"error_code":404,"description":"Not Found"}` {
			t.Fatalf("%d %s", status, body)
		}
	})

	t.Run("OKJSONBody", func(t *testing.T) {
		u := srv.NewUser("Jay", "jay")
		resp, err := http.Post(srv.URL()+"/bot"+srv.Token()+"/SENDMESSAGE", "application/json",
			strings.NewReader(`{"chat_id":`+jsonInt(u.ID)+`,"text":"hi","reply_markup":{"inline_keyboard":[[{"text":"Go","callback_data":"go"}]]}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if m, ok := srv.Last(u.ChatID()); !ok || m.Text != "hi" || len(m.Markup.CallbackData()) != 1 {
			t.Fatalf("last = %+v", m)
		}
	})
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestLongPolling(t *testing.T) {
	srv := telegramtest.New(t)
	alice := srv.NewUser("Alice", "alice")

	got := make(chan *models.Update, 10)
	starts := make(chan string, 10)
	b := newBot(t, srv, bot.WithNotAsyncHandlers(), collect(got))
	b.RegisterHandler(bot.HandlerTypeMessageText, "start", bot.MatchTypeCommand, func(_ context.Context, _ *bot.Bot, u *models.Update) {
		starts <- u.Message.Text
	})

	hello := srv.SendText(alice, "hello")
	start := srv.SendCommand(alice, "/start", "tok123")
	if start.ID != hello.ID+1 {
		t.Fatalf("update ids %d then %d", hello.ID, start.ID)
	}
	stop := run(t, b)

	if u := receive(t, got); u.ID != hello.ID || u.Message.Text != "hello" || u.Message.From.ID != alice.ID || u.Message.Chat.Type != models.ChatTypePrivate {
		t.Fatalf("first update = %+v", u)
	}
	if text := receive(t, starts); text != "/start tok123" {
		t.Fatalf("start handler got %q", text)
	}
	// The library confirms the batch with its next getUpdates.
	waitFor(t, srv, "offset to be confirmed", func() bool { return srv.Pending() == 0 })
	stop()
	// Requests are logged once answered: the cancelled poll is logged as
	// soon as the server notices the client has gone.
	waitFor(t, srv, "a getUpdates with the confirming offset", func() bool {
		for _, r := range srv.RequestsFor("getUpdates") {
			if r.Params["offset"] == jsonInt(start.ID+1) {
				return true
			}
		}
		return false
	})

	// A new instance (no stored offset) gets nothing already confirmed.
	got2 := make(chan *models.Update, 10)
	run(t, newBot(t, srv, bot.WithNotAsyncHandlers(), collect(got2)))
	again := srv.SendText(alice, "again")
	if u := receive(t, got2); u.ID != again.ID {
		t.Fatalf("after restart got update %d (%q), want only %d", u.ID, u.Message.Text, again.ID)
	}
	select {
	case u := <-got2:
		t.Fatalf("redelivered update %d", u.ID)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestGetUpdatesRaw(t *testing.T) {
	srv := telegramtest.New(t, telegramtest.WithWebhookRetryDelay(10*time.Millisecond))
	alice := srv.NewUser("Alice", "alice")
	u1 := srv.SendText(alice, "one")
	srv.SendText(alice, "two")
	u3 := srv.SendText(alice, "three")

	t.Run("OKLimitOffset", func(t *testing.T) {
		_, a, _ := call(t, srv, "getUpdates", url.Values{"limit": {"1"}})
		if ups := updatesOf(t, a); len(ups) != 1 || ups[0].ID != u1.ID {
			t.Fatalf("limit 1: %+v", ups)
		}
		_, a, _ = call(t, srv, "getUpdates", url.Values{"offset": {jsonInt(u1.ID + 1)}})
		if ups := updatesOf(t, a); len(ups) != 2 {
			t.Fatalf("offset: %d updates", len(ups))
		}
		_, a, _ = call(t, srv, "getUpdates", url.Values{"offset": {"-1"}})
		if ups := updatesOf(t, a); len(ups) != 1 || ups[0].ID != u3.ID {
			t.Fatalf("offset -1: %+v", ups)
		}
		_, a, _ = call(t, srv, "getUpdates", url.Values{"offset": {jsonInt(u3.ID + 1)}})
		if ups := updatesOf(t, a); len(ups) != 0 || srv.Pending() != 0 {
			t.Fatalf("after confirming all: %d returned, %d pending", len(ups), srv.Pending())
		}
	})

	t.Run("ErrConflictSecondPoller", func(t *testing.T) {
		first := make(chan apiAnswer, 1)
		go func() {
			resp, err := http.PostForm(srv.URL()+"/bot"+srv.Token()+"/getUpdates", url.Values{"timeout": {"5"}})
			if err != nil {
				first <- apiAnswer{Description: err.Error()}
				return
			}
			defer resp.Body.Close()
			var a apiAnswer
			_ = json.NewDecoder(resp.Body).Decode(&a)
			first <- a
		}()
		waitFor(t, srv, "the first poll", srv.Polling)
		status, a, _ := call(t, srv, "getUpdates", nil)
		if status != 409 || a.Description != "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running" {
			t.Fatalf("second poller: %d %q", status, a.Description)
		}
		began := time.Now()
		u := srv.SendText(alice, "wake up")
		fa := receive(t, first)
		if ups := updatesOf(t, fa); !fa.OK || len(ups) != 1 || ups[0].ID != u.ID {
			t.Fatalf("first poller got %+v", fa)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("long poll answered after %v", d)
		}
		call(t, srv, "getUpdates", url.Values{"offset": {jsonInt(u.ID + 1)}})
	})

	t.Run("OKTimeoutEmpty", func(t *testing.T) {
		began := time.Now()
		_, a, _ := call(t, srv, "getUpdates", url.Values{"timeout": {"1"}})
		if ups := updatesOf(t, a); len(ups) != 0 || time.Since(began) < 900*time.Millisecond {
			t.Fatalf("returned %d updates after %v", len(ups), time.Since(began))
		}
	})

	t.Run("ErrConflictWebhook", func(t *testing.T) {
		if status, a, _ := call(t, srv, "setWebhook", url.Values{"url": {"http://127.0.0.1:1/hook"}}); status != 200 || !a.OK {
			t.Fatalf("setWebhook: %d %+v", status, a)
		}
		status, a, _ := call(t, srv, "getUpdates", nil)
		if status != 409 || a.Description != "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" {
			t.Fatalf("%d %q", status, a.Description)
		}
		call(t, srv, "deleteWebhook", nil)
		if status, _, _ := call(t, srv, "getUpdates", nil); status != 200 {
			t.Fatalf("after deleteWebhook: %d", status)
		}
	})
}

func TestWebhook(t *testing.T) {
	type hit struct {
		secret string
		update models.Update
	}
	hits := make(chan hit, 10)
	var failures atomic.Int32
	failures.Store(1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failures.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var u models.Update
		_ = json.NewDecoder(r.Body).Decode(&u)
		hits <- hit{r.Header.Get("X-Telegram-Bot-Api-Secret-Token"), u}
	}))
	t.Cleanup(hook.Close)
	srv := telegramtest.New(t, telegramtest.WithWebhookRetryDelay(20*time.Millisecond))
	alice := srv.NewUser("Alice", "alice")
	b := newBot(t, srv)
	ctx := context.Background()

	t.Run("ErrBadSecret", func(t *testing.T) {
		_, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: hook.URL, SecretToken: "not/allowed="})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "secret token contains unallowed characters") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("OKPostsWithSecretAndRetries", func(t *testing.T) {
		if _, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: hook.URL + "/tg", SecretToken: "s3cret_-token"}); err != nil {
			t.Fatal(err)
		}
		sent := srv.SendText(alice, "via webhook")
		h := receive(t, hits)
		if h.secret != "s3cret_-token" || h.update.ID != sent.ID || h.update.Message.Text != "via webhook" {
			t.Fatalf("hit = %+v", h)
		}
		waitFor(t, srv, "the delivery to be recorded", func() bool { return len(srv.WebhookAttempts()) == 2 })
		atts := srv.WebhookAttempts()
		if len(atts) != 2 || atts[0].Status != 500 || atts[1].Status != 200 || atts[1].UpdateID != sent.ID {
			t.Fatalf("attempts = %+v", atts)
		}
		info, err := b.GetWebhookInfo(ctx)
		if err != nil || info.URL != hook.URL+"/tg" || info.PendingUpdateCount != 0 || info.LastErrorMessage == "" {
			t.Fatalf("info = %+v, %v", info, err)
		}
	})

	t.Run("OKLibraryWebhookHandler", func(t *testing.T) {
		got := make(chan *models.Update, 1)
		wb := newBot(t, srv, bot.WithWebhookSecretToken("s3cret_-token"), collect(got))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { wb.StartWebhook(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		libHook := httptest.NewServer(wb.WebhookHandler())
		defer libHook.Close()
		if _, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: libHook.URL, SecretToken: "s3cret_-token"}); err != nil {
			t.Fatal(err)
		}
		sent := srv.SendCommand(alice, "/today", "")
		if u := receive(t, got); u.ID != sent.ID || u.Message.Entities[0].Type != models.MessageEntityTypeBotCommand {
			t.Fatalf("library got %+v", u)
		}
	})

	t.Run("OKDeleteWebhookQueuesForPolling", func(t *testing.T) {
		if _, err := b.DeleteWebhook(ctx, &bot.DeleteWebhookParams{}); err != nil {
			t.Fatal(err)
		}
		// The previous delivery is recorded with its removal from the queue.
		waitFor(t, srv, "the previous delivery", func() bool { return srv.Pending() == 0 })
		before := len(srv.WebhookAttempts())
		srv.SendText(alice, "after delete")
		time.Sleep(50 * time.Millisecond)
		if srv.Pending() != 1 || len(srv.WebhookAttempts()) != before {
			t.Fatalf("pending %d, attempts %d -> %d", srv.Pending(), before, len(srv.WebhookAttempts()))
		}
	})
}

func postForm(srv *telegramtest.Server, method string, form url.Values) (*http.Response, error) {
	return http.PostForm(srv.URL()+"/bot"+srv.Token()+"/"+method, form)
}
