package store_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// mustRun calls a scheduled task and checks how much it did.
func mustRun(tb testing.TB, fn func(context.Context, int64, time.Time) (int, error), orgID int64, slot time.Time, want int) {
	tb.Helper()
	n, err := fn(context.Background(), orgID, slot)
	if err != nil {
		tb.Fatalf("at %s: %v", slot, err)
	}
	if n != want {
		tb.Fatalf("at %s: did %d, want %d", slot, n, want)
	}
}

func kindCount(tb testing.TB, e *env, orgID int64, kind string) int {
	tb.Helper()
	return count(tb, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = $2`, orgID, kind)
}

func TestScheduledWork_ClaimSlot(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	a, b := store.NewScheduledWork(e.db), store.NewScheduledWork(e.db)
	slot := time.Date(2026, 12, 1, 7, 30, 0, 0, time.UTC)
	if won, err := a.ClaimSlot(context.Background(), fieldops.TaskMorningAgenda, o.id, slot); err != nil || !won {
		t.Fatalf("first claim = %v, %v; want won", won, err)
	}
	if won, err := b.ClaimSlot(context.Background(), fieldops.TaskMorningAgenda, o.id, slot); err != nil || won {
		t.Fatalf("second claim = %v, %v; want lost", won, err)
	}
	// The same slot for the whole service (org 0) is another claim.
	if won, err := b.ClaimSlot(context.Background(), fieldops.TaskMorningAgenda, 0, slot); err != nil || !won {
		t.Fatalf("service-wide claim = %v, %v; want won", won, err)
	}
	if err := a.FinishSlot(context.Background(), fieldops.TaskMorningAgenda, o.id, slot, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, `SELECT count(*) FROM scheduler_runs WHERE finished_at IS NOT NULL AND error IS NULL`); n != 1 {
		t.Fatalf("finished runs = %d, want 1", n)
	}
}

func TestScheduledWork_JobReminders(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e) // job at 2026-12-01 09:00 UTC, one engineer
	w := store.NewScheduledWork(e.db)
	start := o.job.ScheduledStart
	mustRun(t, w.JobReminders, o.id, start.Add(-65*time.Minute), 0)
	mustRun(t, w.JobReminders, o.id, start.Add(-60*time.Minute), 1)
	mustRun(t, w.JobReminders, o.id, start.Add(-55*time.Minute), 0)
	mustRun(t, w.JobReminders, o.id, start.Add(-60*time.Minute), 0) // a second run of the slot
	if n := kindCount(t, e, o.id, "job.reminder"); n != 1 {
		t.Fatalf("reminders = %d, want 1", n)
	}
	if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'job.reminder' AND user_id = $2`,
		o.id, o.user[fieldops.RoleEngineer]); n != 1 {
		t.Fatalf("reminders to the engineer = %d, want 1", n)
	}
	if action, actor, ch := lastAudit(t, e, o.id); action != "scheduler.job_reminders" || actor != 0 || ch != "system" {
		t.Fatalf("last audit = %s by %d via %s", action, actor, ch)
	}
	broken, err := e.db.VerifyAllChains(context.Background())
	if err != nil || broken[0].Broken != 0 {
		t.Fatalf("chain after system entries: %+v, %v", broken, err)
	}
}

func TestScheduledWork_NoShowAlerts(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t)
		o := mustOrg(t, e)
		w := store.NewScheduledWork(e.db)
		start := o.job.ScheduledStart
		mustRun(t, w.NoShowAlerts, o.id, start.Add(25*time.Minute), 0)
		// Owner, Admin and Manager receive alerts.
		mustRun(t, w.NoShowAlerts, o.id, start.Add(30*time.Minute), 3)
		mustRun(t, w.NoShowAlerts, o.id, start.Add(35*time.Minute), 0)
		if n := kindCount(t, e, o.id, "alert.no_show"); n != 3 {
			t.Fatalf("no-show alerts = %d, want 3", n)
		}
		if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'alert.no_show' AND user_id = $2`,
			o.id, o.user[fieldops.RoleEngineer]); n != 0 {
			t.Fatalf("the engineer got %d no-show alerts", n)
		}
	})
	t.Run("CheckedIn", func(t *testing.T) {
		e := newEnv(t)
		o := mustOrg(t, e)
		w := store.NewScheduledWork(e.db)
		start := o.job.ScheduledStart
		mustExec(t, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, source) VALUES ($1, $2, $3, $4, 'telegram')`,
			o.id, o.job.ID, o.user[fieldops.RoleEngineer], start.Add(10*time.Minute))
		mustRun(t, w.NoShowAlerts, o.id, start.Add(30*time.Minute), 0)
		mustRun(t, w.NoShowAlerts, o.id, start.Add(2*time.Hour), 0)
		if n := kindCount(t, e, o.id, "alert.no_show"); n != 0 {
			t.Fatalf("no-show alerts = %d, want 0", n)
		}
	})
	t.Run("OverrideRevokesAlerts", func(t *testing.T) {
		e := newEnv(t)
		o := mustOrg(t, e)
		mustExec(t, e, `UPDATE memberships SET overrides = '{"alerts.receive": "none"}' WHERE org_id = $1 AND user_id = $2`,
			o.id, o.user[fieldops.RoleManager])
		w := store.NewScheduledWork(e.db)
		mustRun(t, w.NoShowAlerts, o.id, o.job.ScheduledStart.Add(30*time.Minute), 2)
	})
}

func TestScheduledWork_ForgottenCheckOut(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	in := o.job.ScheduledStart
	mustExec(t, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, source) VALUES ($1, $2, $3, $4, 'telegram')`,
		o.id, o.job.ID, o.user[fieldops.RoleEngineer], in)
	mustRun(t, w.ForgottenCheckOut, o.id, in.Add(9*time.Hour+45*time.Minute), 0)
	// The engineer and the three who receive alerts.
	mustRun(t, w.ForgottenCheckOut, o.id, in.Add(10*time.Hour), 4)
	mustRun(t, w.ForgottenCheckOut, o.id, in.Add(10*time.Hour+15*time.Minute), 0)
}

func TestScheduledWork_ExpireInvitations(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	mustExec(t, e, `INSERT INTO invitations (org_id, email, role, token_hash, invited_by, created_at, expires_at)
		VALUES ($1, 'late@example.co.uk', 'engineer', $2, $3, $4, $5)`,
		o.id, bytes.Repeat([]byte{7}, 32), o.user[fieldops.RoleAdmin], created, created.Add(7*24*time.Hour))
	mustRun(t, w.ExpireInvitations, o.id, created.Add(7*24*time.Hour-time.Hour), 0)
	mustRun(t, w.ExpireInvitations, o.id, created.Add(7*24*time.Hour), 1)
	mustRun(t, w.ExpireInvitations, o.id, created.Add(7*24*time.Hour+time.Hour), 0)
	if n := count(t, e, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'invite.expire' AND channel = 'system'`, o.id); n != 1 {
		t.Fatalf("invite.expire entries = %d, want 1", n)
	}
	if n := count(t, e, `SELECT count(*) FROM notifications WHERE org_id = $1 AND kind = 'invitation.expired' AND user_id = $2`,
		o.id, o.user[fieldops.RoleAdmin]); n != 1 {
		t.Fatalf("notices to the inviter = %d, want 1", n)
	}
}

func TestScheduledWork_RemedialAndInspectionReminders(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	mustExec(t, e, `INSERT INTO defects (org_id, job_id, code, description, logged_by, logged_at, remedial_due)
		VALUES ($1, $2, 'C2', 'No RCD protection', $3, '2026-11-03', '2026-12-01')`, o.id, o.job.ID, o.user[fieldops.RoleEngineer])
	mustExec(t, e, `UPDATE sites SET next_inspection_due = '2026-12-20' WHERE org_id = $1 AND id = $2`, o.id, o.site.ID)
	at := func(day int) time.Time { return time.Date(2026, 11, day, 8, 0, 0, 0, time.UTC) }

	mustRun(t, w.RemedialReminders, o.id, at(23), 0) // due in 8 days
	mustRun(t, w.RemedialReminders, o.id, at(24), 3) // due in 7 days: to the three who receive alerts
	mustRun(t, w.RemedialReminders, o.id, at(24), 0) // once a day
	mustRun(t, w.RemedialReminders, o.id, at(25), 3)
	mustRun(t, w.RemedialReminders, o.id, time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), 3)
	if n := kindCount(t, e, o.id, "defect.remedial_overdue"); n != 3 {
		t.Fatalf("overdue reminders = %d, want 3", n)
	}
	mustExec(t, e, `UPDATE defects SET resolved_by = $2, resolved_at = now() WHERE org_id = $1`, o.id, o.user[fieldops.RoleManager])
	mustRun(t, w.RemedialReminders, o.id, time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), 0)

	mustRun(t, w.InspectionReminders, o.id, at(19), 0) // 31 days ahead
	mustRun(t, w.InspectionReminders, o.id, at(20), 3)
	mustRun(t, w.InspectionReminders, o.id, at(21), 0) // once per due date
}

func TestScheduledWork_OwnerDigest(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	start := o.job.ScheduledStart // 2026-12-01 09:00 UTC
	// Checked in 20 minutes late, for 2.5 hours.
	mustExec(t, e, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, source) VALUES ($1, $2, $3, $4, $5, 'telegram')`,
		o.id, o.job.ID, o.user[fieldops.RoleEngineer], start.Add(20*time.Minute), start.Add(170*time.Minute))
	mustExec(t, e, `INSERT INTO defects (org_id, job_id, code, description, logged_by, logged_at, remedial_due)
		VALUES ($1, $2, 'C1', 'Exposed live parts', $3, $4, '2026-12-01')`, o.id, o.job.ID, o.user[fieldops.RoleEngineer], start.Add(time.Hour))
	slot := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	mustRun(t, w.OwnerDigest, o.id, slot, 1)
	mustRun(t, w.OwnerDigest, o.id, slot, 0)
	var payload map[string]map[string]any
	if err := e.pool.QueryRow(context.Background(), `SELECT payload FROM notifications WHERE org_id = $1 AND kind = 'digest.owner' AND user_id = $2`,
		o.id, o.user[fieldops.RoleOwner]).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	d := payload["digest"]
	want := map[string]any{"date": "2026-12-01", "jobs": 1.0, "hours": 2.5, "late_starts": 1.0, "c1_found": 1.0, "c2_found": 0.0,
		"overdue_remedials": 1.0, "seats_used": 7.0}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("digest %s = %v, want %v (%v)", k, d[k], v, d)
		}
	}
}

func TestScheduledWork_PurgeExpired(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	slot := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	mustExec(t, e, `UPDATE organisations SET location_retention_days = 30 WHERE id = $1`, o.id)
	old := slot.AddDate(0, 0, -31)
	recent := slot.AddDate(0, 0, -29)
	var oldID, recentID int64
	for _, r := range []struct {
		at time.Time
		id *int64
	}{{old, &oldID}, {recent, &recentID}} {
		if err := e.pool.QueryRow(context.Background(), `
			INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, check_out_at, source,
			  check_in_lat, check_in_lng, check_in_accuracy_m, check_in_distance_m, check_in_message_at,
			  check_out_lat, check_out_lng, check_out_accuracy_m, check_out_distance_m, check_out_message_at, check_in_flags)
			VALUES ($1, $2, $3, $4::timestamptz, $4::timestamptz + interval '3 hours', 'telegram', 53.48, -2.24, 12, 30, $4::timestamptz, 53.48, -2.24, 15, 40, $4::timestamptz + interval '3 hours', '{off_site}')
			RETURNING id`, o.id, o.job.ID, o.user[fieldops.RoleEngineer], r.at).Scan(r.id); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, e, `INSERT INTO sessions_revoked (session_id, org_id, user_id, channel, expires_at) VALUES
		('gone', $1, $2, 'web', $3), ('live', $1, $2, 'web', $4), ('forever', $1, $2, 'api', NULL)`,
		o.id, o.user[fieldops.RoleEngineer], slot.Add(-time.Hour), slot.Add(time.Hour))

	// Link tokens: one expired two days ago (deleted), one an hour ago
	// (kept a day).
	mustExec(t, e, `INSERT INTO telegram_link_tokens (token_hash, org_id, user_id, created_at, expires_at) VALUES
		(sha256('old'), $1, $2, $3::timestamptz - interval '15 minutes', $3), (sha256('new'), $1, $2, $4::timestamptz - interval '15 minutes', $4)`,
		o.id, o.user[fieldops.RoleEngineer], slot.Add(-48*time.Hour), slot.Add(-time.Hour))
	// Updates: handled long ago (deleted); long ago but pending, set
	// aside... only handled ones with their answers sent go.
	old15 := slot.Add(-store.InboxRetention - time.Hour)
	mustExec(t, e, `INSERT INTO telegram_updates (update_id, payload, received_at, status, done_at, calls, calls_sent_at) VALUES
		(1, '{}', $1, 'done', $1, NULL, NULL),
		(2, '{}', $1, 'pending', NULL, NULL, NULL),
		(3, '{}', $1, 'done', $1, '[{"method":"sendMessage","params":{}}]', NULL),
		(4, '{}', $2, 'done', $2, NULL, NULL)`, old15, slot.Add(-time.Hour))

	// Scheduler runs: the organisation's and a global one past the 90
	// days (deleted), a recent one (kept), another organisation's old one
	// (kept: its own purge deletes it).
	other := mustOrg(t, e)
	ago := func(d int) time.Time { return slot.AddDate(0, 0, -d) }
	mustExec(t, e, `INSERT INTO scheduler_runs (task, slot, org_id) VALUES
		('digest', $1, $3), ('verify', $1, NULL), ('digest', $2, $3), ('digest', $1, $4)`, ago(91), ago(89), o.id, other.id)

	mustRun(t, w.PurgeExpired, o.id, slot, 6) // one session record, one entry, one token, one update, two runs
	mustRun(t, w.PurgeExpired, o.id, slot.Add(30*time.Minute), 0)
	var runsLeft int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler_runs WHERE org_key IN ($1, $2, 0) AND slot < $3`,
		o.id, other.id, slot.AddDate(0, 0, -80)).Scan(&runsLeft); err != nil || runsLeft != 2 {
		t.Errorf("scheduler runs left = %d, %v; want the recent one and the other organisation's", runsLeft, err)
	}
	var left []int64
	rows, err := e.pool.Query(context.Background(), `SELECT update_id FROM telegram_updates ORDER BY update_id`)
	if err != nil {
		t.Fatal(err)
	}
	if left, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || !slices.Equal(left, []int64{2, 3, 4}) {
		t.Errorf("updates left = %v (%v), want 2 3 4", left, err)
	}
	var tokens int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM telegram_link_tokens WHERE org_id = $1`, o.id).Scan(&tokens); err != nil || tokens != 1 {
		t.Errorf("link tokens left = %d (%v), want 1", tokens, err)
	}

	var (
		in, out, purged time.Time
		lat, acc        *float64
		msg             *time.Time
		flags           []string
	)
	if err := e.pool.QueryRow(context.Background(), `SELECT check_in_at, check_out_at, location_purged_at, check_in_lat, check_out_accuracy_m,
		check_in_message_at, check_in_flags FROM time_entries WHERE id = $1`, oldID).Scan(&in, &out, &purged, &lat, &acc, &msg, &flags); err != nil {
		t.Fatal(err)
	}
	if !in.Equal(old) || !out.Equal(old.Add(3*time.Hour)) || !purged.Equal(slot) {
		t.Errorf("times after purge: in %s out %s purged %s", in, out, purged)
	}
	if lat != nil || acc != nil || msg != nil {
		t.Errorf("location kept: lat %v accuracy %v message_at %v", lat, acc, msg)
	}
	if len(flags) != 1 || flags[0] != "off_site" {
		t.Errorf("flags = %v, want kept", flags)
	}
	if n := count(t, e, `SELECT count(*) FROM time_entries WHERE id = $1 AND check_in_lat IS NOT NULL AND location_purged_at IS NULL`, recentID); n != 1 {
		t.Error("the recent entry lost its location")
	}
	if n := count(t, e, `SELECT count(*) FROM sessions_revoked WHERE org_id = $1`, o.id); n != 2 {
		t.Errorf("session records left = %d, want 2", n)
	}
	if action, _, _ := lastAudit(t, e, o.id); action != "retention.purge" {
		t.Errorf("last audit = %s", action)
	}
}

func TestScheduledWork_VerifyAuditChain(t *testing.T) {
	e := newEnv(t)
	o := mustOrg(t, e)
	w := store.NewScheduledWork(e.db)
	slot := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	mustRun(t, w.VerifyAuditChain, o.id, slot, 0)
	// Tamper with the chain head (the entries themselves refuse changes).
	mustExec(t, e, `UPDATE audit_chains SET head = '\x00' WHERE org_id = $1`, o.id)
	mustRun(t, w.VerifyAuditChain, o.id, slot, 1) // the one owner
	mustRun(t, w.VerifyAuditChain, o.id, slot.Add(time.Hour), 0)
	if n := kindCount(t, e, o.id, "alert.audit_chain_broken"); n != 1 {
		t.Fatalf("alerts = %d, want 1", n)
	}
}
