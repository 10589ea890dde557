package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// JobService implements fieldops.JobService.
type JobService struct{ db *DB }

var _ fieldops.JobService = (*JobService)(nil)

// NewJobService returns the job service.
func NewJobService(db *DB) *JobService { return &JobService{db: db} }

const jobColumns = `j.id, j.org_id, j.customer_id, c.name, j.site_id, s.address, s.latitude, s.longitude, j.type, j.status,
	j.title, j.description, j.scheduled_start, j.scheduled_end, j.estimated_minutes, j.created_by, j.created_at, j.updated_at`

const jobFrom = ` FROM jobs j
	JOIN customers c ON c.org_id = j.org_id AND c.id = j.customer_id
	JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id `

// jobOfMine is what scope own allows for jobs: assigned, or created ($1
// is the organisation, $2 the member). The assigned jobs are one
// uncorrelated subquery, which PostgreSQL runs once into a hash (an
// index-only scan of job_assignments_user), not a probe per candidate
// job: a week of a 1,000,000-job organisation has some 17,500 candidates
// (docs/PERFORMANCE.md, "Job list at 1,000,000 jobs"). An assignment is
// always of its job's organisation (foreign key), so this is the same set
// as a correlated EXISTS on job_id.
const jobOfMine = `(j.created_by = $2 OR j.id IN (SELECT a.job_id FROM job_assignments a WHERE a.org_id = $1 AND a.user_id = $2))`

func scanJob(row pgx.Row) (*fieldops.Job, error) {
	j := &fieldops.Job{}
	err := row.Scan(&j.ID, &j.OrgID, &j.CustomerID, &j.CustomerName, &j.SiteID, &j.SiteAddress, &j.SiteLatitude, &j.SiteLongitude,
		&j.Type, &j.Status, &j.Title, &j.Description, &j.ScheduledStart, &j.ScheduledEnd, &j.EstimatedMinutes,
		&j.CreatedBy, &j.CreatedAt, &j.UpdatedAt)
	return j, err
}

// loadEngineers fills the engineers of the given jobs in one query.
func loadEngineers(ctx context.Context, tx pgx.Tx, orgID int64, jobs []*fieldops.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	byID := make(map[int64]*fieldops.Job, len(jobs))
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		byID[j.ID], ids[i] = j, j.ID
		j.Engineers = nil
	}
	rows, err := tx.Query(ctx, `SELECT a.job_id, a.user_id, u.name, a.is_primary FROM job_assignments a JOIN users u ON u.id = a.user_id
		WHERE a.org_id = $1 AND a.job_id = ANY($2) ORDER BY a.job_id, NOT a.is_primary, u.name, a.user_id`, orgID, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var jobID int64
		var e fieldops.JobEngineer
		if err := rows.Scan(&jobID, &e.UserID, &e.Name, &e.Primary); err != nil {
			return err
		}
		byID[jobID].Engineers = append(byID[jobID].Engineers, e)
	}
	return rows.Err()
}

// findJob loads one job of the organisation with its engineers, in one
// query (the engineers as JSON, in loadEngineers' order).
func findJob(ctx context.Context, tx pgx.Tx, orgID, id int64, forUpdate bool) (*fieldops.Job, error) {
	q := `SELECT ` + jobColumns + `,
		(SELECT COALESCE(json_agg(json_build_object('u', a.user_id, 'n', u.name, 'p', a.is_primary)
		                          ORDER BY NOT a.is_primary, u.name, a.user_id), '[]')
		 FROM job_assignments a JOIN users u ON u.id = a.user_id WHERE a.org_id = j.org_id AND a.job_id = j.id)` +
		jobFrom + ` WHERE j.org_id = $1 AND j.id = $2 AND j.deleted_at IS NULL`
	if forUpdate {
		q += ` FOR UPDATE OF j`
	}
	j := &fieldops.Job{}
	var engineers []byte
	err := tx.QueryRow(ctx, q, orgID, id).Scan(&j.ID, &j.OrgID, &j.CustomerID, &j.CustomerName, &j.SiteID, &j.SiteAddress,
		&j.SiteLatitude, &j.SiteLongitude, &j.Type, &j.Status, &j.Title, &j.Description, &j.ScheduledStart, &j.ScheduledEnd,
		&j.EstimatedMinutes, &j.CreatedBy, &j.CreatedAt, &j.UpdatedAt, &engineers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Job")
	}
	if err != nil {
		return nil, err
	}
	var es []struct {
		UserID  int64  `json:"u"`
		Name    string `json:"n"`
		Primary bool   `json:"p"`
	}
	if err := json.Unmarshal(engineers, &es); err != nil {
		return nil, fmt.Errorf("job %d: engineers: %w", id, err)
	}
	for _, e := range es {
		j.Engineers = append(j.Engineers, fieldops.JobEngineer{UserID: e.UserID, Name: e.Name, Primary: e.Primary})
	}
	return j, nil
}

// jobFor loads a job and checks the flag against it.
func (s *JobService) jobFor(ctx context.Context, tx pgx.Tx, acc *access, f fieldops.Flag, id int64, forUpdate bool) (*fieldops.Job, error) {
	if err := acc.requireAny(f); err != nil {
		return nil, err
	}
	j, err := findJob(ctx, tx, acc.OrgID, id, forUpdate)
	if err != nil {
		return nil, err
	}
	r := j.Resource()
	if err := acc.check(f, &r, "Job"); err != nil {
		return nil, err
	}
	return j, nil
}

// FindJobByID returns a job (job.view; scope own: assigned jobs only).
func (s *JobService) FindJobByID(ctx context.Context, id int64) (*fieldops.Job, error) {
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		j, err = s.jobFor(ctx, tx, acc, fieldops.FlagJobView, id, false)
		return err
	})
	return j, err
}

// FindJobs lists jobs by scheduled start (job.view; an engineer sees only
// the jobs assigned to them).
func (s *JobService) FindJobs(ctx context.Context, f fieldops.JobFilter) ([]*fieldops.Job, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	var (
		out  []*fieldops.Job
		next string
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagJobView); err != nil {
			return err
		}
		where := []string{"j.org_id = $1", "j.deleted_at IS NULL"}
		args := []any{acc.OrgID}
		if acc.Scope(fieldops.FlagJobView) != fieldops.ScopeAll {
			args = append(args, acc.UserID) // $2 of jobOfMine
			where = append(where, jobOfMine)
		}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
		}
		if f.Status != "" {
			add("j.status = $?", f.Status)
		}
		if f.Type != "" {
			add("j.type = $?", f.Type)
		}
		if f.CustomerID != 0 {
			add("j.customer_id = $?", f.CustomerID)
		}
		if f.SiteID != 0 {
			add("j.site_id = $?", f.SiteID)
		}
		if f.EngineerID != 0 {
			add("EXISTS (SELECT 1 FROM job_assignments e WHERE e.job_id = j.id AND e.user_id = $?)", f.EngineerID)
		}
		if f.Unassigned {
			where = append(where, "NOT EXISTS (SELECT 1 FROM job_assignments e WHERE e.job_id = j.id)")
		}
		if !f.From.IsZero() {
			add("j.scheduled_start >= $?", f.From)
		}
		if !f.To.IsZero() {
			add("j.scheduled_start < $?", f.To)
		}
		if f.After != "" {
			at, id, err := decodeTimeCursor(f.After)
			if err != nil {
				return err
			}
			args = append(args, at, id)
			where = append(where, fmt.Sprintf("(j.scheduled_start, j.id) > ($%d, $%d)", len(args)-1, len(args)))
		}
		args = append(args, f.Limit+1)
		rows, err := tx.Query(ctx, `SELECT `+jobColumns+jobFrom+` WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY j.scheduled_start, j.id LIMIT $%d`, len(args)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) > f.Limit {
			out = out[:f.Limit]
			last := out[len(out)-1]
			next = encodeTimeCursor(last.ScheduledStart, last.ID)
		}
		return loadEngineers(ctx, tx, acc.OrgID, out)
	})
	return out, next, err
}

// CreateJob adds a job (job.create) and, when engineers are given, assigns
// them (job.assign) and tells them.
func (s *JobService) CreateJob(ctx context.Context, n fieldops.NewJob) (*fieldops.Job, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireCreate(fieldops.FlagJobCreate); err != nil {
			return err
		}
		if len(n.Engineers) > 0 {
			if err := acc.require(fieldops.FlagJobAssign); err != nil {
				return err
			}
		}
		if _, _, err := findCustomer(ctx, tx, acc, n.CustomerID); err != nil {
			return fieldops.Invalid("customer_id", "That customer was not found: choose one from the customer list.")
		}
		var siteCustomer int64
		err = tx.QueryRow(ctx, `SELECT customer_id FROM sites WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL`, acc.OrgID, n.SiteID).Scan(&siteCustomer)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldops.Invalid("site_id", "That site was not found: choose one of the customer's sites.")
		}
		if err != nil {
			return err
		}
		if siteCustomer != n.CustomerID {
			return fieldops.Invalid("site_id", "That site belongs to another customer: choose one of this customer's sites.")
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO jobs (org_id, customer_id, site_id, type, title, description, scheduled_start, scheduled_end, estimated_minutes, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			acc.OrgID, n.CustomerID, n.SiteID, n.Type, n.Title, n.Description, n.ScheduledStart, n.ScheduledEnd, n.EstimatedMinutes, acc.UserID).Scan(&id); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.create", targetType: "job", targetID: id, changes: map[string]any{
			"customer_id": n.CustomerID, "site_id": n.SiteID, "type": n.Type, "title": n.Title,
			"scheduled_start": n.ScheduledStart.UTC(), "scheduled_end": n.ScheduledEnd.UTC(), "estimated_minutes": n.EstimatedMinutes,
		}}); err != nil {
			return err
		}
		if j, err = findJob(ctx, tx, acc.OrgID, id, true); err != nil {
			return err
		}
		if len(n.Engineers) > 0 {
			if err := s.assign(ctx, tx, acc, j, n.Engineers); err != nil {
				return err
			}
			return loadEngineers(ctx, tx, acc.OrgID, []*fieldops.Job{j})
		}
		return nil
	})
	return j, err
}

// UpdateJob changes a job's details (job.edit).
func (s *JobService) UpdateJob(ctx context.Context, id int64, u fieldops.JobUpdate) (*fieldops.Job, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.jobFor(ctx, tx, acc, fieldops.FlagJobEdit, id, true)
		if err != nil {
			return err
		}
		if err := requireOpen(old); err != nil {
			return err
		}
		changes := map[string]any{}
		diff(changes, "type", old.Type, u.Type)
		diff(changes, "title", old.Title, u.Title)
		diff(changes, "description", old.Description, u.Description)
		diff(changes, "estimated_minutes", old.EstimatedMinutes, u.EstimatedMinutes)
		if len(changes) == 0 {
			j = old
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET type = COALESCE($3, type), title = COALESCE($4, title),
			description = COALESCE($5, description), estimated_minutes = COALESCE($6, estimated_minutes), updated_at = now()
			WHERE org_id = $1 AND id = $2`, acc.OrgID, id, u.Type, u.Title, u.Description, u.EstimatedMinutes); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.update", targetType: "job", targetID: id, changes: changes}); err != nil {
			return err
		}
		if j, err = findJob(ctx, tx, acc.OrgID, id, false); err != nil {
			return err
		}
		return notifyEngineers(ctx, tx, j, engineerIDs(j), "job.changed", changes)
	})
	return j, err
}

// RescheduleJob moves a job's window (job.schedule) and tells its
// engineers.
func (s *JobService) RescheduleJob(ctx context.Context, id int64, start, end time.Time) (*fieldops.Job, error) {
	probe := fieldops.NewJob{CustomerID: 1, SiteID: 1, Type: "repair", Title: "x", ScheduledStart: start, ScheduledEnd: end}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.jobFor(ctx, tx, acc, fieldops.FlagJobSchedule, id, true)
		if err != nil {
			return err
		}
		if err := requireOpen(old); err != nil {
			return err
		}
		if old.ScheduledStart.Equal(start) && old.ScheduledEnd.Equal(end) {
			j = old
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET scheduled_start = $3, scheduled_end = $4, updated_at = now() WHERE org_id = $1 AND id = $2`,
			acc.OrgID, id, start, end); err != nil {
			return err
		}
		changes := map[string]any{
			"scheduled_start": change{From: old.ScheduledStart.UTC(), To: start.UTC()},
			"scheduled_end":   change{From: old.ScheduledEnd.UTC(), To: end.UTC()},
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.reschedule", targetType: "job", targetID: id, changes: changes}); err != nil {
			return err
		}
		if j, err = findJob(ctx, tx, acc.OrgID, id, false); err != nil {
			return err
		}
		return notifyEngineers(ctx, tx, j, engineerIDs(j), "job.rescheduled", changes)
	})
	return j, err
}

// AssignEngineers replaces a job's engineers (job.assign).
func (s *JobService) AssignEngineers(ctx context.Context, id int64, as []fieldops.Assignment) (*fieldops.Job, error) {
	if err := fieldops.ValidateAssignments(as); err != nil {
		return nil, err
	}
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if j, err = s.jobFor(ctx, tx, acc, fieldops.FlagJobAssign, id, true); err != nil {
			return err
		}
		if err := requireOpen(j); err != nil {
			return err
		}
		if err := s.assign(ctx, tx, acc, j, as); err != nil {
			return err
		}
		return loadEngineers(ctx, tx, acc.OrgID, []*fieldops.Job{j})
	})
	return j, err
}

// assign makes the job's engineers exactly as, audits the change and
// tells the engineers who were added or taken off.
func (s *JobService) assign(ctx context.Context, tx pgx.Tx, acc *access, j *fieldops.Job, as []fieldops.Assignment) error {
	for _, a := range as {
		if err := checkAssignable(ctx, tx, acc, a.UserID); err != nil {
			return err
		}
	}
	before := map[int64]bool{}
	for _, e := range j.Engineers {
		before[e.UserID] = e.Primary
	}
	after := map[int64]bool{}
	for _, a := range as {
		after[a.UserID] = a.Primary
	}
	var added, removed, kept []int64
	for _, a := range as {
		if _, ok := before[a.UserID]; ok {
			kept = append(kept, a.UserID)
		} else {
			added = append(added, a.UserID)
		}
	}
	for _, e := range j.Engineers {
		if _, ok := after[e.UserID]; !ok {
			removed = append(removed, e.UserID)
		}
	}
	primaryChanged := false
	for id, p := range after {
		if b, ok := before[id]; ok && b != p {
			primaryChanged = true
		}
	}
	if len(added) == 0 && len(removed) == 0 && !primaryChanged {
		return nil
	}
	// Clear the primary flag first so the partial unique index never sees
	// two primaries; the deferred trigger checks the end state at commit.
	if _, err := tx.Exec(ctx, `UPDATE job_assignments SET is_primary = false WHERE job_id = $1 AND is_primary`, j.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM job_assignments WHERE org_id = $1 AND job_id = $2 AND NOT (user_id = ANY($3))`,
		acc.OrgID, j.ID, append(append([]int64{}, added...), kept...)); err != nil {
		return err
	}
	for _, a := range as {
		if a.Primary {
			continue // primary last, after the others are in place
		}
		if err := upsertAssignment(ctx, tx, acc, j.ID, a); err != nil {
			return err
		}
	}
	for _, a := range as {
		if a.Primary {
			if err := upsertAssignment(ctx, tx, acc, j.ID, a); err != nil {
				return err
			}
		}
	}
	toList := func(m map[int64]bool) []map[string]any {
		ids := make([]int64, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		out := make([]map[string]any, len(ids))
		for i, id := range ids {
			out[i] = map[string]any{"user_id": id, "primary": m[id]}
		}
		return out
	}
	if err := s.db.audit(ctx, tx, acc, entry{action: "job.assign", targetType: "job", targetID: j.ID,
		changes: map[string]any{"engineers": change{From: toList(before), To: toList(after)}}}); err != nil {
		return err
	}
	// The notices describe the job as it now is: who is primary.
	j.Engineers = j.Engineers[:0]
	for _, a := range as {
		j.Engineers = append(j.Engineers, fieldops.JobEngineer{UserID: a.UserID, Primary: a.Primary})
	}
	if err := notifyEngineers(ctx, tx, j, added, "job.assigned", nil); err != nil {
		return err
	}
	if primaryChanged {
		if err := notifyEngineers(ctx, tx, j, kept, "job.primary_changed", nil); err != nil {
			return err
		}
	}
	return notifyEngineers(ctx, tx, j, removed, "job.unassigned", nil)
}

func upsertAssignment(ctx context.Context, tx pgx.Tx, acc *access, jobID int64, a fieldops.Assignment) error {
	_, err := tx.Exec(ctx, `INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (job_id, user_id) DO UPDATE SET is_primary = EXCLUDED.is_primary`,
		acc.OrgID, jobID, a.UserID, a.Primary, acc.UserID)
	return err
}

// checkAssignable: an engineer must be an active member whose
// permissions let them check in to jobs.
func checkAssignable(ctx context.Context, tx pgx.Tx, acc *access, userID int64) error {
	m, err := findMember(ctx, tx, acc.OrgID, userID)
	if err != nil {
		return fieldops.Invalid("engineers", "One of the chosen engineers is not a member of this organisation: choose from the team list.")
	}
	ovs := m.Overrides
	if !acc.plan.Overrides {
		ovs = nil
	}
	if fieldops.EffectiveGrants(m.Role, ovs).Scope(fieldops.FlagJobCheckIn) == fieldops.ScopeNone {
		return fieldops.Invalid("engineers", "%s cannot be put on a job: as %s they cannot check in. Choose an engineer, or change their role first.", m.Name, m.Role.Label())
	}
	return nil
}

// requireOpen refuses changes to finished jobs.
func requireOpen(j *fieldops.Job) error {
	switch j.Status {
	case "completed":
		return fieldops.Errorf(fieldops.ECONFLICT, "This job is completed and cannot be changed; create a follow-up job instead.")
	case "cancelled":
		return fieldops.Errorf(fieldops.ECONFLICT, "This job is cancelled and cannot be changed; create a new job instead.")
	}
	return nil
}

func engineerIDs(j *fieldops.Job) []int64 {
	ids := make([]int64, len(j.Engineers))
	for i, e := range j.Engineers {
		ids[i] = e.UserID
	}
	return ids
}

// notifyEngineers writes one outgoing notification per engineer, in the
// caller's transaction. The dispatcher sends it by Telegram, or by e-mail
// to members without a Telegram link.
func notifyEngineers(ctx context.Context, tx pgx.Tx, j *fieldops.Job, userIDs []int64, kind string, changes map[string]any) error {
	primary, _ := j.Primary()
	for _, uid := range userIDs {
		payload := map[string]any{"job_id": j.ID, "title": j.Title, "site": j.SiteAddress,
			"scheduled_start": j.ScheduledStart.UTC(), "scheduled_end": j.ScheduledEnd.UTC(),
			"primary": uid == primary.UserID}
		if changes != nil {
			payload["changes"] = changes
		}
		if _, err := notify(ctx, tx, j.OrgID, uid, kind, "", payload, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// CancelJob marks an open job cancelled (job.edit) and tells its
// engineers.
func (s *JobService) CancelJob(ctx context.Context, id int64) (*fieldops.Job, error) {
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.jobFor(ctx, tx, acc, fieldops.FlagJobEdit, id, true)
		if err != nil {
			return err
		}
		if err := requireOpen(old); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET status = 'cancelled', cancelled_at = now(), updated_at = now()
			WHERE org_id = $1 AND id = $2`, acc.OrgID, id); err != nil {
			return err
		}
		changes := map[string]any{"status": change{From: old.Status, To: "cancelled"}}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.cancel", targetType: "job", targetID: id, changes: changes}); err != nil {
			return err
		}
		if j, err = findJob(ctx, tx, acc.OrgID, id, false); err != nil {
			return err
		}
		return notifyEngineers(ctx, tx, j, engineerIDs(j), "job.cancelled", changes)
	})
	return j, err
}

// DeleteJob removes a job (job.delete). A job with work on it is kept for
// the records; the engineers of a scheduled job are told it is off.
func (s *JobService) DeleteJob(ctx context.Context, id int64) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.jobFor(ctx, tx, acc, fieldops.FlagJobDelete, id, true)
		if err != nil {
			return err
		}
		switch old.Status {
		case "in_progress":
			return fieldops.Errorf(fieldops.ECONFLICT, "Work on this job has started, so it is kept for the records; cancel it instead.")
		case "completed":
			return fieldops.Errorf(fieldops.ECONFLICT, "This job is completed and is kept for the records; it cannot be deleted.")
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET deleted_at = now(), updated_at = now() WHERE org_id = $1 AND id = $2`,
			acc.OrgID, id); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.delete", targetType: "job", targetID: id,
			changes: map[string]any{"title": old.Title, "status": old.Status}}); err != nil {
			return err
		}
		if old.Status != "scheduled" {
			return nil // a cancelled job's engineers were told when it was cancelled
		}
		return notifyEngineers(ctx, tx, old, engineerIDs(old), "job.cancelled", map[string]any{"deleted": true})
	})
}
