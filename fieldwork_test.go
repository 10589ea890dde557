package fieldops_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// north returns the point d metres due north of p.
func north(p fieldops.LatLng, d float64) fieldops.LatLng {
	const earthRadiusM = 6371008.8
	return fieldops.LatLng{Lat: p.Lat + d/earthRadiusM*180/math.Pi, Lng: p.Lng}
}

func TestJudgeLocation(t *testing.T) {
	site := fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	acc := func(m float64) *float64 { return &m }
	at := func(p fieldops.LatLng) fieldops.LocationInput {
		return fieldops.LocationInput{Lat: p.Lat, Lng: p.Lng, AccuracyM: acc(10), MessageAt: now.Add(-10 * time.Second)}
	}
	with := func(l fieldops.LocationInput, f func(*fieldops.LocationInput)) fieldops.LocationInput {
		f(&l)
		return l
	}
	for _, tt := range []struct {
		name     string
		in       fieldops.LocationInput
		site     *fieldops.LatLng
		radius   int
		distance float64 // -1: no distance
		flags    []string
		warnings []string
	}{
		{"OnSite", at(site), &site, 250, 0, []string{}, nil},
		{"InsideRadius", at(north(site, 249)), &site, 250, 249, []string{}, nil},
		{"JustOutsideRadius", at(north(site, 251)), &site, 250, 251, []string{"off_site"}, []string{"off_site"}},
		{"OrganisationRadius", at(north(site, 251)), &site, 300, 251, []string{}, nil},
		{"DefaultRadiusWhenZero", at(north(site, 260)), &site, 0, 260, []string{"off_site"}, []string{"off_site"}},
		{"DefaultRadiusKeepsNear", at(north(site, 240)), &site, 0, 240, []string{}, nil},
		{"Forwarded", with(at(site), func(l *fieldops.LocationInput) { l.Forwarded = true }), &site, 250, 0,
			[]string{"forwarded"}, []string{"forwarded"}},
		{"StaleOverFiveMinutes", with(at(site), func(l *fieldops.LocationInput) { l.MessageAt = now.Add(-5*time.Minute - time.Second) }),
			&site, 250, 0, []string{"stale"}, []string{"stale"}},
		{"FiveMinutesNotStale", with(at(site), func(l *fieldops.LocationInput) { l.MessageAt = now.Add(-5 * time.Minute) }),
			&site, 250, 0, []string{}, nil},
		{"UnknownTimeNotStale", with(at(site), func(l *fieldops.LocationInput) { l.MessageAt = time.Time{} }),
			&site, 250, 0, []string{}, nil},
		{"LiveNotJudgedStale", with(at(site), func(l *fieldops.LocationInput) { l.Live, l.MessageAt = true, now.Add(-time.Hour) }),
			&site, 250, 0, []string{"live"}, nil},
		{"PoorAccuracy", with(at(site), func(l *fieldops.LocationInput) { l.AccuracyM = acc(100.5) }), &site, 250, 0,
			[]string{"poor_accuracy"}, []string{"poor_accuracy"}},
		{"AccuracyAtLimit", with(at(site), func(l *fieldops.LocationInput) { l.AccuracyM = acc(100) }), &site, 250, 0,
			[]string{}, nil},
		{"NoAccuracy", with(at(site), func(l *fieldops.LocationInput) { l.AccuracyM = nil }), &site, 250, 0, []string{}, nil},
		{"Venue", with(at(site), func(l *fieldops.LocationInput) { l.Venue = true }), &site, 250, 0,
			[]string{"venue"}, []string{"venue"}},
		{"SiteWithoutCoordinates", at(north(site, 5000)), nil, 250, -1, []string{}, nil},
		{"Everything", with(at(north(site, 1000)), func(l *fieldops.LocationInput) {
			l.Forwarded, l.Venue, l.AccuracyM, l.MessageAt = true, true, acc(500), now.Add(-time.Hour)
		}), &site, 250, 1000, []string{"off_site", "forwarded", "stale", "poor_accuracy", "venue"},
			[]string{"off_site", "forwarded", "stale", "poor_accuracy", "venue"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := fieldops.JudgeLocation(tt.in, tt.site, tt.radius, now)
			switch {
			case tt.distance < 0 && ev.DistanceM != nil:
				t.Errorf("distance = %v, want none", *ev.DistanceM)
			case tt.distance >= 0 && (ev.DistanceM == nil || math.Abs(*ev.DistanceM-tt.distance) > 0.01):
				t.Errorf("distance = %v, want %v", ev.DistanceM, tt.distance)
			}
			if ev.Flags == nil || !slices.Equal(ev.Flags, tt.flags) {
				t.Errorf("flags = %#v, want %#v", ev.Flags, tt.flags)
			}
			if !slices.Equal(ev.Warnings(), tt.warnings) {
				t.Errorf("warnings = %v, want %v", ev.Warnings(), tt.warnings)
			}
			if ev.Lat == nil || *ev.Lat != tt.in.Lat || ev.Lng == nil || *ev.Lng != tt.in.Lng {
				t.Errorf("point = %v,%v, want %v,%v", ev.Lat, ev.Lng, tt.in.Lat, tt.in.Lng)
			}
			if (ev.AccuracyM == nil) != (tt.in.AccuracyM == nil) || (ev.AccuracyM != nil && *ev.AccuracyM != *tt.in.AccuracyM) {
				t.Errorf("accuracy = %v, want %v", ev.AccuracyM, tt.in.AccuracyM)
			}
			if (ev.MessageAt == nil) != tt.in.MessageAt.IsZero() || (ev.MessageAt != nil && !ev.MessageAt.Equal(tt.in.MessageAt)) {
				t.Errorf("message at = %v, want %v", ev.MessageAt, tt.in.MessageAt)
			}
		})
	}
	t.Run("CopiesInput", func(t *testing.T) {
		in := at(site)
		ev := fieldops.JudgeLocation(in, &site, 250, now)
		*in.AccuracyM = 999
		if *ev.AccuracyM != 10 {
			t.Errorf("evidence shares the input's accuracy: %v", *ev.AccuracyM)
		}
	})
}

func TestLocationInputValidate(t *testing.T) {
	acc := func(m float64) *float64 { return &m }
	for _, tt := range []struct {
		name  string
		in    fieldops.LocationInput
		field string // "" for valid
	}{
		{"OK", fieldops.LocationInput{Lat: 53.4794, Lng: -2.2453, AccuracyM: acc(5)}, ""},
		{"Corners", fieldops.LocationInput{Lat: -90, Lng: 180}, ""},
		{"ZeroAccuracy", fieldops.LocationInput{Lat: 1, Lng: 1, AccuracyM: acc(0)}, ""},
		{"LatTooHigh", fieldops.LocationInput{Lat: 90.0001, Lng: 0}, "location"},
		{"LatTooLow", fieldops.LocationInput{Lat: -91, Lng: 0}, "location"},
		{"LngTooHigh", fieldops.LocationInput{Lat: 0, Lng: 180.5}, "location"},
		{"LngTooLow", fieldops.LocationInput{Lat: 0, Lng: -181}, "location"},
		{"LatNaN", fieldops.LocationInput{Lat: math.NaN(), Lng: 0}, "location"},
		{"LngNaN", fieldops.LocationInput{Lat: 0, Lng: math.NaN()}, "location"},
		{"NegativeAccuracy", fieldops.LocationInput{Lat: 0, Lng: 0, AccuracyM: acc(-1)}, "accuracy"},
		{"NaNAccuracy", fieldops.LocationInput{Lat: 0, Lng: 0, AccuracyM: acc(math.NaN())}, "accuracy"},
		{"InfiniteAccuracy", fieldops.LocationInput{Lat: 0, Lng: 0, AccuracyM: acc(math.Inf(1))}, "accuracy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if fieldops.ErrorCode(err) != fieldops.EINVALID || fieldops.ErrorField(err) != tt.field {
				t.Fatalf("Validate = %v, want EINVALID on %s", err, tt.field)
			}
			if fieldops.ErrorMessage(err) == "" {
				t.Error("no message for the user")
			}
		})
	}
}

// TestJudgeLocationAgeAtArrival: a location's age is measured when it
// arrived, not when a backlog got round to it.
func TestJudgeLocationAgeAtArrival(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	site := fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}
	for _, tt := range []struct {
		name     string
		sent     time.Time
		received time.Time
		stale    bool
	}{
		{"HandledLateNotStale", now.Add(-20 * time.Minute), now.Add(-19 * time.Minute), false},
		{"ArrivedLateStale", now.Add(-20 * time.Minute), now.Add(-10 * time.Minute), true},
		{"UnknownArrivalUsesNow", now.Add(-20 * time.Minute), time.Time{}, true},
		{"ArrivalAfterNowUsesNow", now.Add(-time.Minute), now.Add(time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := fieldops.JudgeLocation(fieldops.LocationInput{Lat: site.Lat, Lng: site.Lng, MessageAt: tt.sent, ReceivedAt: tt.received}, &site, 250, now)
			if got := slices.Contains(ev.Flags, fieldops.LocationStale); got != tt.stale {
				t.Errorf("stale = %v, want %v (flags %v)", got, tt.stale, ev.Flags)
			}
		})
	}
}
