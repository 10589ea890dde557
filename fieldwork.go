package fieldops

import (
	"context"
	"math"
	"time"
)

// Location evidence limits (PRODUCT.md §4, reliability checklist E).
const (
	// DefaultGeofenceRadiusM is how near the site a check-in must be when
	// the organisation has not chosen otherwise.
	DefaultGeofenceRadiusM = 250
	// MaxLocationAge is how old a location message may be before it is
	// flagged stale (measured from the message's own time to the server's).
	MaxLocationAge = 5 * time.Minute
	// PoorAccuracyM is the phone-reported accuracy radius above which a
	// fix is flagged as poor.
	PoorAccuracyM = 100.0
)

// LocationInput is a location as the engineer sent it, before it is
// judged: where, how accurate the phone said it was, when the message
// was sent, and how it was sent.
type LocationInput struct {
	Lat, Lng  float64
	AccuracyM *float64  // nil when the phone gave none
	MessageAt time.Time // the message's own date (zero: unknown)
	Forwarded bool      // forwarded from another chat, not sent by the engineer
	Venue     bool      // a venue (a place picked from a list), not a GPS fix
	Live      bool      // a live location or one of its edits
	// ReceivedAt is when fieldops received the message (zero: now). Age
	// is judged at arrival, so a backlog handled late is not "stale".
	ReceivedAt time.Time
}

// Validate checks the coordinates.
func (l LocationInput) Validate() error {
	// NaN compares false with everything, so it is ruled out by name.
	if math.IsNaN(l.Lat) || math.IsNaN(l.Lng) || l.Lat < -90 || l.Lat > 90 || l.Lng < -180 || l.Lng > 180 {
		return Invalid("location", "That location is not on the map; share your location again.")
	}
	if l.AccuracyM != nil && (math.IsNaN(*l.AccuracyM) || math.IsInf(*l.AccuracyM, 0) || *l.AccuracyM < 0) {
		return Invalid("accuracy", "A location's accuracy cannot be negative.")
	}
	return nil
}

// JudgeLocation turns a location into evidence against a site: the
// distance (nil when the site has no coordinates) and the flags that call
// for a second look. now is the server's time (the location's age is
// measured at l.ReceivedAt when that is earlier); radiusM the organisation's
// check-in radius (DefaultGeofenceRadiusM when 0).
func JudgeLocation(l LocationInput, site *LatLng, radiusM int, now time.Time) LocationEvidence {
	if radiusM <= 0 {
		radiusM = DefaultGeofenceRadiusM
	}
	lat, lng := l.Lat, l.Lng
	ev := LocationEvidence{Lat: &lat, Lng: &lng, Flags: []string{}}
	if l.AccuracyM != nil {
		a := *l.AccuracyM
		ev.AccuracyM = &a
	}
	if !l.MessageAt.IsZero() {
		t := l.MessageAt.UTC()
		ev.MessageAt = &t
	}
	if site != nil {
		d := DistanceM(LatLng{Lat: l.Lat, Lng: l.Lng}, *site)
		ev.DistanceM = &d
		if d > float64(radiusM) {
			ev.Flags = append(ev.Flags, LocationOffSite)
		}
	}
	if l.Forwarded {
		ev.Flags = append(ev.Flags, LocationForwarded)
	}
	// A live location's edits carry the original message's date, so age
	// is judged only for one-off locations.
	arrived := now
	if !l.ReceivedAt.IsZero() && l.ReceivedAt.Before(now) {
		arrived = l.ReceivedAt
	}
	if !l.Live && !l.MessageAt.IsZero() && arrived.Sub(l.MessageAt) > MaxLocationAge {
		ev.Flags = append(ev.Flags, LocationStale)
	}
	if l.AccuracyM != nil && *l.AccuracyM > PoorAccuracyM {
		ev.Flags = append(ev.Flags, LocationPoorAccuracy)
	}
	if l.Venue {
		ev.Flags = append(ev.Flags, LocationVenue)
	}
	if l.Live {
		ev.Flags = append(ev.Flags, LocationLive)
	}
	return ev
}

// NewPhoto is a picture received for a job. Data is the file itself; the
// store keeps it content-addressed (by SHA-256).
type NewPhoto struct {
	Data           []byte
	ContentType    string // image/jpeg, image/png, ...
	Caption        string // becomes a note on the job
	TelegramFileID string
	TakenAt        *time.Time // the message time
}

// MaxPhotoBytes is the largest photo accepted: the Bot API's download
// limit.
const MaxPhotoBytes = 20 << 20

// FieldWorkService is what an engineer does on site. Every method acts for
// the actor in the context, on a job of the actor's organisation; a job
// that is not theirs to work on (job.view with scope own: assigned) is
// "not found".
type FieldWorkService interface {
	// CheckIn opens the actor's own interval on the job (job.check_in).
	// The location is judged against the job's site with JudgeLocation and
	// kept with the entry, flags and all; flagged evidence is reported to
	// the members who receive alerts. Checking in twice, or on a job not
	// assigned to the actor, or on a cancelled or completed job, is
	// refused with a message saying what to do, and nothing changes.
	CheckIn(ctx context.Context, jobID int64, loc LocationInput) (*TimeEntry, error)
	// CheckOut closes the actor's open interval on the job
	// (job.check_in); without one it is refused and nothing changes.
	CheckOut(ctx context.Context, jobID int64, loc LocationInput) (*TimeEntry, error)
	// OpenEntries lists the actor's own open intervals (where they are
	// checked in), newest first.
	OpenEntries(ctx context.Context) ([]*TimeEntry, error)
	// AddPhoto stores a photo for the job (photo.upload): the file under
	// its SHA-256, a row with job, engineer, time, size and hash, and the
	// caption as a note. The same picture sent again for the same job is
	// the existing photo (created false).
	AddPhoto(ctx context.Context, jobID int64, p NewPhoto) (photo *Photo, created bool, err error)
	// AddNote records a line of text on the job (note.add).
	AddNote(ctx context.Context, jobID int64, body string) (*Note, error)
	// CompleteJob marks the job completed (job.complete); engineers still
	// checked in are refused until they check out.
	CompleteJob(ctx context.Context, jobID int64) (*Job, error)
}
