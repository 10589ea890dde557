package fieldops_test

import (
	"math"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

func TestCapacityLevel(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		booked, working, am, rd int
		percent                 int
		level                   string
	}{
		{"Empty", 0, 480, 70, 90, 0, "green"},
		{"RoundsUpToAmber", 335, 480, 70, 90, 70, "amber"}, // 69.79 % rounds to 70
		{"BelowAmber", 330, 480, 70, 90, 69, "green"},      // 68.75 % rounds to 69
		{"AtAmber", 336, 480, 70, 90, 70, "amber"},
		{"AtRed", 432, 480, 70, 90, 90, "amber"},
		{"JustAboveRed", 437, 480, 70, 90, 91, "red"},
		{"Full", 480, 480, 70, 90, 100, "red"},
		{"Overbooked", 960, 480, 70, 90, 200, "red"},
		{"HalfUp", 1, 200, 70, 90, 1, "green"}, // 0.5 % rounds up
		{"OffDay", 0, 0, 70, 90, 0, "off"},
		{"BookedOnOffDay", 60, 0, 70, 90, 0, "red"},
		{"OwnThresholds", 240, 480, 40, 60, 50, "amber"},
		{"OwnThresholdsRed", 300, 480, 40, 60, 63, "red"},
		{"OwnThresholdsGreen", 180, 480, 40, 60, 38, "green"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, l := fieldops.CapacityLevel(tt.booked, tt.working, tt.am, tt.rd)
			if p != tt.percent || l != tt.level {
				t.Fatalf("CapacityLevel(%d, %d, %d, %d) = %d, %q; want %d, %q", tt.booked, tt.working, tt.am, tt.rd, p, l, tt.percent, tt.level)
			}
		})
	}
}

func TestDistanceM(t *testing.T) {
	manchester := fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}
	london := fieldops.LatLng{Lat: 51.5072, Lng: -0.1276}
	if d := fieldops.DistanceM(manchester, manchester); d != 0 {
		t.Fatalf("same point: %v m", d)
	}
	// Manchester to London is about 262 km as the crow flies.
	if d := fieldops.DistanceM(manchester, london); math.Abs(d-262_000) > 2_000 {
		t.Fatalf("Manchester to London = %.0f m, want about 262 km", d)
	}
	if a, b := fieldops.DistanceM(manchester, london), fieldops.DistanceM(london, manchester); math.Abs(a-b) > 1e-6 {
		t.Fatalf("not symmetric: %v, %v", a, b)
	}
}

func TestLatLngValidate(t *testing.T) {
	for _, p := range []fieldops.LatLng{{91, 0}, {0, 181}, {-91, 0}, {math.NaN(), 0}} {
		if fieldops.ErrorCode(p.Validate()) != fieldops.EINVALID {
			t.Fatalf("%v: want EINVALID", p)
		}
	}
	if err := (fieldops.LatLng{Lat: 53.4794, Lng: -2.2453}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWeekStart(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct{ at, want time.Time }{
		// Sunday 23:30 UTC in summer is Monday 00:30 in London: the next week.
		{time.Date(2026, 6, 7, 23, 30, 0, 0, time.UTC), time.Date(2026, 6, 8, 0, 0, 0, 0, london)},
		{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, london)},
		{time.Date(2026, 11, 23, 0, 0, 0, 0, london), time.Date(2026, 11, 23, 0, 0, 0, 0, london)},
		{time.Date(2027, 3, 28, 12, 0, 0, 0, london), time.Date(2027, 3, 22, 0, 0, 0, 0, london)},
	} {
		if got := fieldops.WeekStart(tt.at, london); !got.Equal(tt.want) {
			t.Fatalf("WeekStart(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}
