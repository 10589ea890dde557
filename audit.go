package fieldops

import (
	"context"
	"time"
)

// AuditEvent is one entry of the organisation's audit log: who did what,
// from where, to what, and what changed. Entries are hash-chained per
// organisation: Hash covers the entry and PrevHash.
type AuditEvent struct {
	ID          int64
	OrgID       int64
	Seq         int64
	At          time.Time
	ActorUserID int64 // 0 for the system or an unknown visitor
	ActorLabel  string
	Channel     Channel
	IP          string
	Action      string // e.g. job.assign, member.role_change
	TargetType  string
	TargetID    string
	Changes     map[string]any
	PrevHash    []byte
	Hash        []byte
}

// AuditFilter narrows FindAuditEvents; newest first, paged with After.
type AuditFilter struct {
	ActorUserID int64
	Action      string
	TargetType  string
	TargetID    string
	From, To    time.Time
	After       string
	Limit       int // default 50, at most 500
}

// Validate checks the filter.
func (f *AuditFilter) Validate() error {
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return Invalid("to", "The end of the date range must be after its start.")
	}
	switch {
	case f.Limit < 0 || f.Limit > 500:
		return Invalid("limit", "Page size must be between 1 and 500.")
	case f.Limit == 0:
		f.Limit = 50
	}
	return nil
}

// AuditService reads the audit log (audit.view). Entries are written by
// the other services, in the same transaction as the change they record.
type AuditService interface {
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, string, error)
	// ExportAuditEvents calls fn with every event the filter selects,
	// newest first, ignoring Limit and After (audit.export).
	ExportAuditEvents(ctx context.Context, f AuditFilter, fn func(*AuditEvent) error) error
	// VerifyChain checks the organisation's hash chain and returns the
	// sequence number of the first broken link, or 0 when it is intact.
	VerifyChain(ctx context.Context) (int64, error)
}
