package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// ScheduledWork is the timed work of the scheduler, done with no actor and
// recorded on the audit log with channel system. Each task reads its
// "now" from the slot it is given, never from the clock, so that a run is
// reproducible and a late run does what the on-time run would have done.
type ScheduledWork struct {
	db *DB
	// Instance names this process in scheduler_runs.claimed_by.
	Instance string
}

var _ fieldops.ScheduledWork = (*ScheduledWork)(nil)

// NewScheduledWork returns the scheduled work on db.
func NewScheduledWork(db *DB) *ScheduledWork {
	host, _ := os.Hostname()
	return &ScheduledWork{db: db, Instance: host + ":" + strconv.Itoa(os.Getpid())}
}

// Organisations lists every organisation with its time zone.
func (s *ScheduledWork) Organisations(ctx context.Context) ([]fieldops.OrgClock, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT id, time_zone FROM organisations ORDER BY id`)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fieldops.OrgClock, error) {
		var c fieldops.OrgClock
		err := r.Scan(&c.OrgID, &c.TimeZone)
		return c, err
	})
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// ClaimSlot inserts the (task, slot, organisation) row; the instance whose
// insert went in runs the task, the others find the row and skip it.
func (s *ScheduledWork) ClaimSlot(ctx context.Context, task string, orgID int64, slot time.Time) (bool, error) {
	var org *int64
	if orgID != 0 {
		org = &orgID
	}
	tag, err := s.db.pool.Exec(ctx, `
		INSERT INTO scheduler_runs (task, slot, org_id, claimed_by, claimed_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (task, slot, org_key) DO NOTHING`, task, slot.UTC(), org, s.Instance, s.db.now())
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}

// FinishSlot records the end of a claimed run.
func (s *ScheduledWork) FinishSlot(ctx context.Context, task string, orgID int64, slot time.Time, runErr error) error {
	var msg *string
	if runErr != nil {
		m := runErr.Error()
		if len(m) > 2000 {
			m = m[:2000]
		}
		msg = &m
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE scheduler_runs SET finished_at = $5, error = $4
		WHERE task = $1 AND slot = $2 AND org_key = $3`, task, slot.UTC(), orgID, msg, s.db.now())
	return translate0(err)
}

func translate0(err error) error {
	if err == nil {
		return nil
	}
	return translate(err)
}

// run does one task's work for an organisation in one transaction, and
// records it on the audit log when the work did anything.
func (s *ScheduledWork) run(ctx context.Context, orgID int64, action string, fn func(tx pgx.Tx, o *orgClock) (int, map[string]any, error)) (int, error) {
	var n int
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		o, err := loadOrgClock(ctx, tx, orgID)
		if err != nil {
			return err
		}
		var changes map[string]any
		n, changes, err = fn(tx, o)
		if err != nil || n == 0 {
			return err
		}
		if changes == nil {
			changes = map[string]any{}
		}
		changes["count"] = n
		return s.db.appendAudit(ctx, tx, orgID, 0, "scheduler", fieldops.ChannelSystem, netip.Addr{},
			entry{action: action, targetType: "organisation", targetID: orgID, changes: changes})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// orgClock is what the tasks need of the organisation.
type orgClock struct {
	id            int64
	loc           *time.Location
	retentionDays int
}

// loadOrgClock locks the organisation's row (every writer locks it
// first; the audit chain head is on it) and reads its time zone.
func loadOrgClock(ctx context.Context, tx pgx.Tx, orgID int64) (*orgClock, error) {
	o := &orgClock{id: orgID}
	var tz string
	err := tx.QueryRow(ctx, `SELECT time_zone, location_retention_days FROM organisations WHERE id = $1 FOR NO KEY UPDATE`, orgID).
		Scan(&tz, &o.retentionDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Organisation")
	}
	if err != nil {
		return nil, err
	}
	if o.loc, err = time.LoadLocation(tz); err != nil {
		return nil, fieldops.Internal(err, "organisation time zone")
	}
	return o, nil
}

// localDay returns the start of the local day containing t and of the
// next one.
func localDay(t time.Time, loc *time.Location) (start, end time.Time) {
	l := t.In(loc)
	start = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 0, 1)
}

// notify queues one message for a member in the caller's transaction,
// unless a message with the same dedupe key (if any) exists; it is the one
// writer of the outbox. Rows are addressed to Telegram: the dispatcher
// decides at send time, and sends by e-mail to a member who has no active
// link then. It reports whether a row was written.
func notify(ctx context.Context, tx pgx.Tx, orgID, userID int64, kind, dedupe string, payload map[string]any, at time.Time) (bool, error) {
	var when *time.Time
	if !at.IsZero() {
		when = &at
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO notifications (org_id, user_id, channel, kind, payload, dedupe_key, created_at, not_before)
		VALUES ($1, $2, 'telegram', $3, $4, NULLIF($5, ''), COALESCE($6, now()), COALESCE($6, now()))
		ON CONFLICT (org_id, dedupe_key) DO NOTHING`, orgID, userID, kind, payload, dedupe, when)
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", kind, err)
	}
	return tag.RowsAffected() == 1, nil
}

// alertRecipients returns the active members who hold alerts.receive by
// their effective grants: role and, on plans that have them, overrides.
func alertRecipients(ctx context.Context, tx pgx.Tx, orgID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT m.user_id, m.role, m.overrides, o.plan
		FROM memberships m JOIN organisations o ON o.id = m.org_id
		WHERE m.org_id = $1 AND m.status = 'active' ORDER BY m.user_id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var (
			uid            int64
			role, planName string
			overridesRaw   []byte
		)
		if err := rows.Scan(&uid, &role, &overridesRaw, &planName); err != nil {
			return nil, err
		}
		plan, err := fieldops.FindPlan(planName)
		if err != nil {
			return nil, err
		}
		_, grants, err := memberGrants(role, overridesRaw, plan.Overrides)
		if err != nil {
			return nil, err
		}
		if grants.Scope(fieldops.FlagAlertsReceive) != fieldops.ScopeNone {
			out = append(out, uid)
		}
	}
	return out, rows.Err()
}

// owners returns the organisation's active owners.
func owners(ctx context.Context, tx pgx.Tx, orgID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT user_id FROM memberships WHERE org_id = $1 AND status = 'active' AND role = 'owner' ORDER BY user_id`, orgID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func dedupeKey(parts ...any) string {
	b := make([]byte, 0, 64)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = fmt.Append(b, p)
	}
	return string(b)
}

// agendaJob is one job in a message.
type agendaJob struct {
	JobID int64     `json:"job_id"`
	Title string    `json:"title"`
	Site  string    `json:"site"`
	Start time.Time `json:"scheduled_start"`
	End   time.Time `json:"scheduled_end"`
}

// MorningAgenda sends each engineer the jobs of the slot's local day.
func (s *ScheduledWork) MorningAgenda(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.morning_agenda", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		dayStart, dayEnd := localDay(slot, o.loc)
		date := dayStart.Format(time.DateOnly)
		rows, err := tx.Query(ctx, `
			SELECT a.user_id, j.id, j.title, s.address, j.scheduled_start, j.scheduled_end
			FROM jobs j
			JOIN job_assignments a ON a.org_id = j.org_id AND a.job_id = j.id
			JOIN memberships m ON m.org_id = a.org_id AND m.user_id = a.user_id AND m.status = 'active'
			JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
			WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status IN ('scheduled', 'in_progress')
			  AND j.scheduled_start < $3 AND j.scheduled_end > $2
			ORDER BY a.user_id, j.scheduled_start, j.id`, o.id, dayStart, dayEnd)
		if err != nil {
			return 0, nil, err
		}
		type agenda struct {
			user int64
			jobs []agendaJob
		}
		var list []*agenda
		for rows.Next() {
			var uid int64
			var j agendaJob
			if err := rows.Scan(&uid, &j.JobID, &j.Title, &j.Site, &j.Start, &j.End); err != nil {
				rows.Close()
				return 0, nil, err
			}
			if len(list) == 0 || list[len(list)-1].user != uid {
				list = append(list, &agenda{user: uid})
			}
			a := list[len(list)-1]
			a.jobs = append(a.jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, nil, err
		}
		var sent []int64
		for _, a := range list {
			ok, err := notify(ctx, tx, o.id, a.user, "agenda.morning", dedupeKey("agenda", date, a.user),
				map[string]any{"date": date, "jobs": a.jobs}, slot)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				sent = append(sent, a.user)
			}
		}
		return len(sent), map[string]any{"date": date, "engineers": sent}, nil
	})
}

// JobReminders reminds the engineers of jobs starting in (slot, slot+lead].
func (s *ScheduledWork) JobReminders(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.job_reminders", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		rows, err := tx.Query(ctx, `
			SELECT a.user_id, j.id, j.title, s.address, j.scheduled_start, j.scheduled_end
			FROM jobs j
			JOIN job_assignments a ON a.org_id = j.org_id AND a.job_id = j.id
			JOIN memberships m ON m.org_id = a.org_id AND m.user_id = a.user_id AND m.status = 'active'
			JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
			WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status = 'scheduled'
			  AND j.scheduled_start > $2 AND j.scheduled_start <= $3
			ORDER BY j.scheduled_start, j.id, a.user_id`, o.id, slot, slot.Add(fieldops.ReminderLead))
		if err != nil {
			return 0, nil, err
		}
		type due struct {
			user int64
			job  agendaJob
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
			var d due
			err := r.Scan(&d.user, &d.job.JobID, &d.job.Title, &d.job.Site, &d.job.Start, &d.job.End)
			return d, err
		})
		if err != nil {
			return 0, nil, err
		}
		n := 0
		var jobs []int64
		for _, d := range list {
			// The start is in the key: a rescheduled job is reminded again.
			ok, err := notify(ctx, tx, o.id, d.user, "job.reminder", dedupeKey("reminder", d.job.JobID, d.job.Start.Unix(), d.user),
				map[string]any{"job_id": d.job.JobID, "title": d.job.Title, "site": d.job.Site,
					"scheduled_start": d.job.Start.UTC(), "scheduled_end": d.job.End.UTC()}, slot)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				n++
				if len(jobs) == 0 || jobs[len(jobs)-1] != d.job.JobID {
					jobs = append(jobs, d.job.JobID)
				}
			}
		}
		return n, map[string]any{"jobs": jobs}, nil
	})
}

// NoShowAlerts alerts about scheduled jobs without any check-in
// NoShowAfter after their start (looking back one day at most).
func (s *ScheduledWork) NoShowAlerts(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.no_show", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		rows, err := tx.Query(ctx, `
			SELECT j.id, j.title, s.address, j.scheduled_start, j.scheduled_end
			FROM jobs j
			JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
			WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status = 'scheduled'
			  AND j.scheduled_start <= $2 AND j.scheduled_start > $3
			  AND EXISTS (SELECT 1 FROM job_assignments a WHERE a.org_id = j.org_id AND a.job_id = j.id)
			  AND NOT EXISTS (SELECT 1 FROM time_entries t WHERE t.org_id = j.org_id AND t.job_id = j.id)
			ORDER BY j.scheduled_start, j.id`, o.id, slot.Add(-fieldops.NoShowAfter), slot.Add(-24*time.Hour))
		if err != nil {
			return 0, nil, err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agendaJob, error) {
			var j agendaJob
			err := r.Scan(&j.JobID, &j.Title, &j.Site, &j.Start, &j.End)
			return j, err
		})
		if err != nil || len(list) == 0 {
			return 0, nil, err
		}
		to, err := alertRecipients(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		n := 0
		var jobs []int64
		for _, j := range list {
			sentAny := false
			for _, uid := range to {
				ok, err := notify(ctx, tx, o.id, uid, "alert.no_show", dedupeKey("noshow", j.JobID, j.Start.Unix(), uid),
					map[string]any{"job_id": j.JobID, "title": j.Title, "site": j.Site, "scheduled_start": j.Start.UTC()}, slot)
				if err != nil {
					return 0, nil, err
				}
				if ok {
					n++
					sentAny = true
				}
			}
			if sentAny {
				jobs = append(jobs, j.JobID)
			}
		}
		return n, map[string]any{"jobs": jobs}, nil
	})
}

// ForgottenCheckOut alerts about entries open ForgottenCheckOutTime or
// more: the engineer and the members who receive alerts.
func (s *ScheduledWork) ForgottenCheckOut(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.forgotten_check_out", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		rows, err := tx.Query(ctx, `
			SELECT t.id, t.user_id, u.name, t.job_id, j.title, t.check_in_at
			FROM time_entries t
			JOIN jobs j ON j.org_id = t.org_id AND j.id = t.job_id
			JOIN users u ON u.id = t.user_id
			WHERE t.org_id = $1 AND t.check_out_at IS NULL AND t.check_in_at <= $2
			ORDER BY t.check_in_at, t.id`, o.id, slot.Add(-fieldops.ForgottenCheckOutTime))
		if err != nil {
			return 0, nil, err
		}
		type open struct {
			id, user, job int64
			name, title   string
			in            time.Time
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (open, error) {
			var e open
			err := r.Scan(&e.id, &e.user, &e.name, &e.job, &e.title, &e.in)
			return e, err
		})
		if err != nil || len(list) == 0 {
			return 0, nil, err
		}
		to, err := alertRecipients(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		n := 0
		var entries []int64
		for _, e := range list {
			recipients := []int64{e.user}
			for _, uid := range to {
				if uid != e.user {
					recipients = append(recipients, uid)
				}
			}
			sentAny := false
			for _, uid := range recipients {
				ok, err := notify(ctx, tx, o.id, uid, "alert.forgotten_check_out", dedupeKey("checkout", e.id, uid),
					map[string]any{"time_entry_id": e.id, "job_id": e.job, "title": e.title, "engineer": e.name,
						"check_in_at": e.in.UTC(), "own": uid == e.user}, slot)
				if err != nil {
					return 0, nil, err
				}
				if ok {
					n++
					sentAny = true
				}
			}
			if sentAny {
				entries = append(entries, e.id)
			}
		}
		return n, map[string]any{"time_entries": entries}, nil
	})
}

// ExpireInvitations records each open invitation past its expiry once
// (audit invite.expire: the record is also what makes it once) and tells
// the member who sent it. The invitation keeps its state: it is expired
// by its expires_at, and stopped counting as a seat then.
func (s *ScheduledWork) ExpireInvitations(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	var n int
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		o, err := loadOrgClock(ctx, tx, orgID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT i.id, i.email, i.role, i.invited_by, i.expires_at, m.status = 'active'
			FROM invitations i
			JOIN memberships m ON m.org_id = i.org_id AND m.user_id = i.invited_by
			WHERE i.org_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.replaced_at IS NULL
			  AND i.expires_at <= $2
			  AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = i.org_id AND e.target_type = 'invitation'
			                  AND e.target_id = i.id::text AND e.action = 'invite.expire')
			ORDER BY i.id`, o.id, slot)
		if err != nil {
			return err
		}
		type inv struct {
			id, by        int64
			email, role   string
			expires       time.Time
			inviterActive bool
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inv, error) {
			var i inv
			err := r.Scan(&i.id, &i.email, &i.role, &i.by, &i.expires, &i.inviterActive)
			return i, err
		})
		if err != nil {
			return err
		}
		for _, i := range list {
			if i.inviterActive {
				if _, err := notify(ctx, tx, o.id, i.by, "invitation.expired", dedupeKey("inviteexpired", i.id),
					map[string]any{"invitation_id": i.id, "email": i.email, "role": i.role, "expires_at": i.expires.UTC()}, slot); err != nil {
					return err
				}
			}
			if err := s.db.appendAudit(ctx, tx, o.id, 0, "scheduler", fieldops.ChannelSystem, netip.Addr{},
				entry{action: "invite.expire", targetType: "invitation", targetID: i.id,
					changes: map[string]any{"email": i.email, "role": i.role, "expires_at": i.expires.UTC()}}); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// RemedialReminders reminds, once a local day, of each unresolved remedial
// due within RemedialLeadDays or overdue.
func (s *ScheduledWork) RemedialReminders(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.remedial_reminders", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		dayStart, _ := localDay(slot, o.loc)
		today := dayStart.Format(time.DateOnly)
		rows, err := tx.Query(ctx, `
			SELECT d.id, d.code, d.description, d.remedial_due::text, d.job_id, s.address
			FROM defects d
			JOIN jobs j ON j.org_id = d.org_id AND j.id = d.job_id AND j.deleted_at IS NULL
			JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
			WHERE d.org_id = $1 AND d.resolved_at IS NULL AND d.remedial_due IS NOT NULL
			  AND d.remedial_due <= $2::date + $3::int
			ORDER BY d.remedial_due, d.id`, o.id, today, fieldops.RemedialLeadDays)
		if err != nil {
			return 0, nil, err
		}
		type defect struct {
			id, job                  int64
			code, desc, due, address string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (defect, error) {
			var d defect
			err := r.Scan(&d.id, &d.code, &d.desc, &d.due, &d.job, &d.address)
			return d, err
		})
		if err != nil || len(list) == 0 {
			return 0, nil, err
		}
		to, err := alertRecipients(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		n := 0
		var defects []int64
		for _, d := range list {
			kind := "defect.remedial_due"
			if d.due < today {
				kind = "defect.remedial_overdue"
			}
			sentAny := false
			for _, uid := range to {
				ok, err := notify(ctx, tx, o.id, uid, kind, dedupeKey("remedial", d.id, today, uid),
					map[string]any{"defect_id": d.id, "code": d.code, "description": d.desc, "remedial_due": d.due,
						"job_id": d.job, "site": d.address}, slot)
				if err != nil {
					return 0, nil, err
				}
				if ok {
					n++
					sentAny = true
				}
			}
			if sentAny {
				defects = append(defects, d.id)
			}
		}
		return n, map[string]any{"date": today, "defects": defects}, nil
	})
}

// InspectionReminders tells, once per site and due date, of inspections
// due within InspectionLeadDays of the slot's local day.
func (s *ScheduledWork) InspectionReminders(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.inspection_reminders", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		dayStart, _ := localDay(slot, o.loc)
		today := dayStart.Format(time.DateOnly)
		rows, err := tx.Query(ctx, `
			SELECT s.id, s.address, s.next_inspection_due::text
			FROM sites s
			WHERE s.org_id = $1 AND s.deleted_at IS NULL
			  AND s.next_inspection_due BETWEEN $2::date AND $2::date + $3::int
			ORDER BY s.next_inspection_due, s.id`, o.id, today, fieldops.InspectionLeadDays)
		if err != nil {
			return 0, nil, err
		}
		type site struct {
			id           int64
			address, due string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (site, error) {
			var s site
			err := r.Scan(&s.id, &s.address, &s.due)
			return s, err
		})
		if err != nil || len(list) == 0 {
			return 0, nil, err
		}
		to, err := alertRecipients(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		n := 0
		var sites []int64
		for _, st := range list {
			sentAny := false
			for _, uid := range to {
				ok, err := notify(ctx, tx, o.id, uid, "site.inspection_due", dedupeKey("inspection", st.id, st.due, uid),
					map[string]any{"site_id": st.id, "site": st.address, "next_inspection_due": st.due}, slot)
				if err != nil {
					return 0, nil, err
				}
				if ok {
					n++
					sentAny = true
				}
			}
			if sentAny {
				sites = append(sites, st.id)
			}
		}
		return n, map[string]any{"sites": sites}, nil
	})
}

// Digest is the owners' daily summary of the local day before the slot.
type Digest struct {
	Date             string  `json:"date"`
	Jobs             int     `json:"jobs"`
	Hours            float64 `json:"hours"`
	LateStarts       int     `json:"late_starts"`
	C1Found          int     `json:"c1_found"`
	C2Found          int     `json:"c2_found"`
	OverdueRemedials int     `json:"overdue_remedials"`
	SeatsUsed        int     `json:"seats_used"`
}

// OwnerDigest sends each owner the figures of the local day before the
// slot.
func (s *ScheduledWork) OwnerDigest(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "scheduler.owner_digest", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		today, _ := localDay(slot, o.loc)
		from := today.AddDate(0, 0, -1) // local midnight, across a DST change too
		d := Digest{Date: from.Format(time.DateOnly)}
		var seconds float64
		// Hours: the part of each interval that lies in the day (an open
		// entry counts up to the end of the day or the slot).
		err := tx.QueryRow(ctx, `
			SELECT
			  (SELECT count(*) FROM jobs j WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status <> 'cancelled'
			      AND j.scheduled_start >= $2 AND j.scheduled_start < $3),
			  (SELECT COALESCE(sum(extract(epoch FROM LEAST(COALESCE(t.check_out_at, $4), $3) - GREATEST(t.check_in_at, $2))), 0)
			      FROM time_entries t WHERE t.org_id = $1 AND t.check_in_at < $3 AND COALESCE(t.check_out_at, $4) > $2),
			  (SELECT count(*) FROM jobs j WHERE j.org_id = $1 AND j.deleted_at IS NULL AND j.status <> 'cancelled'
			      AND j.scheduled_start >= $2 AND j.scheduled_start < $3
			      AND (SELECT min(t.check_in_at) FROM time_entries t WHERE t.org_id = j.org_id AND t.job_id = j.id)
			          > j.scheduled_start + make_interval(secs => $5)),
			  (SELECT count(*) FILTER (WHERE code = 'C1') FROM defects WHERE org_id = $1 AND logged_at >= $2 AND logged_at < $3),
			  (SELECT count(*) FILTER (WHERE code = 'C2') FROM defects WHERE org_id = $1 AND logged_at >= $2 AND logged_at < $3),
			  (SELECT count(*) FROM defects WHERE org_id = $1 AND resolved_at IS NULL AND remedial_due < $6::date)`,
			o.id, from, today, slot, fieldops.LateStartGrace.Seconds(), today.Format(time.DateOnly)).
			Scan(&d.Jobs, &seconds, &d.LateStarts, &d.C1Found, &d.C2Found, &d.OverdueRemedials)
		if err != nil {
			return 0, nil, err
		}
		d.Hours = float64(int(seconds/36+0.5)) / 100 // two decimals
		if d.SeatsUsed, err = seatsUsed(ctx, tx, o.id); err != nil {
			return 0, nil, err
		}
		to, err := owners(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		payload := map[string]any{"digest": d}
		n := 0
		for _, uid := range to {
			ok, err := notify(ctx, tx, o.id, uid, "digest.owner", dedupeKey("digest", d.Date, uid), payload, slot)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				n++
			}
		}
		return n, map[string]any{"date": d.Date}, nil
	})
}

// InboxRetention is how long handled Telegram updates are kept (for
// looking into a problem), after which PurgeExpired deletes them.
const InboxRetention = 14 * 24 * time.Hour

// SchedulerRunRetention is how long the record of each scheduled run
// (scheduler_runs: who ran it, when, and its error) is kept.
const SchedulerRunRetention = 90 * 24 * time.Hour

// PurgeExpired deletes the revocation records of sessions past their
// expiry, clears the location evidence of time entries checked in before
// the organisation's retention (keeping times and flags), and deletes
// stale Telegram link tokens, old handled Telegram updates and the
// scheduler's records of runs older than SchedulerRunRetention.
func (s *ScheduledWork) PurgeExpired(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	return s.run(ctx, orgID, "retention.purge", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		sess, err := tx.Exec(ctx, `DELETE FROM sessions_revoked WHERE org_id = $1 AND expires_at < $2`, o.id, slot)
		if err != nil {
			return 0, nil, err
		}
		cutoff := slot.AddDate(0, 0, -o.retentionDays)
		loc, err := tx.Exec(ctx, `
			UPDATE time_entries SET
			  check_in_lat = NULL, check_in_lng = NULL, check_in_accuracy_m = NULL, check_in_distance_m = NULL, check_in_message_at = NULL,
			  check_out_lat = NULL, check_out_lng = NULL, check_out_accuracy_m = NULL, check_out_distance_m = NULL, check_out_message_at = NULL,
			  location_purged_at = $3
			WHERE org_id = $1 AND check_in_at < $2 AND (check_in_lat IS NOT NULL OR check_out_lat IS NOT NULL)`,
			o.id, cutoff, slot)
		if err != nil {
			return 0, nil, err
		}
		// Telegram link tokens a day past their expiry, used or not.
		toks, err := tx.Exec(ctx, `DELETE FROM telegram_link_tokens WHERE org_id = $1 AND expires_at < $2`, o.id, slot.Add(-24*time.Hour))
		if err != nil {
			return 0, nil, err
		}
		// Handled and set-aside Telegram updates older than
		// InboxRetention. The inbox is not organisation-owned, so every
		// organisation's run deletes (a bounded batch of) them; later
		// runs find nothing left.
		upd, err := tx.Exec(ctx, `DELETE FROM telegram_updates WHERE update_id IN (
			SELECT update_id FROM telegram_updates
			WHERE received_at < $1 AND status IN ('done', 'set_aside') AND (calls IS NULL OR calls_sent_at IS NOT NULL)
			LIMIT 10000)`, slot.Add(-InboxRetention))
		if err != nil {
			return 0, nil, err
		}
		// The scheduler's own record of runs: the organisation's, and the
		// runs for no organisation, past SchedulerRunRetention.
		runs, err := tx.Exec(ctx, `DELETE FROM scheduler_runs WHERE org_key IN ($1, 0) AND slot < $2`,
			o.id, slot.Add(-SchedulerRunRetention))
		if err != nil {
			return 0, nil, err
		}
		n := int(sess.RowsAffected() + loc.RowsAffected() + toks.RowsAffected() + upd.RowsAffected() + runs.RowsAffected())
		return n, map[string]any{"sessions_revoked_deleted": sess.RowsAffected(), "time_entries_purged": loc.RowsAffected(),
			"link_tokens_deleted": toks.RowsAffected(), "telegram_updates_deleted": upd.RowsAffected(),
			"scheduler_runs_deleted": runs.RowsAffected(),
			"retention_days":         o.retentionDays, "before": cutoff.UTC()}, nil
	})
}

// VerifyAuditChain walks the organisation's chain in a read-only snapshot
// and, when it is broken, alerts the owners once per local day.
func (s *ScheduledWork) VerifyAuditChain(ctx context.Context, orgID int64, slot time.Time) (int, error) {
	var broken int64
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		broken, err = verifyChain(ctx, tx, orgID)
		return err
	})
	if err != nil {
		return 0, translate(err)
	}
	if broken == 0 {
		return 0, nil
	}
	return s.run(ctx, orgID, "audit.chain_broken", func(tx pgx.Tx, o *orgClock) (int, map[string]any, error) {
		dayStart, _ := localDay(slot, o.loc)
		date := dayStart.Format(time.DateOnly)
		to, err := owners(ctx, tx, o.id)
		if err != nil {
			return 0, nil, err
		}
		n := 0
		for _, uid := range to {
			ok, err := notify(ctx, tx, o.id, uid, "alert.audit_chain_broken", dedupeKey("auditchain", date, uid),
				map[string]any{"first_bad_seq": broken, "date": date}, slot)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				n++
			}
		}
		return n, map[string]any{"first_bad_seq": broken}, nil
	})
}

// securityNotice writes an e-mail to the member about a change to how
// their account is reached (a new Telegram link, two-factor sign-in set
// up or reset), in the transaction of the change (reliability checklist
// A11). By e-mail, not Telegram: a notice about a new link must not go
// only to the account that was just linked.
func securityNotice(ctx context.Context, tx pgx.Tx, orgID, userID int64, kind string, payload map[string]any, at time.Time) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO notifications (org_id, user_id, channel, kind, payload, created_at, not_before)
		VALUES ($1, $2, 'email', $3, $4, $5, $5)`, orgID, userID, kind, payload, at); err != nil {
		return fmt.Errorf("security notice %s: %w", kind, err)
	}
	return nil
}
