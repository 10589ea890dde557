package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// FieldWorkService implements fieldops.FieldWorkService: what an engineer
// does on site (check in and out, photos, notes, completing the job).
type FieldWorkService struct {
	db     *DB
	jobs   *JobService
	photos *PhotoFiles
}

var _ fieldops.FieldWorkService = (*FieldWorkService)(nil)

// NewFieldWorkService returns the field work service; photo files are
// kept in photos.
func NewFieldWorkService(db *DB, photos *PhotoFiles) *FieldWorkService {
	return &FieldWorkService{db: db, jobs: NewJobService(db), photos: photos}
}

// Limits of what an engineer types.
const (
	maxNoteChars    = 2000
	maxCaptionChars = 1000
)

const (
	timeEntryColumns = `t.id, t.job_id, t.user_id, u.name, t.check_in_at, t.check_out_at,
		t.check_in_lat, t.check_in_lng, t.check_in_accuracy_m, t.check_in_distance_m, t.check_in_message_at, t.check_in_flags,
		t.check_out_lat, t.check_out_lng, t.check_out_accuracy_m, t.check_out_distance_m, t.check_out_message_at, t.check_out_flags,
		t.source, t.edited_at, t.location_purged_at IS NOT NULL`
	timeEntrySelect = `SELECT ` + timeEntryColumns + `
	FROM time_entries t JOIN users u ON u.id = t.user_id `
)

// scanFieldEntry reads the columns of timeEntryColumns, then any extra.
func scanFieldEntry(row pgx.Row, extra ...any) (*fieldops.TimeEntry, error) {
	e := &fieldops.TimeEntry{}
	var purged bool
	if err := row.Scan(append([]any{&e.ID, &e.JobID, &e.UserID, &e.UserName, &e.CheckInAt, &e.CheckOutAt,
		&e.In.Lat, &e.In.Lng, &e.In.AccuracyM, &e.In.DistanceM, &e.In.MessageAt, &e.In.Flags,
		&e.Out.Lat, &e.Out.Lng, &e.Out.AccuracyM, &e.Out.DistanceM, &e.Out.MessageAt, &e.Out.Flags,
		&e.Source, &e.EditedAt, &purged}, extra...)...); err != nil {
		return nil, err
	}
	e.In.Purged = purged
	e.Out.Purged = purged && e.CheckOutAt != nil
	return e, nil
}

// findFieldEntry reads one time entry of the organisation.
func findFieldEntry(ctx context.Context, tx pgx.Tx, orgID, id int64) (*fieldops.TimeEntry, error) {
	e, err := scanFieldEntry(tx.QueryRow(ctx, timeEntrySelect+`WHERE t.org_id = $1 AND t.id = $2`, orgID, id))
	if err != nil {
		return nil, fmt.Errorf("time entry %d: %w", id, err)
	}
	return e, nil
}

// openEntryOf returns the member's open entry on the job, locked, or nil.
func openEntryOf(ctx context.Context, tx pgx.Tx, orgID, jobID, userID int64) (*fieldops.TimeEntry, error) {
	e, err := scanFieldEntry(tx.QueryRow(ctx, timeEntrySelect+`WHERE t.org_id = $1 AND t.job_id = $2 AND t.user_id = $3
		AND t.check_out_at IS NULL FOR UPDATE OF t`, orgID, jobID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open time entry: %w", err)
	}
	return e, nil
}

// checkInJob loads, locked, a job the actor may check in or out of: they
// hold job.check_in, and the job is in their organisation and visible to
// them (job.view, or job.check_in on it); otherwise it is not found.
// Whether they are on the job is for the caller to judge.
func (s *FieldWorkService) checkInJob(ctx context.Context, tx pgx.Tx, acc *access, jobID int64) (*fieldops.Job, error) {
	if err := acc.requireAny(fieldops.FlagJobCheckIn); err != nil {
		return nil, err
	}
	j, err := findJob(ctx, tx, acc.OrgID, jobID, true)
	if err != nil {
		return nil, err
	}
	r := j.Resource()
	if !acc.Can(fieldops.FlagJobView, &r) && !acc.Can(fieldops.FlagJobCheckIn, &r) {
		return nil, notFound("Job")
	}
	return j, nil
}

func assigned(j *fieldops.Job, userID int64) bool {
	for _, e := range j.Engineers {
		if e.UserID == userID {
			return true
		}
	}
	return false
}

// siteOf is the job's site as a point.
func siteOf(j *fieldops.Job) *fieldops.LatLng {
	return &fieldops.LatLng{Lat: j.SiteLatitude, Lng: j.SiteLongitude}
}

// geofenceRadius is the organisation's check-in radius in metres.
func geofenceRadius(ctx context.Context, tx pgx.Tx, orgID int64) (int, error) {
	var r int
	if err := tx.QueryRow(ctx, `SELECT geofence_radius_m FROM organisations WHERE id = $1`, orgID).Scan(&r); err != nil {
		return 0, fmt.Errorf("geofence radius: %w", err)
	}
	return r, nil
}

// entrySource is time_entries.source for the actor's channel.
func entrySource(ch fieldops.Channel) string {
	if ch == fieldops.ChannelTelegram {
		return "telegram"
	}
	return "web"
}

// alreadyIn is the refusal of a second check-in; open may be nil when
// the entry that won a race has gone again.
func alreadyIn(ctx context.Context, tx pgx.Tx, orgID int64, open *fieldops.TimeEntry, now time.Time) error {
	if open == nil {
		return fieldops.Errorf(fieldops.ECONFLICT, "You are already checked in on this job; check out first.")
	}
	loc, err := orgLocation(ctx, tx, orgID)
	if err != nil {
		return err
	}
	in, n := open.CheckInAt.In(loc), now.In(loc)
	since := in.Format("15:04")
	if in.YearDay() != n.YearDay() || in.Year() != n.Year() {
		since += in.Format(" on Mon 2 Jan")
	}
	return fieldops.Errorf(fieldops.ECONFLICT, "You are already checked in on this job since %s; check out first.", since)
}

// evidenceChanges is the audit record of location evidence.
func evidenceChanges(ev fieldops.LocationEvidence) map[string]any {
	return map[string]any{"distance_m": ev.DistanceM, "accuracy_m": ev.AccuracyM, "flags": ev.Flags}
}

// alertLocation tells the members who receive alerts for the job, other
// than the engineer, that a check-in or check-out carried evidence that
// calls for a second look. Clean evidence tells nobody.
func alertLocation(ctx context.Context, tx pgx.Tx, acc *access, j *fieldops.Job, entryID int64, event string, ev fieldops.LocationEvidence) error {
	warnings := ev.Warnings()
	if len(warnings) == 0 {
		return nil
	}
	ids, err := holders(ctx, tx, acc, fieldops.FlagAlertsReceive, j)
	if err != nil {
		return fmt.Errorf("location alert recipients: %w", err)
	}
	suffix := "in"
	if event == "check_out" {
		suffix = "out"
	}
	payload := map[string]any{"job_id": j.ID, "title": j.Title, "site": j.SiteAddress, "engineer": acc.name, "event": event,
		"flags": warnings, "distance_m": ev.DistanceM, "accuracy_m": ev.AccuracyM}
	return notifyMembers(ctx, tx, acc.OrgID, ids, "alert.location_flagged", payload, fmt.Sprintf("loc:%d:%s", entryID, suffix))
}

// CheckIn opens the actor's interval on a job they are on (job.check_in)
// with the location judged against the job's site. A scheduled job
// becomes in progress. Flagged evidence alerts the members who receive
// alerts.
func (s *FieldWorkService) CheckIn(ctx context.Context, jobID int64, loc fieldops.LocationInput) (*fieldops.TimeEntry, error) {
	if err := loc.Validate(); err != nil {
		return nil, err
	}
	var te *fieldops.TimeEntry
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.checkInJob(ctx, tx, acc, jobID)
		if err != nil {
			return err
		}
		if !assigned(j, acc.UserID) {
			return fieldops.Errorf(fieldops.EFORBIDDEN, "Only the job's engineers can check in; assign yourself first.")
		}
		r := j.Resource()
		if err := acc.check(fieldops.FlagJobCheckIn, &r, "Job"); err != nil {
			return err
		}
		switch j.Status {
		case "cancelled":
			return fieldops.Errorf(fieldops.ECONFLICT, "This job is cancelled, so there is nothing to check in to; ask the office what to do instead.")
		case "completed":
			return fieldops.Errorf(fieldops.ECONFLICT, "This job is completed already; ask the office for a follow-up job if there is more work to do.")
		}
		now := s.db.now()
		open, err := openEntryOf(ctx, tx, acc.OrgID, j.ID, acc.UserID)
		if err != nil {
			return err
		}
		if open != nil {
			return alreadyIn(ctx, tx, acc.OrgID, open, now)
		}
		radius, err := geofenceRadius(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		ev := fieldops.JudgeLocation(loc, siteOf(j), radius, now)
		// The partial unique index time_entries_one_open backs the check
		// above against a concurrent check-in: the loser inserts nothing.
		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO time_entries (org_id, job_id, user_id, check_in_at,
				check_in_lat, check_in_lng, check_in_accuracy_m, check_in_distance_m, check_in_message_at, check_in_flags, source, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $4)
			ON CONFLICT (job_id, user_id) WHERE check_out_at IS NULL DO NOTHING
			RETURNING id`,
			acc.OrgID, j.ID, acc.UserID, now, ev.Lat, ev.Lng, ev.AccuracyM, ev.DistanceM, ev.MessageAt, ev.Flags,
			entrySource(acc.actor.Channel)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			open, err := openEntryOf(ctx, tx, acc.OrgID, j.ID, acc.UserID)
			if err != nil {
				return err
			}
			return alreadyIn(ctx, tx, acc.OrgID, open, now)
		}
		if err != nil {
			return fmt.Errorf("check in: %w", err)
		}
		changes := evidenceChanges(ev)
		changes["entry_id"] = id
		if j.Status == "scheduled" {
			if _, err := tx.Exec(ctx, `UPDATE jobs SET status = 'in_progress', updated_at = $3 WHERE org_id = $1 AND id = $2`,
				acc.OrgID, j.ID, now); err != nil {
				return fmt.Errorf("start job: %w", err)
			}
			changes["status"] = change{From: j.Status, To: "in_progress"}
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.check_in", targetType: "job", targetID: j.ID, changes: changes}); err != nil {
			return err
		}
		if err := alertLocation(ctx, tx, acc, j, id, "check_in", ev); err != nil {
			return err
		}
		te, err = findFieldEntry(ctx, tx, acc.OrgID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return te, nil
}

// CheckOut closes the actor's open interval on the job (job.check_in),
// whatever has become of the job or their assignment since they checked
// in. Without an open interval it is refused and nothing changes.
func (s *FieldWorkService) CheckOut(ctx context.Context, jobID int64, loc fieldops.LocationInput) (*fieldops.TimeEntry, error) {
	if err := loc.Validate(); err != nil {
		return nil, err
	}
	var te *fieldops.TimeEntry
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagJobCheckIn); err != nil {
			return err
		}
		j, err := findJob(ctx, tx, acc.OrgID, jobID, true)
		if err != nil {
			return err
		}
		open, err := openEntryOf(ctx, tx, acc.OrgID, j.ID, acc.UserID)
		if err != nil {
			return err
		}
		if open == nil {
			r := j.Resource()
			if !acc.Can(fieldops.FlagJobView, &r) && !acc.Can(fieldops.FlagJobCheckIn, &r) {
				return notFound("Job")
			}
			return fieldops.Errorf(fieldops.ECONFLICT, "You are not checked in on this job; check in first.")
		}
		radius, err := geofenceRadius(ctx, tx, acc.OrgID)
		if err != nil {
			return err
		}
		now := s.db.now()
		out := now
		if !out.After(open.CheckInAt) {
			out = open.CheckInAt.Add(time.Microsecond) // the table requires out after in
		}
		ev := fieldops.JudgeLocation(loc, siteOf(j), radius, now)
		tag, err := tx.Exec(ctx, `UPDATE time_entries SET check_out_at = $3,
				check_out_lat = $4, check_out_lng = $5, check_out_accuracy_m = $6, check_out_distance_m = $7,
				check_out_message_at = $8, check_out_flags = $9
			WHERE org_id = $1 AND id = $2 AND check_out_at IS NULL`,
			acc.OrgID, open.ID, out, ev.Lat, ev.Lng, ev.AccuracyM, ev.DistanceM, ev.MessageAt, ev.Flags)
		if err != nil {
			return fmt.Errorf("check out: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("check out: entry %d was not open", open.ID)
		}
		changes := evidenceChanges(ev)
		changes["entry_id"] = open.ID
		changes["minutes"] = open.Minutes(out)
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.check_out", targetType: "job", targetID: j.ID, changes: changes}); err != nil {
			return err
		}
		if err := alertLocation(ctx, tx, acc, j, open.ID, "check_out", ev); err != nil {
			return err
		}
		te, err = findFieldEntry(ctx, tx, acc.OrgID, open.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return te, nil
}

// OpenEntries lists where the actor is checked in, newest first, with
// each job's title. Any active member may ask.
func (s *FieldWorkService) OpenEntries(ctx context.Context) ([]*fieldops.TimeEntry, error) {
	var out []*fieldops.TimeEntry
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+timeEntryColumns+`, j.title
			FROM time_entries t JOIN users u ON u.id = t.user_id JOIN jobs j ON j.org_id = t.org_id AND j.id = t.job_id
			WHERE t.org_id = $1 AND t.user_id = $2 AND t.check_out_at IS NULL
			ORDER BY t.check_in_at DESC, t.id DESC`, acc.OrgID, acc.UserID)
		if err != nil {
			return fmt.Errorf("open entries: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fieldops.TimeEntry, error) {
			var title string
			e, err := scanFieldEntry(row, &title)
			if err == nil {
				e.JobTitle = title
			}
			return e, err
		})
		if err != nil {
			return fmt.Errorf("open entries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// photoContentType is the photo's media type, given or sniffed; anything
// but an image is refused.
func photoContentType(p fieldops.NewPhoto) (string, error) {
	// The type is read from the bytes, never taken from the sender: a
	// declared image/svg+xml (a script carrier) or a renamed file is not a
	// photo.
	mt := sniffImage(p.Data)
	if mt == "" {
		return "", fieldops.Invalid("photo", "That file is not a photo we can keep: send a JPEG, PNG, WebP or HEIC picture.")
	}
	return mt, nil
}

// sniffImage returns the type of a JPEG, PNG, GIF, WebP or HEIC/HEIF
// image from its first bytes, or "" for anything else.
func sniffImage(b []byte) string {
	switch ct := http.DetectContentType(b); ct {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return ct
	}
	// HEIC/HEIF (iPhone photos sent as files): an ISO BMFF "ftyp" box
	// with a HEIF brand. http.DetectContentType does not know it.
	if len(b) >= 12 && string(b[4:8]) == "ftyp" {
		switch string(b[8:12]) {
		case "heic", "heix", "heim", "heis", "hevc", "hevx":
			return "image/heic"
		case "mif1", "msf1":
			return "image/heif"
		}
	}
	return ""
}

// checkPhoto validates a photo and returns its content type.
func checkPhoto(p *fieldops.NewPhoto) (string, error) {
	if len(p.Data) == 0 {
		return "", fieldops.Invalid("photo", "The photo arrived empty; send it again.")
	}
	if len(p.Data) > fieldops.MaxPhotoBytes {
		return "", fieldops.Invalid("photo", "That photo is larger than %d MB; send a smaller one (as a photo rather than a file).",
			fieldops.MaxPhotoBytes>>20)
	}
	ct, err := photoContentType(*p)
	if err != nil {
		return "", err
	}
	p.Caption = strings.TrimSpace(p.Caption)
	if n := utf8.RuneCountInString(p.Caption); n > maxCaptionChars {
		return "", fieldops.Invalid("caption", "A caption can be up to %d characters (this one has %d); shorten it, or send the rest as a note.",
			maxCaptionChars, n)
	}
	if len(p.TelegramFileID) > 200 {
		p.TelegramFileID = "" // not ours to keep if it does not fit; the file itself is stored
	}
	return ct, nil
}

// findFieldPhoto reads one photo with its caption.
func findFieldPhoto(ctx context.Context, tx pgx.Tx, orgID, id int64) (*fieldops.Photo, error) {
	p := &fieldops.Photo{}
	var sum []byte
	err := tx.QueryRow(ctx, `SELECT p.id, p.job_id, p.user_id, u.name, p.size_bytes, p.sha256, p.taken_at, p.created_at,
			COALESCE((SELECT n.body FROM notes n WHERE n.org_id = p.org_id AND n.photo_id = p.id ORDER BY n.id LIMIT 1), '')
		FROM photos p JOIN users u ON u.id = p.user_id
		WHERE p.org_id = $1 AND p.id = $2`, orgID, id).
		Scan(&p.ID, &p.JobID, &p.UserID, &p.UserName, &p.SizeBytes, &sum, &p.TakenAt, &p.CreatedAt, &p.Caption)
	if err != nil {
		return nil, fmt.Errorf("photo %d: %w", id, err)
	}
	p.SHA256 = fieldops.HexSHA256(sum)
	return p, nil
}

// AddPhoto stores a photo for the job (photo.upload on it). The file is
// written before the transaction: it is content-addressed, so a retry or
// a rolled-back transaction leaves at most a file that a later upload of
// the same picture reuses. The same picture again for the same job is the
// existing photo (restored if it was deleted), with created false; a new
// caption on it is still kept as a note.
func (s *FieldWorkService) AddPhoto(ctx context.Context, jobID int64, p fieldops.NewPhoto) (*fieldops.Photo, bool, error) {
	ct, err := checkPhoto(&p)
	if err != nil {
		return nil, false, err
	}
	if s.photos == nil {
		return nil, false, fieldops.Internal(errors.New("no photo storage configured"), "add photo")
	}
	// Refuse before the file is written: a photo the actor may not add
	// leaves nothing on disk. The check is repeated in the writing
	// transaction below.
	if err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		_, err = s.jobs.jobFor(ctx, tx, acc, fieldops.FlagPhotoUpload, jobID, false)
		return err
	}); err != nil {
		return nil, false, err
	}
	sum, key, err := s.photos.Put(p.Data)
	if err != nil {
		return nil, false, fieldops.Internal(err, "store photo file")
	}
	var (
		photo   *fieldops.Photo
		created bool
	)
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagPhotoUpload, jobID, false)
		if err != nil {
			return err
		}
		now := s.db.now()
		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key,
				telegram_file_id, taken_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), $9, $10)
			ON CONFLICT ON CONSTRAINT photos_org_job_sha256_key DO NOTHING
			RETURNING id`,
			acc.OrgID, j.ID, acc.UserID, sum[:], len(p.Data), ct, key, p.TelegramFileID, p.TakenAt, now).Scan(&id)
		created = err == nil
		restored := false
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			var deleted bool
			if err := tx.QueryRow(ctx, `SELECT id, deleted_at IS NOT NULL FROM photos WHERE org_id = $1 AND job_id = $2 AND sha256 = $3
				FOR UPDATE`, acc.OrgID, j.ID, sum[:]).Scan(&id, &deleted); err != nil {
				return fmt.Errorf("existing photo: %w", err)
			}
			if deleted {
				if _, err := tx.Exec(ctx, `UPDATE photos SET deleted_at = NULL, deleted_by = NULL WHERE org_id = $1 AND id = $2`,
					acc.OrgID, id); err != nil {
					return fmt.Errorf("restore photo: %w", err)
				}
				restored = true
			}
		case err != nil:
			return fmt.Errorf("add photo: %w", err)
		}
		captioned := false
		if p.Caption != "" {
			// The same caption sent again with the same picture (a retry)
			// is not a second note.
			tag, err := tx.Exec(ctx, `INSERT INTO notes (org_id, job_id, user_id, body, photo_id, created_at)
				SELECT $1, $2, $3, $4, $5, $6
				WHERE NOT EXISTS (SELECT 1 FROM notes WHERE org_id = $1 AND photo_id = $5 AND body = $4)`,
				acc.OrgID, j.ID, acc.UserID, p.Caption, id, now)
			if err != nil {
				return fmt.Errorf("photo caption: %w", err)
			}
			captioned = tag.RowsAffected() == 1
		}
		if created || restored || captioned {
			changes := map[string]any{"photo_id": id, "job_id": j.ID, "sha256": fieldops.HexSHA256(sum[:]), "size_bytes": len(p.Data)}
			if restored {
				changes["restored"] = true
			}
			if captioned {
				changes["caption"] = p.Caption
			}
			if err := s.db.audit(ctx, tx, acc, entry{action: "photo.upload", targetType: "photo", targetID: id, changes: changes}); err != nil {
				return err
			}
		}
		photo, err = findFieldPhoto(ctx, tx, acc.OrgID, id)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return photo, created, nil
}

// AddNote records a line of text on the job (note.add on it).
func (s *FieldWorkService) AddNote(ctx context.Context, jobID int64, body string) (*fieldops.Note, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return nil, fieldops.Invalid("body", "The note is empty; write what you want to record.")
	}
	if n := utf8.RuneCountInString(body); n > maxNoteChars {
		return nil, fieldops.Invalid("body", "A note can be up to %d characters (this one has %d); split it into two notes.", maxNoteChars, n)
	}
	var note *fieldops.Note
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		j, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagNoteAdd, jobID, false)
		if err != nil {
			return err
		}
		n := &fieldops.Note{JobID: j.ID, UserID: acc.UserID, UserName: acc.name, Body: body, CreatedAt: s.db.now()}
		if err := tx.QueryRow(ctx, `INSERT INTO notes (org_id, job_id, user_id, body, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			acc.OrgID, j.ID, acc.UserID, body, n.CreatedAt).Scan(&n.ID); err != nil {
			return fmt.Errorf("add note: %w", err)
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "note.add", targetType: "note", targetID: n.ID,
			changes: map[string]any{"job_id": j.ID, "body": body}}); err != nil {
			return err
		}
		note = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return note, nil
}

// CompleteJob marks the job completed (job.complete on it). A cancelled
// or completed job, or one that someone is still checked in on, is
// refused with what to do.
func (s *FieldWorkService) CompleteJob(ctx context.Context, jobID int64) (*fieldops.Job, error) {
	var j *fieldops.Job
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		old, err := s.jobs.jobFor(ctx, tx, acc, fieldops.FlagJobComplete, jobID, true)
		if err != nil {
			return err
		}
		switch old.Status {
		case "cancelled":
			return fieldops.Errorf(fieldops.ECONFLICT, "This job is cancelled, so it cannot be completed; create a new job for any work that was done.")
		case "completed":
			return s.completedAlready(ctx, tx, acc.OrgID, old.ID)
		}
		if err := stillCheckedIn(ctx, tx, acc, old.ID); err != nil {
			return err
		}
		now := s.db.now()
		if _, err := tx.Exec(ctx, `UPDATE jobs SET status = 'completed', completed_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2`,
			acc.OrgID, old.ID, now); err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "job.complete", targetType: "job", targetID: old.ID,
			changes: map[string]any{"status": change{From: old.Status, To: "completed"}}}); err != nil {
			return err
		}
		j, err = findJob(ctx, tx, acc.OrgID, old.ID, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// completedAlready is the refusal to complete a job twice.
func (s *FieldWorkService) completedAlready(ctx context.Context, tx pgx.Tx, orgID, jobID int64) error {
	var at *time.Time
	if err := tx.QueryRow(ctx, `SELECT completed_at FROM jobs WHERE org_id = $1 AND id = $2`, orgID, jobID).Scan(&at); err != nil {
		return fmt.Errorf("completed at: %w", err)
	}
	if at == nil {
		return fieldops.Errorf(fieldops.ECONFLICT, "This job is completed already; there is nothing more to do.")
	}
	loc, err := orgLocation(ctx, tx, orgID)
	if err != nil {
		return err
	}
	return fieldops.Errorf(fieldops.ECONFLICT, "This job was completed already on %s; there is nothing more to do.", at.In(loc).Format("2 Jan 2006"))
}

// stillCheckedIn refuses while anyone is checked in on the job.
func stillCheckedIn(ctx context.Context, tx pgx.Tx, acc *access, jobID int64) error {
	rows, err := tx.Query(ctx, `SELECT t.user_id, u.name FROM time_entries t JOIN users u ON u.id = t.user_id
		WHERE t.org_id = $1 AND t.job_id = $2 AND t.check_out_at IS NULL ORDER BY u.name, t.user_id`, acc.OrgID, jobID)
	if err != nil {
		return fmt.Errorf("checked in: %w", err)
	}
	defer rows.Close()
	var (
		names []string
		me    bool
	)
	for rows.Next() {
		var (
			uid  int64
			name string
		)
		if err := rows.Scan(&uid, &name); err != nil {
			return fmt.Errorf("checked in: %w", err)
		}
		if uid == acc.UserID {
			me = true
			continue
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checked in: %w", err)
	}
	switch {
	case me && len(names) == 0:
		return fieldops.Errorf(fieldops.ECONFLICT, "You are still checked in on this job; check out first.")
	case me:
		return fieldops.Errorf(fieldops.ECONFLICT, "You and %s are still checked in; each of you must check out first.", joinNames(names))
	case len(names) == 1:
		return fieldops.Errorf(fieldops.ECONFLICT, "%s is still checked in; they must check out first.", names[0])
	case len(names) > 1:
		return fieldops.Errorf(fieldops.ECONFLICT, "%s are still checked in; they must check out first.", joinNames(names))
	}
	return nil
}

// joinNames writes "A", "A and B" or "A, B and C".
func joinNames(ns []string) string {
	if len(ns) <= 1 {
		return strings.Join(ns, "")
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " and " + ns[len(ns)-1]
}
