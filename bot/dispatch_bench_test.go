package bot_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldops/fieldops/bot/telegramtest"
	"github.com/fieldops/fieldops/store"
)

// BenchmarkDispatch1000 sends 1,000 queued notifications to 50 linked
// engineers (20 each) through the local Bot API server enforcing
// Telegram's real limits (30 messages a second per bot, 1 a second per
// chat), with the dispatcher's own limiters (25/s, burst 5; 1/s a chat).
// Target (issue 4): zero 429 answers at 24 messages a second or more.
// One run takes about 40 seconds:
//
//	go test -run '^$' -bench Dispatch1000 -benchtime 1x ./bot/
func BenchmarkDispatch1000(b *testing.B) {
	const engineers, each = 50, 20
	for range b.N {
		b.StopTimer()
		f := newFixture(b, telegramtest.WithLimits(30, 1, 20, time.Second))
		if _, err := store.NewOrganisationService(store.NewDB(f.pool, nil)).ChangePlan(f.owner, "team", engineers+10); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for range engineers {
			id, _ := f.engineer(b, true)
			if _, err := f.pool.Exec(ctx, `INSERT INTO notifications (org_id, user_id, channel, kind, payload)
				SELECT $1, $2, 'telegram', 'job.reminder', jsonb_build_object('title', 'EICR ' || k, 'site', '1 Deansgate')
				FROM generate_series(1, $3::int) k`, f.orgID, id, each); err != nil {
				b.Fatal(err)
			}
		}
		d := f.dispatcher()
		b.StartTimer()
		start := time.Now()
		drain(b, f, d, 3*time.Minute)
		elapsed := time.Since(start)
		b.StopTimer()
		if got := len(f.srv.Sent()); got != engineers*each {
			b.Fatalf("%d messages sent, want %d", got, engineers*each)
		}
		b.ReportMetric(float64(engineers*each)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(f.srv.TooManyRequests()), "429s")
		if n := f.srv.TooManyRequests(); n != 0 {
			b.Errorf("the server answered %d × 429", n)
		}
	}
}
