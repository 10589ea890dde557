package fieldops

import (
	"context"
	"time"
)

// Scheduled task names, as recorded in scheduler_runs.task.
const (
	TaskMorningAgenda       = "agenda.morning"
	TaskJobReminders        = "job.reminders"
	TaskNoShowAlerts        = "job.no_show"
	TaskForgottenCheckOut   = "time.forgotten_check_out"
	TaskExpireInvitations   = "invitation.expire"
	TaskRemedialReminders   = "defect.remedials"
	TaskInspectionReminders = "site.inspections"
	TaskOwnerDigest         = "digest.owner"
	TaskPurgeExpired        = "retention.purge"
	TaskVerifyAuditChain    = "audit.verify_chain"
)

// Timings the scheduled work relies on.
const (
	ReminderLead          = 60 * time.Minute // a job reminder goes out this long before the start
	NoShowAfter           = 30 * time.Minute // no check-in this long after the start is a no-show
	ForgottenCheckOutTime = 10 * time.Hour   // an entry open this long is a forgotten check-out
	LateStartGrace        = 15 * time.Minute // a first check-in later than this after the start is late
	RemedialLeadDays      = 7                // remedials due within this many days are reminded daily
	InspectionLeadDays    = 30               // inspections due within this many days are reminded once
)

// OrgClock is an organisation as the scheduler sees it: its id and the
// IANA time zone its local times are in.
type OrgClock struct {
	OrgID    int64
	TimeZone string
}

// ScheduledWork is the timed work of the service, done for one
// organisation at a time with no actor: the scheduler calls it, and the
// store records it on the audit log with channel system.
//
// Each task takes the organisation and the slot it runs for: the instant
// the task was due (07:30 local for the morning agenda, the 5-minute
// boundary for the reminders). The slot, not the wall clock, is the task's
// "now", so a task run late or twice does the same thing. Each writes its
// outbox rows and one audit entry in one transaction with the work, and
// only when it did anything; it returns how many things it did (messages
// queued, rows purged). Every message carries a dedupe key, so a task run
// twice for one slot does not send twice.
type ScheduledWork interface {
	// Organisations lists every organisation with its time zone.
	Organisations(ctx context.Context) ([]OrgClock, error)
	// ClaimSlot records that this instance runs task for the organisation
	// (0: the whole service) at slot, and reports whether it won the
	// claim: of several instances, exactly one does.
	ClaimSlot(ctx context.Context, task string, orgID int64, slot time.Time) (bool, error)
	// FinishSlot records the end of a claimed run and its error, if any.
	FinishSlot(ctx context.Context, task string, orgID int64, slot time.Time, runErr error) error

	// MorningAgenda sends each engineer with jobs on the slot's local day
	// the list of them (07:30 local).
	MorningAgenda(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// JobReminders reminds the engineers of jobs starting within
	// ReminderLead after the slot, once per job and start time.
	JobReminders(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// NoShowAlerts alerts the members who receive alerts about scheduled
	// jobs that started NoShowAfter or more before the slot with no
	// check-in by any engineer.
	NoShowAlerts(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// ForgottenCheckOut alerts about time entries open for
	// ForgottenCheckOutTime or more: the engineer and the members who
	// receive alerts.
	ForgottenCheckOut(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// ExpireInvitations records each pending invitation that expired
	// (audit invite.expire, once) and tells whoever sent it.
	ExpireInvitations(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// RemedialReminders reminds the members who receive alerts, daily, of
	// unresolved remedials due within RemedialLeadDays or overdue.
	RemedialReminders(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// InspectionReminders tells the members who receive alerts, once per
	// due date, of sites whose next inspection is due within
	// InspectionLeadDays.
	InspectionReminders(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// OwnerDigest sends each owner the figures of the local day before the
	// slot: jobs, hours on site, late starts, C1 and C2 defects found,
	// overdue remedials and seats used.
	OwnerDigest(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// PurgeExpired deletes revocation records of sessions that have
	// expired anyway and clears location evidence older than the
	// organisation's retention, keeping the times.
	PurgeExpired(ctx context.Context, orgID int64, slot time.Time) (int, error)
	// VerifyAuditChain checks the organisation's audit chain and alerts
	// the owners, once per local day, when it is broken.
	VerifyAuditChain(ctx context.Context, orgID int64, slot time.Time) (int, error)
}
