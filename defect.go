package fieldops

import (
	"context"
	"strings"
	"time"
)

// DefectCodes are the EICR observation codes: C1 danger present, C2
// potentially dangerous, C3 improvement recommended, FI further
// investigation.
var DefectCodes = []string{"C1", "C2", "C3", "FI"}

// RemedialDays is how long a remedial may take, counting the inspection
// day as day 1.
const RemedialDays = 28

// Defect is an observation recorded on a job.
type Defect struct {
	ID           int64
	OrgID        int64
	JobID        int64
	JobTitle     string
	SiteAddress  string
	Code         string
	Description  string
	Location     string
	LoggedBy     int64
	LoggedByName string
	LoggedAt     time.Time
	RemedialDue  *time.Time // a date; nil for C3
	ResolvedBy   int64
	ResolvedAt   *time.Time
	Resolution   string
}

// Open reports whether the defect is not resolved yet.
func (d *Defect) Open() bool { return d.ResolvedAt == nil }

// Overdue reports whether an open remedial is past its due date on the
// calendar day today.
func (d *Defect) Overdue(today time.Time) bool {
	if !d.Open() || d.RemedialDue == nil {
		return false
	}
	t := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	return d.RemedialDue.Before(t)
}

// RemedialDue returns the due date of the remedial a defect of code opens
// when found at the instant inspected, in the organisation's zone loc:
// C1, C2 and FI are due 28 days from the inspection, the inspection day
// being day 1 (so 27 days after it); C3 opens none.
func RemedialDue(code string, inspected time.Time, loc *time.Location) (time.Time, bool) {
	if code != "C1" && code != "C2" && code != "FI" {
		return time.Time{}, false
	}
	d := inspected.In(loc)
	return time.Date(d.Year(), d.Month(), d.Day()+RemedialDays-1, 0, 0, 0, 0, time.UTC), true
}

// CheckDefect validates the input of LogDefect; description and location
// are trimmed.
func CheckDefect(code string, description, location *string) error {
	if !contains(DefectCodes, code) {
		return Invalid("code", "Defect code must be one of %s.", strings.Join(DefectCodes, ", "))
	}
	*description = strings.TrimSpace(*description)
	if err := checkText("description", "Description", *description, 1, 2000); err != nil {
		return err
	}
	*location = strings.TrimSpace(*location)
	return checkText("location", "Location", *location, 0, 200)
}

// CheckResolution validates what was done to resolve a defect.
func CheckResolution(resolution *string) error {
	*resolution = strings.TrimSpace(*resolution)
	return checkText("resolution", "What was done", *resolution, 1, 2000)
}

// DefectFilter narrows FindDefects; results are newest first.
type DefectFilter struct {
	JobID    int64
	LoggedBy int64
	Open     bool // only unresolved
	Overdue  bool // only unresolved with the remedial past due
	Limit    int  // default 100, at most 500
}

// Validate checks the filter.
func (f *DefectFilter) Validate() error {
	switch {
	case f.Limit < 0 || f.Limit > 500:
		return Invalid("limit", "Page size must be between 1 and 500.")
	case f.Limit == 0:
		f.Limit = 100
	}
	return nil
}

// DefectService records defects. Each check is made against the defect's
// job: an engineer (scope own) sees and logs defects only on jobs they
// are assigned to. Each change is audited.
type DefectService interface {
	// FindDefectByID needs defect.view.
	FindDefectByID(ctx context.Context, id int64) (*Defect, error)
	// FindDefects needs defect.view; scope own lists only defects of the
	// member's jobs.
	FindDefects(ctx context.Context, f DefectFilter) ([]*Defect, error)
	// LogDefect records a defect (defect.log on the job). C1, C2 and FI
	// open a remedial (see RemedialDue); a C1 alerts at once the members
	// who receive alerts.
	LogDefect(ctx context.Context, jobID int64, code, description, location string) (*Defect, error)
	// ResolveDefect closes a defect (defect.resolve).
	ResolveDefect(ctx context.Context, id int64, resolution string) (*Defect, error)
}
