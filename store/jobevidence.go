package store

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// JobEvidenceService implements fieldops.JobEvidenceService.
type JobEvidenceService struct {
	db   *DB
	jobs *JobService
}

var _ fieldops.JobEvidenceService = (*JobEvidenceService)(nil)

// NewJobEvidenceService returns the service that reads what was recorded
// on a job in the field.
func NewJobEvidenceService(db *DB) *JobEvidenceService {
	return &JobEvidenceService{db: db, jobs: NewJobService(db)}
}

// FindJobEvidence returns a job's time entries with their sums, its notes
// and, with photo.view on the job, its photos (job.view; scope own: jobs
// the member is on). Open entries count up to the store's clock.
func (s *JobEvidenceService) FindJobEvidence(ctx context.Context, jobID int64) (*fieldops.JobEvidence, error) {
	var ev *fieldops.JobEvidence
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagJobView, jobID, false)
		if err != nil {
			return err
		}
		entries, err := findTimeEntries(ctx, tx, acc.OrgID, j.ID)
		if err != nil {
			return err
		}
		ev = &fieldops.JobEvidence{JobID: j.ID, Time: fieldops.SumJobWork(entries, s.db.now())}
		if r := j.Resource(); acc.Can(fieldops.FlagPhotoView, &r) {
			if ev.Photos, err = findPhotos(ctx, tx, acc.OrgID, j.ID); err != nil {
				return err
			}
			ev.CanPhotos = true
		}
		ev.Notes, err = findNotes(ctx, tx, acc.OrgID, j.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// findTimeEntries lists a job's entries by engineer name, then check-in.
func findTimeEntries(ctx context.Context, tx pgx.Tx, orgID, jobID int64) ([]*fieldops.TimeEntry, error) {
	rows, err := tx.Query(ctx, `SELECT t.id, t.job_id, t.user_id, u.name, t.check_in_at, t.check_out_at,
			t.check_in_lat, t.check_in_lng, t.check_in_accuracy_m, t.check_in_distance_m, t.check_in_message_at, t.check_in_flags,
			t.check_out_lat, t.check_out_lng, t.check_out_accuracy_m, t.check_out_distance_m, t.check_out_message_at, t.check_out_flags,
			t.source, t.edited_at, t.location_purged_at IS NOT NULL
		FROM time_entries t JOIN users u ON u.id = t.user_id
		WHERE t.org_id = $1 AND t.job_id = $2
		ORDER BY u.name, t.user_id, t.check_in_at, t.id`, orgID, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*fieldops.TimeEntry
	for rows.Next() {
		e := &fieldops.TimeEntry{}
		var purged bool
		if err := rows.Scan(&e.ID, &e.JobID, &e.UserID, &e.UserName, &e.CheckInAt, &e.CheckOutAt,
			&e.In.Lat, &e.In.Lng, &e.In.AccuracyM, &e.In.DistanceM, &e.In.MessageAt, &e.In.Flags,
			&e.Out.Lat, &e.Out.Lng, &e.Out.AccuracyM, &e.Out.DistanceM, &e.Out.MessageAt, &e.Out.Flags,
			&e.Source, &e.EditedAt, &purged); err != nil {
			return nil, err
		}
		e.In.Purged = purged
		e.Out.Purged = purged && e.CheckOutAt != nil
		out = append(out, e)
	}
	return out, rows.Err()
}

// findPhotos lists a job's photos that are not deleted, oldest first,
// each with the caption sent with it.
func findPhotos(ctx context.Context, tx pgx.Tx, orgID, jobID int64) ([]*fieldops.Photo, error) {
	rows, err := tx.Query(ctx, `SELECT p.id, p.job_id, p.user_id, u.name, p.size_bytes, p.sha256, p.taken_at, p.created_at,
			COALESCE((SELECT n.body FROM notes n WHERE n.org_id = p.org_id AND n.photo_id = p.id ORDER BY n.id LIMIT 1), '')
		FROM photos p JOIN users u ON u.id = p.user_id
		WHERE p.org_id = $1 AND p.job_id = $2 AND p.deleted_at IS NULL
		ORDER BY p.created_at, p.id`, orgID, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*fieldops.Photo
	for rows.Next() {
		p := &fieldops.Photo{}
		var sum []byte
		if err := rows.Scan(&p.ID, &p.JobID, &p.UserID, &p.UserName, &p.SizeBytes, &sum, &p.TakenAt, &p.CreatedAt, &p.Caption); err != nil {
			return nil, err
		}
		p.SHA256 = fieldops.HexSHA256(sum)
		out = append(out, p)
	}
	return out, rows.Err()
}

// findNotes lists a job's notes, oldest first.
func findNotes(ctx context.Context, tx pgx.Tx, orgID, jobID int64) ([]*fieldops.Note, error) {
	rows, err := tx.Query(ctx, `SELECT n.id, n.job_id, n.user_id, u.name, n.body, COALESCE(n.photo_id, 0), n.created_at
		FROM notes n JOIN users u ON u.id = n.user_id
		WHERE n.org_id = $1 AND n.job_id = $2
		ORDER BY n.created_at, n.id`, orgID, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*fieldops.Note
	for rows.Next() {
		n := &fieldops.Note{}
		if err := rows.Scan(&n.ID, &n.JobID, &n.UserID, &n.UserName, &n.Body, &n.PhotoID, &n.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
