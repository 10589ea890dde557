package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

func TestOutbox(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e) // the job assigned to the engineer queued job.assigned
	ctx := context.Background()
	eng := o.user[fieldops.RoleEngineer]
	if _, err := e.pool.Exec(ctx, `INSERT INTO telegram_links (org_id, user_id, telegram_user_id, chat_id) VALUES ($1, $2, 777, 777)`,
		o.id, eng); err != nil {
		t.Fatal(err)
	}
	ob := store.NewOutbox(e.db)
	now := time.Now().Add(time.Minute)

	msgs, err := ob.ClaimDue(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("claimed %d, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.OrgID != o.id || m.UserID != eng || m.Kind != "job.assigned" || m.Channel != "telegram" || m.ChatID != 777 ||
		m.Email == "" || m.Name == "" || m.Payload["title"] != "EICR" || m.Attempts != 0 {
		t.Fatalf("message = %+v", m)
	}

	// Claimed: invisible until the claim times out.
	if again, err := ob.ClaimDue(ctx, now.Add(time.Minute), 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed again = %v, %v", again, err)
	}
	back, err := ob.ClaimDue(ctx, now.Add(fieldops.ClaimTimeout+time.Second), 10)
	if err != nil || len(back) != 1 || back[0].ID != m.ID {
		t.Fatalf("after the claim timeout = %v, %v", back, err)
	}

	// Retry: attempts counted, due at next.
	next := now.Add(time.Hour)
	if err := ob.MarkRetry(ctx, m.ID, "boom", next); err != nil {
		t.Fatal(err)
	}
	if got, _ := ob.ClaimDue(ctx, next.Add(-time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed before next: %+v", got)
	}
	got, err := ob.ClaimDue(ctx, next, 10)
	if err != nil || len(got) != 1 || got[0].Attempts != 1 {
		t.Fatalf("after retry = %+v, %v", got, err)
	}

	// Blocked: the link is unlinked and marked blocked; no chat any more.
	if err := ob.MarkBlocked(ctx, o.id, eng, now); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, `SELECT count(*) FROM telegram_links WHERE org_id = $1 AND user_id = $2 AND NOT active AND blocked_at IS NOT NULL AND unlinked_at IS NOT NULL`, o.id, eng); n != 1 {
		t.Fatalf("blocked links = %d", n)
	}
	got, err = ob.ClaimDue(ctx, next.Add(fieldops.ClaimTimeout), 10)
	if err != nil || len(got) != 1 || got[0].ChatID != 0 {
		t.Fatalf("after block = %+v, %v", got, err)
	}

	// Sent by e-mail: recorded with the channel used, never claimed again.
	if err := ob.MarkSent(ctx, m.ID, fieldops.ViaEmail, now); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, `SELECT count(*) FROM notifications WHERE id = $1 AND sent_at IS NOT NULL AND channel = 'email' AND last_error IS NULL`, m.ID); n != 1 {
		t.Fatal("not marked sent")
	}
	if got, _ := ob.ClaimDue(ctx, now.Add(24*time.Hour), 10); len(got) != 0 {
		t.Fatalf("sent message claimed: %+v", got)
	}
	// Marking a sent message failed changes nothing.
	if err := ob.MarkFailed(ctx, m.ID, "late", now); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, `SELECT count(*) FROM notifications WHERE id = $1 AND failed_at IS NULL`, m.ID); n != 1 {
		t.Fatal("sent message marked failed")
	}
}

func TestOutboxFailedAndOrder(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	ctx := context.Background()
	// Cancelling the job tells the engineer again.
	if _, err := e.jobs.CancelJob(o.ctx[fieldops.RoleOwner], o.job.ID); err != nil {
		t.Fatal(err)
	}
	ob := store.NewOutbox(e.db)
	now := time.Now().Add(time.Minute)
	msgs, err := ob.ClaimDue(ctx, now, 1)
	if err != nil || len(msgs) != 1 || msgs[0].Kind != "job.assigned" {
		t.Fatalf("first = %+v, %v", msgs, err)
	}
	if err := ob.MarkFailed(ctx, msgs[0].ID, "gave up", now); err != nil {
		t.Fatal(err)
	}
	rest, err := ob.ClaimDue(ctx, now, 10)
	if err != nil || len(rest) != 1 || rest[0].Kind != "job.cancelled" || rest[0].ChatID != 0 {
		t.Fatalf("rest = %+v, %v", rest, err)
	}
	if n := count(t, e, `SELECT count(*) FROM notifications WHERE id = $1 AND failed_at IS NOT NULL AND attempts = 1 AND last_error = 'gave up'`, msgs[0].ID); n != 1 {
		t.Fatal("not marked failed")
	}
	if got, _ := ob.ClaimDue(ctx, now.Add(time.Hour), 10); len(got) != 1 || got[0].ID != rest[0].ID {
		t.Fatalf("failed message claimed again: %+v", got)
	}
}

// TestOutboxClaimSpreadsRecipients: a claim takes at most four of one
// recipient's messages (the oldest), so one person's backlog does not
// fill a batch that Telegram lets through at one message a second.
func TestOutboxClaimSpreadsRecipients(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	ctx := context.Background()
	mustExec(t, e, `DELETE FROM notifications WHERE org_id = $1`, o.id)
	a, b := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	mustExec(t, e, `INSERT INTO notifications (org_id, user_id, channel, kind, not_before)
		SELECT $1, $2, 'telegram', 'job.reminder', now() - interval '1 hour' + k * interval '1 second' FROM generate_series(1, 10) k`, o.id, a)
	mustExec(t, e, `INSERT INTO notifications (org_id, user_id, channel, kind, not_before) VALUES ($1, $2, 'telegram', 'job.reminder', now())`, o.id, b)
	ob := store.NewOutbox(e.db)
	now := time.Now().Add(time.Minute)
	msgs, err := ob.ClaimDue(ctx, now, 6)
	if err != nil {
		t.Fatal(err)
	}
	per := map[int64][]int64{}
	for _, m := range msgs {
		per[m.UserID] = append(per[m.UserID], m.ID)
	}
	if len(per[a]) != 4 || len(per[b]) != 1 {
		t.Fatalf("claimed %d of A's and %d of B's, want 4 and 1", len(per[a]), len(per[b]))
	}
	// A's oldest four, in order.
	var oldest []int64
	rows, err := e.pool.Query(ctx, `SELECT id FROM notifications WHERE user_id = $1 ORDER BY id LIMIT 4`, a)
	if err != nil {
		t.Fatal(err)
	}
	if oldest, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || !slices.Equal(oldest, per[a]) {
		t.Fatalf("claimed %v of A's, want the oldest %v (%v)", per[a], oldest, err)
	}
	// The next claim takes A's next four.
	next, err := ob.ClaimDue(ctx, now, 10)
	if err != nil || len(next) != 4 {
		t.Fatalf("next claim = %d messages, %v; want 4", len(next), err)
	}
}
