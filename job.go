package fieldops

import (
	"context"
	"strings"
	"time"
)

// Job types and statuses, as stored.
var (
	JobTypes    = []string{"eicr", "eic", "minor_works", "pat", "fire_alarm", "gas_safety", "install", "repair", "emergency"}
	JobStatuses = []string{"scheduled", "in_progress", "completed", "cancelled"}
)

// Job is a piece of work at a site for a customer, done by one or more
// engineers of whom one is the primary contact.
type Job struct {
	ID               int64
	OrgID            int64
	CustomerID       int64
	CustomerName     string
	SiteID           int64
	SiteAddress      string
	SiteLatitude     float64
	SiteLongitude    float64
	Type             string
	Status           string
	Title            string
	Description      string
	ScheduledStart   time.Time
	ScheduledEnd     time.Time
	EstimatedMinutes int
	Engineers        []JobEngineer
	CreatedBy        int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// JobEngineer is one engineer assigned to a job.
type JobEngineer struct {
	UserID  int64
	Name    string
	Primary bool
}

// Primary returns the primary engineer, if the job has engineers.
func (j *Job) Primary() (JobEngineer, bool) {
	for _, e := range j.Engineers {
		if e.Primary {
			return e, true
		}
	}
	return JobEngineer{}, false
}

// Resource describes the job for a permission check.
func (j *Job) Resource() Resource {
	r := Resource{OrgID: j.OrgID, CreatedBy: j.CreatedBy, Assignees: make([]int64, len(j.Engineers))}
	for i, e := range j.Engineers {
		r.Assignees[i] = e.UserID
	}
	return r
}

// NewJob is the input of CreateJob.
type NewJob struct {
	CustomerID       int64
	SiteID           int64
	Type             string
	Title            string
	Description      string
	ScheduledStart   time.Time
	ScheduledEnd     time.Time
	EstimatedMinutes int // default: the length of the window
	Engineers        []Assignment
}

// Validate checks the fields and fills the defaults.
func (n *NewJob) Validate() error {
	if n.CustomerID <= 0 {
		return Invalid("customer_id", "Choose a customer for the job.")
	}
	if n.SiteID <= 0 {
		return Invalid("site_id", "Choose the site where the job is.")
	}
	if err := checkJobType(n.Type); err != nil {
		return err
	}
	n.Title = strings.TrimSpace(n.Title)
	if err := checkText("title", "Job title", n.Title, 1, 200); err != nil {
		return err
	}
	if err := checkText("description", "Description", n.Description, 0, 4000); err != nil {
		return err
	}
	if err := checkWindow(n.ScheduledStart, n.ScheduledEnd); err != nil {
		return err
	}
	if n.EstimatedMinutes == 0 {
		n.EstimatedMinutes = int(n.ScheduledEnd.Sub(n.ScheduledStart) / time.Minute)
	}
	if err := checkEstimate(n.EstimatedMinutes); err != nil {
		return err
	}
	if len(n.Engineers) > 0 {
		return ValidateAssignments(n.Engineers)
	}
	return nil
}

// JobUpdate is the input of UpdateJob (job.edit); nil fields stay as they
// are. The window is changed with RescheduleJob.
type JobUpdate struct {
	Type             *string
	Title            *string
	Description      *string
	EstimatedMinutes *int
}

// Validate checks the fields that are set.
func (u *JobUpdate) Validate() error {
	if u.Type != nil {
		if err := checkJobType(*u.Type); err != nil {
			return err
		}
	}
	if u.Title != nil {
		*u.Title = strings.TrimSpace(*u.Title)
		if err := checkText("title", "Job title", *u.Title, 1, 200); err != nil {
			return err
		}
	}
	if u.Description != nil {
		if err := checkText("description", "Description", *u.Description, 0, 4000); err != nil {
			return err
		}
	}
	if u.EstimatedMinutes != nil {
		return checkEstimate(*u.EstimatedMinutes)
	}
	return nil
}

// Assignment puts an engineer on a job.
type Assignment struct {
	UserID  int64
	Primary bool
}

// ValidateAssignments checks a full list of engineers for a job: no
// duplicates and exactly one primary (when the list is not empty).
func ValidateAssignments(as []Assignment) error {
	primaries := 0
	seen := make(map[int64]bool, len(as))
	for _, a := range as {
		if a.UserID <= 0 {
			return Invalid("engineers", "Choose an engineer from the team list.")
		}
		if seen[a.UserID] {
			return Invalid("engineers", "The same engineer is listed twice; list each engineer once.")
		}
		seen[a.UserID] = true
		if a.Primary {
			primaries++
		}
	}
	if len(as) > 0 && primaries != 1 {
		return Invalid("primary", "Mark exactly one engineer as the primary contact (%d marked).", primaries)
	}
	return nil
}

// JobFilter narrows FindJobs. Results are ordered by scheduled start, then
// id, and paged with After, the cursor returned with the previous page.
type JobFilter struct {
	Status     string
	Type       string
	CustomerID int64
	SiteID     int64
	EngineerID int64
	Unassigned bool      // only jobs with no engineer
	From       time.Time // scheduled start at or after
	To         time.Time // scheduled start before
	After      string
	Limit      int // default 50, at most 200
}

// Validate checks the filter.
func (f *JobFilter) Validate() error {
	if f.Status != "" && !contains(JobStatuses, f.Status) {
		return Invalid("status", "Status must be one of %s.", strings.Join(JobStatuses, ", "))
	}
	if f.Type != "" {
		if err := checkJobType(f.Type); err != nil {
			return err
		}
	}
	if f.Unassigned && f.EngineerID != 0 {
		return Invalid("engineer_id", "Choose either an engineer or unassigned jobs, not both.")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return Invalid("to", "The end of the date range must be after its start.")
	}
	switch {
	case f.Limit < 0 || f.Limit > 200:
		return Invalid("limit", "Page size must be between 1 and 200.")
	case f.Limit == 0:
		f.Limit = 50
	}
	return nil
}

// JobService manages jobs. An engineer (job.view own) sees only the jobs
// they are assigned to; a job of another organisation is "not found".
type JobService interface {
	FindJobByID(ctx context.Context, id int64) (*Job, error)
	FindJobs(ctx context.Context, f JobFilter) ([]*Job, string, error)
	CreateJob(ctx context.Context, n NewJob) (*Job, error)
	UpdateJob(ctx context.Context, id int64, u JobUpdate) (*Job, error)
	// RescheduleJob needs job.schedule.
	RescheduleJob(ctx context.Context, id int64, start, end time.Time) (*Job, error)
	// AssignEngineers needs job.assign; it replaces the job's engineers.
	// Each engineer is told of the change through the outbox.
	AssignEngineers(ctx context.Context, id int64, as []Assignment) (*Job, error)
	// CancelJob needs job.edit: the job stays in the records, marked
	// cancelled, and its engineers are told.
	CancelJob(ctx context.Context, id int64) (*Job, error)
	// DeleteJob needs job.delete. A job with work on it (in progress or
	// completed) is kept for the records and refused; the engineers of a
	// scheduled job are told it is off.
	DeleteJob(ctx context.Context, id int64) error
	// FindSchedule needs schedule.view_team: the board of the
	// organisation's local day containing q.Day, one row per engineer,
	// a page of engineers at a time.
	FindSchedule(ctx context.Context, q ScheduleQuery) (*Schedule, error)
}

func checkJobType(t string) error {
	if !contains(JobTypes, t) {
		return Invalid("type", "Job type must be one of %s.", strings.Join(JobTypes, ", "))
	}
	return nil
}

func checkWindow(start, end time.Time) error {
	switch {
	case start.IsZero():
		return Invalid("scheduled_start", "Set when the job starts.")
	case end.IsZero():
		return Invalid("scheduled_end", "Set when the job ends.")
	case !end.After(start):
		return Invalid("scheduled_end", "The job must end after it starts.")
	case end.Sub(start) > 31*24*time.Hour:
		return Invalid("scheduled_end", "A job can be scheduled for at most 31 days; split longer work into several jobs.")
	}
	return nil
}

func checkEstimate(m int) error {
	if m < 1 || m > 100000 {
		return Invalid("estimated_minutes", "Estimated time must be between 1 minute and 100000 minutes.")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
