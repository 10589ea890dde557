package fieldops

import (
	"context"
	"strings"
	"time"
)

// Certificate types and statuses, as stored. A certificate goes
// draft → awaiting_approval → approved → issued.
var (
	CertificateTypes    = []string{"eicr", "eic", "minor_works", "pat", "fire_alarm", "gas_safety", "emergency_lighting"}
	CertificateStatuses = []string{"draft", "awaiting_approval", "approved", "issued"}
)

// EICR outcomes.
const (
	OutcomeSatisfactory   = "satisfactory"
	OutcomeUnsatisfactory = "unsatisfactory"
)

// Certificate is a test or inspection certificate written for a job.
type Certificate struct {
	ID            int64
	OrgID         int64
	JobID         int64
	JobTitle      string
	SiteID        int64
	SiteAddress   string
	Type          string
	Status        string
	Outcome       string     // EICR: set when issued
	NextDue       *time.Time // EICR: the site's next inspection, set when issued (a date)
	CreatedBy     int64
	CreatedByName string
	SubmittedAt   *time.Time
	ApprovedBy    int64
	ApprovedAt    *time.Time
	IssuedBy      int64
	IssuedAt      *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// IssueOptions are the choices made when an EICR is issued; both are
// optional and neither applies to other certificate types.
type IssueOptions struct {
	// RecommendedDue is the inspector's recommended date of the next
	// inspection; when set it is the site's next inspection due.
	RecommendedDue *time.Time
	// IntervalMonths replaces the property type's interval for this job.
	IntervalMonths int
}

// Validate checks the options for a certificate of type typ.
func (o IssueOptions) Validate(typ string) error {
	if typ != "eicr" && (o.RecommendedDue != nil || o.IntervalMonths != 0) {
		return Invalid("next_due", "Only an EICR sets the site's next inspection date; leave the date and interval empty.")
	}
	if o.IntervalMonths < 0 || o.IntervalMonths > 120 {
		return Invalid("interval_months", "The inspection interval must be between 1 and 120 months, or empty for the property type's default.")
	}
	return nil
}

// EICRIntervalMonths is the longest time to the next EICR for a property
// type: owner-occupied home 10 years, rented home or HMO 5, commercial 5,
// industrial 3, caravan 3, swimming pool 1. An unknown type gets the
// domestic rented interval.
func EICRIntervalMonths(propertyType string) int {
	switch propertyType {
	case "owner_occupied":
		return 120
	case "rented", "hmo", "commercial":
		return 60
	case "industrial", "caravan":
		return 36
	case "swimming_pool":
		return 12
	}
	return 60
}

// CheckFor refuses a next inspection later than the property type allows
// (EICRIntervalMonths) after an EICR issued on day: an interval longer
// than the type's, or a recommended date past it. A shorter one is the
// inspector's call.
func (o IssueOptions) CheckFor(day time.Time, propertyType string) error {
	longest := EICRIntervalMonths(propertyType)
	what := strings.ReplaceAll(propertyType, "_", " ")
	if o.IntervalMonths > longest {
		return Invalid("interval_months", "A %s site's next EICR is due within %d months at most; choose %d or fewer, or leave it empty for %d.",
			what, longest, longest, longest)
	}
	if o.RecommendedDue != nil {
		latest := NextInspectionDue(day, propertyType, IssueOptions{})
		if o.RecommendedDue.After(latest) {
			return Invalid("next_due", "A %s site's next EICR is due by %s at the latest (%d months); choose that date or an earlier one.",
				what, latest.Format("2 January 2006"), longest)
		}
	}
	return nil
}

// NextInspectionDue returns the date of the next EICR after one issued on
// day (a calendar date): the inspector's recommended date when given,
// else day plus the options' interval or the property type's.
func NextInspectionDue(day time.Time, propertyType string, o IssueOptions) time.Time {
	if o.RecommendedDue != nil {
		r := *o.RecommendedDue
		return time.Date(r.Year(), r.Month(), r.Day(), 0, 0, 0, 0, time.UTC)
	}
	months := o.IntervalMonths
	if months == 0 {
		months = EICRIntervalMonths(propertyType)
	}
	// The same day of the month, or the month's last day when it is
	// shorter (31 August + 6 months is 28 or 29 February): never later.
	first := time.Date(day.Year(), day.Month()+time.Month(months), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(day.Day(), last)-1)
}

// EICROutcome is unsatisfactory when any C1, C2 or FI is recorded; C3
// alone is satisfactory.
func EICROutcome(codes []string) string {
	for _, c := range codes {
		if c == "C1" || c == "C2" || c == "FI" {
			return OutcomeUnsatisfactory
		}
	}
	return OutcomeSatisfactory
}

// CertificateFilter narrows FindCertificates; results are newest first.
type CertificateFilter struct {
	JobID     int64
	Status    string
	CreatedBy int64
	Limit     int // default 100, at most 500
}

// Validate checks the filter.
func (f *CertificateFilter) Validate() error {
	if f.Status != "" && !contains(CertificateStatuses, f.Status) {
		return Invalid("status", "Status must be one of %s.", strings.Join(CertificateStatuses, ", "))
	}
	switch {
	case f.Limit < 0 || f.Limit > 500:
		return Invalid("limit", "Page size must be between 1 and 500.")
	case f.Limit == 0:
		f.Limit = 100
	}
	return nil
}

// CheckCertificateType returns EINVALID naming the field type for an
// unknown certificate type.
func CheckCertificateType(t string) error {
	if !contains(CertificateTypes, t) {
		return Invalid("type", "Certificate type must be one of %s.", strings.Join(CertificateTypes, ", "))
	}
	return nil
}

// CertificateService manages certificates. Each check is made against the
// certificate's job: an engineer (scope own) acts only on certificates of
// jobs they are assigned to; anything else is "not found". Each move is
// audited and tells the next person through the outbox.
type CertificateService interface {
	// FindCertificateByID needs certificate.view.
	FindCertificateByID(ctx context.Context, id int64) (*Certificate, error)
	// FindCertificates needs certificate.view; scope own lists only
	// certificates of the member's jobs.
	FindCertificates(ctx context.Context, f CertificateFilter) ([]*Certificate, error)
	// CreateCertificate starts a draft (certificate.create on the job).
	CreateCertificate(ctx context.Context, jobID int64, typ string) (*Certificate, error)
	// SubmitCertificate sends a draft for approval (certificate.create)
	// and tells the members who can approve it.
	SubmitCertificate(ctx context.Context, id int64) (*Certificate, error)
	// ApproveCertificate approves a submitted certificate
	// (certificate.approve) and tells the members who can issue it.
	ApproveCertificate(ctx context.Context, id int64) (*Certificate, error)
	// IssueCertificate issues an approved certificate (certificate.issue).
	// An EICR gets its outcome and sets the site's next inspection due.
	IssueCertificate(ctx context.Context, id int64, o IssueOptions) (*Certificate, error)
}
