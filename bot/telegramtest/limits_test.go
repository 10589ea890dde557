package telegramtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"

	"github.com/fieldops/fieldops/bot/telegramtest"
)

func send(b *bot.Bot, chatID int64, text string) error {
	_, err := b.SendMessage(context.Background(), &bot.SendMessageParams{ChatID: chatID, Text: text})
	return err
}

func TestRateLimits(t *testing.T) {
	t.Run("ErrPerChat", func(t *testing.T) {
		srv := telegramtest.New(t, telegramtest.WithLimits(30, 1, 20, 200*time.Millisecond))
		alice, bob := srv.NewUser("Alice", "alice"), srv.NewUser("Bob", "bob")
		b := newBot(t, srv)
		if err := send(b, alice.ChatID(), "one"); err != nil {
			t.Fatal(err)
		}
		err := send(b, alice.ChatID(), "two")
		var tm *bot.TooManyRequestsError
		if !errors.As(err, &tm) || tm.RetryAfter <= 0 || !strings.Contains(tm.Message, "Too Many Requests: retry after") {
			t.Fatalf("err = %v", err)
		}
		if err := send(b, bob.ChatID(), "other chat"); err != nil {
			t.Fatalf("another chat is not limited: %v", err)
		}
		time.Sleep(time.Duration(tm.RetryAfter) * srv.RetryAfterUnit())
		if err := send(b, alice.ChatID(), "two"); err != nil {
			t.Fatalf("after retry_after: %v", err)
		}
		if srv.TooManyRequests() != 1 || len(srv.Messages(alice.ChatID())) != 2 {
			t.Fatalf("429s %d, messages %d", srv.TooManyRequests(), len(srv.Messages(alice.ChatID())))
		}
	})

	t.Run("OKPacedSends", func(t *testing.T) {
		srv := telegramtest.New(t, telegramtest.WithLimits(30, 1, 20, 50*time.Millisecond))
		alice := srv.NewUser("Alice", "alice")
		b := newBot(t, srv)
		for i := range 5 {
			if err := send(b, alice.ChatID(), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(srv.RetryAfterUnit())
		}
		if srv.TooManyRequests() != 0 {
			t.Fatalf("%d 429s", srv.TooManyRequests())
		}
	})

	t.Run("ErrGlobal", func(t *testing.T) {
		srv := telegramtest.New(t) // Telegram's own figures: 31 sends take far less than a second
		b := newBot(t, srv)
		var limited int
		for i := range 31 {
			u := srv.NewUser(fmt.Sprint("User", i), "")
			var tm *bot.TooManyRequestsError
			if err := send(b, u.ChatID(), "Morning schedule"); errors.As(err, &tm) {
				limited++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if limited != 1 || srv.TooManyRequests() != 1 || len(srv.Sent()) != 30 {
			t.Fatalf("limited %d, counted %d, sent %d", limited, srv.TooManyRequests(), len(srv.Sent()))
		}
	})

	t.Run("ErrGroup", func(t *testing.T) {
		srv := telegramtest.New(t)
		g := srv.NewGroup("Crew")
		b := newBot(t, srv)
		for i := range 20 {
			if err := send(b, g.ID, fmt.Sprint("alert ", i)); err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
		}
		err := send(b, g.ID, "alert 21")
		var tm *bot.TooManyRequestsError
		if !errors.As(err, &tm) || tm.RetryAfter < 55 || tm.RetryAfter > 60 {
			t.Fatalf("21st: %v", err)
		}
	})
}

func TestFaults(t *testing.T) {
	srv := telegramtest.New(t, telegramtest.WithoutLimits())
	alice := srv.NewUser("Alice", "alice")
	b := newBot(t, srv)

	t.Run("Err5xx", func(t *testing.T) {
		srv.FailNext("sendMessage", 2, 502)
		for i := range 2 {
			if err := send(b, alice.ChatID(), "try"); err == nil || !strings.Contains(err.Error(), "502") {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		if err := send(b, alice.ChatID(), "try"); err != nil {
			t.Fatal(err)
		}
		reqs := srv.RequestsFor("sendMessage")
		if len(reqs) != 3 || reqs[0].Status != 502 || reqs[1].Status != 502 || reqs[2].Status != 200 || reqs[0].ChatID != alice.ID {
			t.Fatalf("requests = %+v", reqs)
		}
		if n := len(srv.Messages(alice.ChatID())); n != 1 {
			t.Fatalf("%d messages recorded, want 1", n)
		}
	})

	t.Run("ErrInjected429", func(t *testing.T) {
		before := srv.TooManyRequests()
		srv.FailNext("sendMessage", 1, 429)
		var tm *bot.TooManyRequestsError
		if err := send(b, alice.ChatID(), "x"); !errors.As(err, &tm) || tm.RetryAfter != 1 {
			t.Fatalf("err = %v", err)
		}
		if srv.TooManyRequests() != before+1 {
			t.Fatal("injected 429 not counted")
		}
	})

	t.Run("ErrLostResponseAppliesRequest", func(t *testing.T) {
		srv.LoseResponseNext("sendMessage")
		if err := send(b, alice.ChatID(), "did it arrive?"); err == nil {
			t.Fatal("lost response reported success")
		}
		last, _ := srv.Last(alice.ChatID())
		reqs := srv.RequestsFor("sendMessage")
		if last.Text != "did it arrive?" || !reqs[len(reqs)-1].Dropped {
			t.Fatalf("last = %q, request = %+v", last.Text, reqs[len(reqs)-1])
		}
	})

	t.Run("ErrTimeoutNotApplied", func(t *testing.T) {
		n := len(srv.RequestsFor("sendMessage"))
		srv.DelayNext("sendMessage", 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ChatID(), Text: "slow"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		waitFor(t, srv, "the abandoned request", func() bool { return len(srv.RequestsFor("sendMessage")) > n })
		if reqs := srv.RequestsFor("sendMessage"); reqs[n].Status != 0 {
			t.Fatalf("abandoned request = %+v", reqs[n])
		}
		if last, _ := srv.Last(alice.ChatID()); last.Text == "slow" {
			t.Fatal("a request abandoned during the delay was applied")
		}
	})

	t.Run("ErrLostGetUpdatesConfirmsOffsetOnly", func(t *testing.T) {
		u := srv.SendText(alice, "in flight")
		srv.LoseResponseNext("getUpdates")
		resp, err := postForm(srv, "getUpdates", nil)
		if err == nil {
			resp.Body.Close()
			t.Fatal("lost getUpdates answered")
		}
		// The batch was never received, so it is still there.
		_, a, _ := call(t, srv, "getUpdates", nil)
		if ups := updatesOf(t, a); len(ups) != 1 || ups[0].ID != u.ID {
			t.Fatalf("after the lost answer: %+v", ups)
		}
		call(t, srv, "getUpdates", map[string][]string{"offset": {fmt.Sprint(u.ID + 1)}})
	})
}
