package fieldops

import (
	"context"
	"math"
	"time"
)

// Capacity levels of a day or a week, as shown on the capacity board.
const (
	CapacityGreen = "green" // below the organisation's amber threshold
	CapacityAmber = "amber" // from amber up to and including red
	CapacityRed   = "red"   // above red, or booked on a day without working time
	CapacityOff   = "off"   // no working time and nothing booked
)

// CapacityDay is one engineer's booked time against their working time on
// one local day of the organisation.
type CapacityDay struct {
	Date           time.Time // local midnight in the organisation's zone
	BookedMinutes  int
	WorkingMinutes int
	Percent        int    // booked against working, rounded; 0 when there is no working time
	Level          string // CapacityGreen, CapacityAmber, CapacityRed or CapacityOff
}

// EngineerWeek is one engineer's row on the capacity board.
type EngineerWeek struct {
	UserID         int64
	Name           string
	Colour         string
	Days           [7]CapacityDay // Monday first
	BookedMinutes  int            // the week's total
	WorkingMinutes int            // the week's total
}

// Level returns the week's total as a percentage and level.
func (e *EngineerWeek) Level(amber, red int) (percent int, level string) {
	return CapacityLevel(e.BookedMinutes, e.WorkingMinutes, amber, red)
}

// CapacityWeek is the capacity board of one week: every member who can
// be put on a job (job.check_in) and has working time or bookings in it,
// by name.
type CapacityWeek struct {
	Start     time.Time // Monday 00:00 in the organisation's zone
	Engineers []EngineerWeek
	AmberPct  int
	RedPct    int
}

// LatLng is a point on the earth in degrees (WGS84), as a site stores it.
type LatLng struct {
	Lat, Lng float64
}

// Validate checks that the point is on the earth.
func (p LatLng) Validate() error {
	if math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180 {
		return Invalid("near", "A location is latitude,longitude in degrees, such as 53.4794,-2.2453.")
	}
	return nil
}

// DistanceM returns the great-circle (haversine) distance between two
// points in metres, on a sphere of the earth's mean radius.
func DistanceM(a, b LatLng) float64 {
	const earthRadiusM = 6371008.8
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat, dLng := rad(b.Lat-a.Lat), rad(b.Lng-a.Lng)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// FreeEngineer is someone who could take an emergency call now.
type FreeEngineer struct {
	UserID int64
	Name   string
	// DistanceM is from the site of their last job today that has
	// already ended to the emergency; nil when no location was asked for
	// or they have not finished a job today.
	DistanceM           *float64
	BookedTodayMinutes  int
	WorkingTodayMinutes int
	Level               string // today's level: green, amber or off (red is never free)
}

// CapacityService answers "who has room" (capacity.view).
type CapacityService interface {
	// FindCapacityWeek returns the board of the week (Monday to Sunday in
	// the organisation's zone) that contains weekOf.
	FindCapacityWeek(ctx context.Context, weekOf time.Time) (*CapacityWeek, error)
	// FindFreeNow lists the engineers who are not on a job now and not
	// red today, nearest to near first when it is given.
	FindFreeNow(ctx context.Context, near *LatLng) ([]*FreeEngineer, error)
}

// CapacityLevel rates booked against working minutes with the
// organisation's thresholds: green below amber per cent, amber from amber
// up to and including red, red above red. A day without working minutes
// is off when nothing is booked and red when anything is; its percent is 0.
// The percent is rounded half up.
func CapacityLevel(booked, working, amber, red int) (percent int, level string) {
	if working <= 0 {
		if booked > 0 {
			return 0, CapacityRed
		}
		return 0, CapacityOff
	}
	if booked < 0 {
		booked = 0
	}
	percent = (booked*100 + working/2) / working
	switch {
	case percent < amber:
		return percent, CapacityGreen
	case percent <= red:
		return percent, CapacityAmber
	}
	return percent, CapacityRed
}

// WeekStart returns Monday 00:00 of the week containing t, in loc.
func WeekStart(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}
