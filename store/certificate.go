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

// CertificateService implements fieldops.CertificateService.
type CertificateService struct {
	db   *DB
	jobs *JobService
}

var _ fieldops.CertificateService = (*CertificateService)(nil)

// NewCertificateService returns the certificate service.
func NewCertificateService(db *DB) *CertificateService {
	return &CertificateService{db: db, jobs: NewJobService(db)}
}

const certificateColumns = `c.id, c.org_id, c.job_id, j.title, j.site_id, s.address, c.type, c.status, COALESCE(c.outcome, ''), c.next_due,
	c.created_by, u.name, c.submitted_at, COALESCE(c.approved_by, 0), c.approved_at, COALESCE(c.issued_by, 0), c.issued_at,
	c.created_at, c.updated_at`

const certificateFrom = ` FROM certificates c
	JOIN jobs j ON j.org_id = c.org_id AND j.id = c.job_id
	JOIN sites s ON s.org_id = j.org_id AND s.id = j.site_id
	JOIN users u ON u.id = c.created_by `

// ofMyJob is what scope own allows for what hangs off a job (the alias
// x): the member is assigned to the job or created it. $2 is the member.
func ofMyJob(x string) string {
	return `EXISTS (SELECT 1 FROM jobs mj WHERE mj.org_id = ` + x + `.org_id AND mj.id = ` + x + `.job_id AND (mj.created_by = $2
		OR EXISTS (SELECT 1 FROM job_assignments a WHERE a.job_id = mj.id AND a.user_id = $2)))`
}

func scanCertificate(row pgx.Row) (*fieldops.Certificate, error) {
	c := &fieldops.Certificate{}
	err := row.Scan(&c.ID, &c.OrgID, &c.JobID, &c.JobTitle, &c.SiteID, &c.SiteAddress, &c.Type, &c.Status, &c.Outcome, &c.NextDue,
		&c.CreatedBy, &c.CreatedByName, &c.SubmittedAt, &c.ApprovedBy, &c.ApprovedAt, &c.IssuedBy, &c.IssuedAt,
		&c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// findCertificate loads one certificate of the organisation.
func findCertificate(ctx context.Context, tx pgx.Tx, orgID, id int64, forUpdate bool) (*fieldops.Certificate, error) {
	q := `SELECT ` + certificateColumns + certificateFrom + ` WHERE c.org_id = $1 AND c.id = $2`
	if forUpdate {
		q += ` FOR UPDATE OF c`
	}
	c, err := scanCertificate(tx.QueryRow(ctx, q, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Certificate")
	}
	return c, err
}

// certificateFor loads a certificate and checks the flag against its
// job; the job is returned for notifications.
func (s *CertificateService) certificateFor(ctx context.Context, tx pgx.Tx, acc *access, f fieldops.Flag, id int64, forUpdate bool) (*fieldops.Certificate, *fieldops.Job, error) {
	if err := acc.requireAny(f); err != nil {
		return nil, nil, err
	}
	c, err := findCertificate(ctx, tx, acc.OrgID, id, forUpdate)
	if err != nil {
		return nil, nil, err
	}
	j, err := s.jobs.jobFor(ctx, tx, acc, f, c.JobID, false)
	if fieldops.ErrorCode(err) == fieldops.ENOTFOUND {
		return nil, nil, notFound("Certificate")
	}
	if err != nil {
		return nil, nil, err
	}
	return c, j, nil
}

// FindCertificateByID returns a certificate (certificate.view on its job).
func (s *CertificateService) FindCertificateByID(ctx context.Context, id int64) (*fieldops.Certificate, error) {
	var c *fieldops.Certificate
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		c, _, err = s.certificateFor(ctx, tx, acc, fieldops.FlagCertificateView, id, false)
		return err
	})
	return c, err
}

// FindCertificates lists certificates, newest first (certificate.view;
// scope own: certificates of the member's jobs).
func (s *CertificateService) FindCertificates(ctx context.Context, f fieldops.CertificateFilter) ([]*fieldops.Certificate, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []*fieldops.Certificate
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCertificateView); err != nil {
			return err
		}
		where := []string{"c.org_id = $1", "j.deleted_at IS NULL"}
		args := []any{acc.OrgID}
		if acc.Scope(fieldops.FlagCertificateView) != fieldops.ScopeAll {
			args = append(args, acc.UserID)
			where = append(where, ofMyJob("c"))
		}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
		}
		if f.JobID != 0 {
			add("c.job_id = $?", f.JobID)
		}
		if f.Status != "" {
			add("c.status = $?", f.Status)
		}
		if f.CreatedBy != 0 {
			add("c.created_by = $?", f.CreatedBy)
		}
		args = append(args, f.Limit)
		rows, err := tx.Query(ctx, `SELECT `+certificateColumns+certificateFrom+` WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY c.created_at DESC, c.id DESC LIMIT $%d`, len(args)), args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fieldops.Certificate, error) { return scanCertificate(row) })
		return err
	})
	return out, err
}

// CreateCertificate starts a draft certificate for a job
// (certificate.create on the job).
func (s *CertificateService) CreateCertificate(ctx context.Context, jobID int64, typ string) (*fieldops.Certificate, error) {
	if err := fieldops.CheckCertificateType(typ); err != nil {
		return nil, err
	}
	var c *fieldops.Certificate
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagCertificateCreate, jobID, true)
		if err != nil {
			return err
		}
		if err := requireNotCancelled(j); err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO certificates (org_id, job_id, type, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, acc.OrgID, jobID, typ, acc.UserID, s.db.now()).Scan(&id); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "certificate.create", targetType: "certificate", targetID: id,
			changes: map[string]any{"job_id": jobID, "type": typ, "status": change{From: nil, To: "draft"}}}); err != nil {
			return err
		}
		c, err = findCertificate(ctx, tx, acc.OrgID, id, false)
		return err
	})
	return c, err
}

// requireNotCancelled refuses paperwork on a cancelled job. A completed
// job still takes certificates and defects: they are often written up
// after the work.
func requireNotCancelled(j *fieldops.Job) error {
	if j.Status == "cancelled" {
		return fieldops.Errorf(fieldops.ECONFLICT, "This job is cancelled, so it takes no certificates or defects; record them on the job where the work was done.")
	}
	return nil
}

// certificateStateError explains why a certificate in state status cannot
// take the move, and what to do instead.
func certificateStateError(status, move string) error {
	var next string
	switch status {
	case "draft":
		next = "it is still a draft: its author must submit it for approval first"
	case "awaiting_approval":
		next = "it is awaiting approval: a manager must approve it first"
	case "approved":
		next = "it is approved already and waiting to be issued"
	case "issued":
		next = "it has been issued and is kept as issued; start a new certificate for new work"
	}
	return fieldops.Errorf(fieldops.ECONFLICT, "This certificate cannot be %s: %s.", move, next)
}

// move changes a certificate's status from one state to the next with
// the columns of that move, audits it and tells the holders of notify.
func (s *CertificateService) move(ctx context.Context, id int64, flag fieldops.Flag, from, to, action, verb string,
	set string, notify func(tx pgx.Tx, acc *access, c *fieldops.Certificate, j *fieldops.Job) ([]int64, error), kind string, extra func(tx pgx.Tx, acc *access, c *fieldops.Certificate, j *fieldops.Job, changes map[string]any) error) (*fieldops.Certificate, error) {
	var c *fieldops.Certificate
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, j, err := s.certificateFor(ctx, tx, acc, flag, id, true)
		if err != nil {
			return err
		}
		if old.Status != from {
			return certificateStateError(old.Status, verb)
		}
		now := s.db.now()
		args := []any{acc.OrgID, id, to, now}
		if strings.Contains(set, "$5") {
			args = append(args, acc.UserID)
		}
		if _, err := tx.Exec(ctx, `UPDATE certificates SET status = $3, updated_at = $4, `+set+` WHERE org_id = $1 AND id = $2`, args...); err != nil {
			return err
		}
		changes := map[string]any{"job_id": old.JobID, "type": old.Type, "status": change{From: from, To: to}}
		if extra != nil {
			if err := extra(tx, acc, old, j, changes); err != nil {
				return err
			}
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: action, targetType: "certificate", targetID: id, changes: changes}); err != nil {
			return err
		}
		if c, err = findCertificate(ctx, tx, acc.OrgID, id, false); err != nil {
			return err
		}
		ids, err := notify(tx, acc, c, j)
		if err != nil {
			return err
		}
		payload := map[string]any{"certificate_id": c.ID, "job_id": j.ID, "title": j.Title, "site": j.SiteAddress,
			"type": c.Type, "status": c.Status, "by": acc.name}
		return notifyMembers(ctx, tx, acc.OrgID, ids, kind, payload, "")
	})
	return c, err
}

// holdersOf names, as the recipients of a move, the members who can take
// the next one.
func (s *CertificateService) holdersOf(ctx context.Context, f fieldops.Flag) func(pgx.Tx, *access, *fieldops.Certificate, *fieldops.Job) ([]int64, error) {
	return func(tx pgx.Tx, acc *access, _ *fieldops.Certificate, j *fieldops.Job) ([]int64, error) {
		return holders(ctx, tx, acc, f, j)
	}
}

// author names the certificate's author, while they are a member and
// unless they made the move.
func author(ctx context.Context) func(pgx.Tx, *access, *fieldops.Certificate, *fieldops.Job) ([]int64, error) {
	return func(tx pgx.Tx, acc *access, c *fieldops.Certificate, _ *fieldops.Job) ([]int64, error) {
		if c.CreatedBy == acc.UserID {
			return nil, nil
		}
		var active bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2 AND status = 'active')`,
			acc.OrgID, c.CreatedBy).Scan(&active)
		if err != nil || !active {
			return nil, err
		}
		return []int64{c.CreatedBy}, nil
	}
}

// SubmitCertificate sends a draft for approval (certificate.create on the
// job) and tells those who can approve it.
func (s *CertificateService) SubmitCertificate(ctx context.Context, id int64) (*fieldops.Certificate, error) {
	return s.move(ctx, id, fieldops.FlagCertificateCreate, "draft", "awaiting_approval", "certificate.submit", "submitted",
		`submitted_at = $4`, s.holdersOf(ctx, fieldops.FlagCertificateApprove), "certificate.submitted", nil)
}

// ApproveCertificate approves a submitted certificate
// (certificate.approve) and tells those who can issue it.
func (s *CertificateService) ApproveCertificate(ctx context.Context, id int64) (*fieldops.Certificate, error) {
	return s.move(ctx, id, fieldops.FlagCertificateApprove, "awaiting_approval", "approved", "certificate.approve", "approved",
		`approved_at = $4, approved_by = $5`, s.holdersOf(ctx, fieldops.FlagCertificateIssue), "certificate.approved", nil)
}

// IssueCertificate issues an approved certificate (certificate.issue).
// For an EICR it records the outcome (unsatisfactory when any C1, C2 or
// FI was found on the job) and sets the site's next inspection due.
func (s *CertificateService) IssueCertificate(ctx context.Context, id int64, o fieldops.IssueOptions) (*fieldops.Certificate, error) {
	if o.RecommendedDue != nil && o.IntervalMonths != 0 {
		return nil, fieldops.Invalid("interval_months", "Give either the inspector's recommended date or an interval, not both.")
	}
	if err := o.Validate("eicr"); err != nil {
		return nil, err
	}
	return s.move(ctx, id, fieldops.FlagCertificateIssue, "approved", "issued", "certificate.issue", "issued",
		`issued_at = $4, issued_by = $5`, author(ctx), "certificate.issued", func(tx pgx.Tx, acc *access, c *fieldops.Certificate, j *fieldops.Job, changes map[string]any) error {
			if err := o.Validate(c.Type); err != nil {
				return err
			}
			if c.Type != "eicr" {
				return nil
			}
			return s.issueEICR(ctx, tx, acc, c, j, o, changes)
		})
}

// issueEICR sets an EICR's outcome and next due date, and the site's next
// inspection due.
func (s *CertificateService) issueEICR(ctx context.Context, tx pgx.Tx, acc *access, c *fieldops.Certificate, j *fieldops.Job, o fieldops.IssueOptions, changes map[string]any) error {
	loc, err := orgLocation(ctx, tx, acc.OrgID)
	if err != nil {
		return err
	}
	now := s.db.now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if o.RecommendedDue != nil && !o.RecommendedDue.After(day) {
		return fieldops.Invalid("next_due", "The recommended date of the next inspection must be after today.")
	}
	var (
		propertyType string
		oldDue       *time.Time
	)
	if err := tx.QueryRow(ctx, `SELECT property_type, next_inspection_due FROM sites WHERE org_id = $1 AND id = $2 FOR NO KEY UPDATE`,
		acc.OrgID, j.SiteID).Scan(&propertyType, &oldDue); err != nil {
		return fmt.Errorf("issue eicr: site: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT code FROM defects WHERE org_id = $1 AND job_id = $2`, acc.OrgID, j.ID)
	if err != nil {
		return err
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if err := o.CheckFor(day, propertyType); err != nil {
		return err
	}
	outcome := fieldops.EICROutcome(codes)
	due := fieldops.NextInspectionDue(day, propertyType, o)
	if _, err := tx.Exec(ctx, `UPDATE certificates SET outcome = $3, next_due = $4 WHERE org_id = $1 AND id = $2`,
		acc.OrgID, c.ID, outcome, due); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE sites SET next_inspection_due = $3, updated_at = now() WHERE org_id = $1 AND id = $2`,
		acc.OrgID, j.SiteID, due); err != nil {
		return err
	}
	dueText := due.Format(time.DateOnly)
	changes["outcome"] = outcome
	changes["next_due"] = dueText
	changes["site_id"] = j.SiteID
	var from any
	if oldDue != nil {
		from = oldDue.Format(time.DateOnly)
	}
	return s.db.audit(ctx, tx, acc, entry{action: "site.next_inspection_due", targetType: "site", targetID: j.SiteID,
		changes: map[string]any{"next_inspection_due": change{From: from, To: dueText}, "certificate_id": c.ID}})
}

// orgLocation returns the organisation's time zone; an unknown zone falls
// back to London.
func orgLocation(ctx context.Context, tx pgx.Tx, orgID int64) (*time.Location, error) {
	var tz string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM organisations WHERE id = $1`, orgID).Scan(&tz); err != nil {
		return nil, fmt.Errorf("organisation time zone: %w", err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.LoadLocation("Europe/London")
	}
	return loc, nil
}

// holders returns the active members, other than the actor, whose
// current permissions allow flag f on the job (an own-scope grant counts
// where they are assigned to it).
func holders(ctx context.Context, tx pgx.Tx, acc *access, f fieldops.Flag, j *fieldops.Job) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT user_id, role, overrides FROM memberships WHERE org_id = $1 AND status = 'active' AND user_id <> $2
		ORDER BY user_id`, acc.OrgID, acc.UserID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r := j.Resource()
	var out []int64
	for rows.Next() {
		var (
			uid       int64
			role      string
			overrides []byte
		)
		if err := rows.Scan(&uid, &role, &overrides); err != nil {
			return nil, err
		}
		rl, grants, err := memberGrants(role, overrides, acc.plan.Overrides)
		if err != nil {
			return nil, err
		}
		a := fieldops.Access{OrgID: acc.OrgID, UserID: uid, Role: rl, Grants: grants}
		if a.Can(f, &r) {
			out = append(out, uid)
		}
	}
	return out, rows.Err()
}

// notifyMembers writes one outgoing notification per member in the caller's
// transaction. With a dedupe prefix, each member's row is keyed
// prefix:user so that the same alert is never queued twice.
func notifyMembers(ctx context.Context, tx pgx.Tx, orgID int64, userIDs []int64, kind string, payload map[string]any, dedupe string) error {
	for _, uid := range userIDs {
		key := ""
		if dedupe != "" {
			key = fmt.Sprintf("%s:%d", dedupe, uid)
		}
		if _, err := notify(ctx, tx, orgID, uid, kind, key, payload, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}
