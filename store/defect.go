package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// DefectService implements fieldops.DefectService.
type DefectService struct {
	db   *DB
	jobs *JobService
}

var _ fieldops.DefectService = (*DefectService)(nil)

// NewDefectService returns the defect service.
func NewDefectService(db *DB) *DefectService {
	return &DefectService{db: db, jobs: NewJobService(db)}
}

const defectColumns = `d.id, d.org_id, d.job_id, j.title, s.address, d.code, d.description, d.location, d.logged_by, u.name, d.logged_at,
	d.remedial_due, COALESCE(d.resolved_by, 0), d.resolved_at, COALESCE(d.resolution, '')`

const defectFrom = ` FROM defects d
	JOIN jobs j ON j.org_id = d.org_id AND j.id = d.job_id
	JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
	JOIN users u ON u.id = d.logged_by `

func scanDefect(row pgx.Row) (*fieldops.Defect, error) {
	d := &fieldops.Defect{}
	err := row.Scan(&d.ID, &d.OrgID, &d.JobID, &d.JobTitle, &d.SiteAddress, &d.Code, &d.Description, &d.Location,
		&d.LoggedBy, &d.LoggedByName, &d.LoggedAt, &d.RemedialDue, &d.ResolvedBy, &d.ResolvedAt, &d.Resolution)
	return d, err
}

func findDefect(ctx context.Context, tx pgx.Tx, orgID, id int64, forUpdate bool) (*fieldops.Defect, error) {
	q := `SELECT ` + defectColumns + defectFrom + ` WHERE d.org_id = $1 AND d.id = $2`
	if forUpdate {
		q += ` FOR UPDATE OF d`
	}
	d, err := scanDefect(tx.QueryRow(ctx, q, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Defect")
	}
	return d, err
}

// defectFor loads a defect and checks the flag against its job.
func (s *DefectService) defectFor(ctx context.Context, tx pgx.Tx, acc *access, f fieldops.Flag, id int64, forUpdate bool) (*fieldops.Defect, error) {
	if err := acc.requireAny(f); err != nil {
		return nil, err
	}
	d, err := findDefect(ctx, tx, acc.OrgID, id, forUpdate)
	if err != nil {
		return nil, err
	}
	_, err = s.jobs.jobFor(ctx, tx, acc, f, d.JobID, false)
	if fieldops.ErrorCode(err) == fieldops.ENOTFOUND {
		return nil, notFound("Defect")
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// today is the calendar day of the organisation now, as a date.
func (db *DB) today(ctx context.Context, tx pgx.Tx, orgID int64) (time.Time, *time.Location, error) {
	loc, err := orgLocation(ctx, tx, orgID)
	if err != nil {
		return time.Time{}, nil, err
	}
	n := db.now().In(loc)
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC), loc, nil
}

// FindDefectByID returns a defect (defect.view on its job).
func (s *DefectService) FindDefectByID(ctx context.Context, id int64) (*fieldops.Defect, error) {
	var d *fieldops.Defect
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		d, err = s.defectFor(ctx, tx, acc, fieldops.FlagDefectView, id, false)
		return err
	})
	return d, err
}

// FindDefects lists defects, newest first (defect.view; scope own:
// defects of the member's jobs). Overdue is judged on the organisation's
// calendar day.
func (s *DefectService) FindDefects(ctx context.Context, f fieldops.DefectFilter) ([]*fieldops.Defect, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []*fieldops.Defect
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagDefectView); err != nil {
			return err
		}
		where := []string{"d.org_id = $1", "j.deleted_at IS NULL"}
		args := []any{acc.OrgID}
		if acc.Scope(fieldops.FlagDefectView) != fieldops.ScopeAll {
			args = append(args, acc.UserID)
			where = append(where, ofMyJob("d"))
		}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
		}
		if f.JobID != 0 {
			add("d.job_id = $?", f.JobID)
		}
		if f.LoggedBy != 0 {
			add("d.logged_by = $?", f.LoggedBy)
		}
		if f.Open || f.Overdue {
			where = append(where, "d.resolved_at IS NULL")
		}
		if f.Overdue {
			today, _, err := s.db.today(ctx, tx, acc.OrgID)
			if err != nil {
				return err
			}
			add("d.remedial_due < $?::date", today.Format(time.DateOnly))
		}
		args = append(args, f.Limit)
		rows, err := tx.Query(ctx, `SELECT `+defectColumns+defectFrom+` WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY d.logged_at DESC, d.id DESC LIMIT $%d`, len(args)), args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fieldops.Defect, error) { return scanDefect(row) })
		return err
	})
	return out, err
}

// LogDefect records a defect on a job (defect.log on the job). C1, C2 and
// FI open a remedial due 28 days from today in the organisation's zone,
// today being day 1; a C1 also alerts, at once and in the same
// transaction, every member who receives alerts for the job.
func (s *DefectService) LogDefect(ctx context.Context, jobID int64, code, description, location string) (*fieldops.Defect, error) {
	if err := fieldops.CheckDefect(code, &description, &location); err != nil {
		return nil, err
	}
	var d *fieldops.Defect
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagDefectLog, jobID, true)
		if err != nil {
			return err
		}
		if err := requireNotCancelled(j); err != nil {
			return err
		}
		loc, err := orgLocation(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		now := s.db.now()
		changes := map[string]any{"job_id": jobID, "code": code, "description": description, "location": location}
		var due *string
		if day, ok := fieldops.RemedialDue(code, now, loc); ok {
			v := day.Format(time.DateOnly)
			due, changes["remedial_due"] = &v, v
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO defects (org_id, job_id, code, description, location, logged_by, logged_at, remedial_due)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::date) RETURNING id`, acc.OrgID, jobID, code, description, location, acc.UserID, now, due).Scan(&id); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "defect.log", targetType: "defect", targetID: id, changes: changes}); err != nil {
			return err
		}
		if d, err = findDefect(ctx, tx, acc.OrgID, id, false); err != nil {
			return err
		}
		if code != "C1" {
			return nil
		}
		ids, err := holders(ctx, tx, acc, fieldops.FlagAlertsReceive, j)
		if err != nil {
			return err
		}
		payload := map[string]any{"defect_id": id, "job_id": j.ID, "title": j.Title, "site": j.SiteAddress, "code": code,
			"description": description, "location": location, "remedial_due": changes["remedial_due"], "by": acc.name}
		return notifyMembers(ctx, tx, acc.OrgID, ids, "defect.c1", payload, fmt.Sprintf("defect.c1:%d", id))
	})
	return d, err
}

// ResolveDefect closes an open defect (defect.resolve on its job) with
// what was done.
func (s *DefectService) ResolveDefect(ctx context.Context, id int64, resolution string) (*fieldops.Defect, error) {
	if err := fieldops.CheckResolution(&resolution); err != nil {
		return nil, err
	}
	var d *fieldops.Defect
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.defectFor(ctx, tx, acc, fieldops.FlagDefectResolve, id, true)
		if err != nil {
			return err
		}
		if !old.Open() {
			return fieldops.Errorf(fieldops.ECONFLICT, "This defect was resolved already on %s; log a new defect if the problem is back.",
				old.ResolvedAt.Format("2 Jan 2006"))
		}
		if _, err := tx.Exec(ctx, `UPDATE defects SET resolved_by = $3, resolved_at = $4, resolution = $5 WHERE org_id = $1 AND id = $2`,
			acc.OrgID, id, acc.UserID, s.db.now(), resolution); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "defect.resolve", targetType: "defect", targetID: id,
			changes: map[string]any{"job_id": old.JobID, "code": old.Code, "status": change{From: "open", To: "resolved"}, "resolution": resolution}}); err != nil {
			return err
		}
		d, err = findDefect(ctx, tx, acc.OrgID, id, false)
		return err
	})
	return d, err
}
