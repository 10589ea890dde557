package telegramtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/fieldops/fieldops/bot/telegramtest"
)

// BenchmarkUpdateAndReply measures the server with go-telegram/bot: each
// op is one update polled and one sendMessage reply.
func BenchmarkUpdateAndReply(b *testing.B) {
	srv := telegramtest.New(b, telegramtest.WithoutLimits())
	users := make([]*telegramtest.User, 100)
	for i := range users {
		users[i] = srv.NewUser("U", "")
	}
	client := newBot(b, srv, bot.WithNotAsyncHandlers(), bot.WithWorkers(4),
		bot.WithDefaultHandler(func(ctx context.Context, bt *bot.Bot, u *models.Update) {
			_, _ = bt.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "ok"})
		}))
	run(b, client)
	b.ResetTimer()
	for i := range b.N {
		srv.SendText(users[i%len(users)], "ping")
	}
	deadline := time.After(time.Minute)
	for srv.SentCount() < b.N {
		select {
		case <-srv.Changed():
		case <-deadline:
			b.Fatalf("%d of %d replies after a minute", srv.SentCount(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
