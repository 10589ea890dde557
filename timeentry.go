package fieldops

import (
	"context"
	"encoding/hex"
	"time"
)

// Location flags an entry may carry (time_entries.check_in_flags and
// check_out_flags): each is a reason to look twice at the evidence.
const (
	LocationOffSite      = "off_site"      // farther from the site than allowed
	LocationForwarded    = "forwarded"     // the location was forwarded, not sent
	LocationStale        = "stale"         // the location message was old
	LocationPoorAccuracy = "poor_accuracy" // the phone's accuracy was too coarse
	LocationVenue        = "venue"         // a venue (a typed place), not a GPS fix
	LocationLive         = "live"          // a live location (informational)
)

// LocationEvidence is what was sent with a check-in or a check-out. Any
// field may be missing (a manual entry has none); once the organisation's
// retention has passed, the coordinates are removed and Purged is set.
type LocationEvidence struct {
	Lat, Lng  *float64
	AccuracyM *float64
	DistanceM *float64 // from the job's site
	MessageAt *time.Time
	Flags     []string
	Purged    bool
}

// Warnings are the flags that call for a second look: all but live.
func (l LocationEvidence) Warnings() []string {
	var out []string
	for _, f := range l.Flags {
		if f != LocationLive {
			out = append(out, f)
		}
	}
	return out
}

// TimeEntry is one engineer's interval on a job: checked in, and checked
// out unless CheckOutAt is nil.
type TimeEntry struct {
	ID         int64
	JobID      int64
	UserID     int64
	UserName   string
	CheckInAt  time.Time
	CheckOutAt *time.Time
	In, Out    LocationEvidence
	Source     string     // telegram, web or manual
	EditedAt   *time.Time // set when someone corrected the times
	JobTitle   string     // filled by FieldWorkService.OpenEntries only
}

// Open reports whether the engineer is still checked in.
func (e *TimeEntry) Open() bool { return e.CheckOutAt == nil }

// Duration is the interval's length; an open entry counts up to now.
func (e *TimeEntry) Duration(now time.Time) time.Duration {
	end := now
	if e.CheckOutAt != nil {
		end = *e.CheckOutAt
	}
	if d := end.Sub(e.CheckInAt); d > 0 {
		return d
	}
	return 0
}

// Minutes is Duration in whole minutes.
func (e *TimeEntry) Minutes(now time.Time) int { return int(e.Duration(now) / time.Minute) }

// EngineerTime is one engineer's entries on a job and their sum.
type EngineerTime struct {
	UserID  int64
	Name    string
	Entries []*TimeEntry
	Minutes int
}

// JobWork is the time spent on a job: every entry, by engineer, and the
// sum of all (closed intervals, and open ones up to now), in whole
// minutes. Two engineers on site for an hour make two hours.
type JobWork struct {
	Entries     []*TimeEntry
	PerEngineer []*EngineerTime // by name
	Minutes     int
	At          time.Time // the time open entries were counted to
}

// SumJobWork groups entries (ordered by engineer, then check-in) and sums
// them at now.
func SumJobWork(entries []*TimeEntry, now time.Time) JobWork {
	w := JobWork{Entries: entries, At: now}
	var total time.Duration
	var cur *EngineerTime
	var curDur time.Duration
	for _, e := range entries {
		if cur == nil || cur.UserID != e.UserID {
			if cur != nil {
				cur.Minutes = int(curDur / time.Minute)
			}
			cur, curDur = &EngineerTime{UserID: e.UserID, Name: e.UserName}, 0
			w.PerEngineer = append(w.PerEngineer, cur)
		}
		cur.Entries = append(cur.Entries, e)
		d := e.Duration(now)
		curDur += d
		total += d
	}
	if cur != nil {
		cur.Minutes = int(curDur / time.Minute)
	}
	w.Minutes = int(total / time.Minute)
	return w
}

// Photo is a picture sent for a job. The file itself is in object
// storage; SHA256 is its hash, in hex, which proves it unchanged.
type Photo struct {
	ID        int64
	JobID     int64
	UserID    int64
	UserName  string
	SizeBytes int64
	SHA256    string
	TakenAt   *time.Time
	CreatedAt time.Time
	Caption   string // the note sent with it, if any
}

// HexSHA256 writes a hash as Photo.SHA256 holds it.
func HexSHA256(sum []byte) string { return hex.EncodeToString(sum) }

// Note is a line of text an engineer recorded for a job.
type Note struct {
	ID        int64
	JobID     int64
	UserID    int64
	UserName  string
	Body      string
	PhotoID   int64 // the photo it is the caption of; 0 for none
	CreatedAt time.Time
}

// JobEvidence is what was recorded on a job in the field.
type JobEvidence struct {
	JobID int64
	Time  JobWork
	// Photos is nil and CanPhotos false when the member may not see
	// photos of the job (photo.view).
	Photos    []*Photo
	CanPhotos bool
	Notes     []*Note
}

// JobEvidenceService reads a job's time entries, photos and notes.
type JobEvidenceService interface {
	// FindJobEvidence needs job.view on the job (scope own: an engineer
	// assigned to it); photos are included only with photo.view on it.
	// Open entries count up to now.
	FindJobEvidence(ctx context.Context, jobID int64) (*JobEvidence, error)
}
