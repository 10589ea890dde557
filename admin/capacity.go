package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// capacityView is the capacity page: the week board (nil on the free-now
// page) and who is free now.
type capacityView struct {
	Board *capacityBoard
	Free  []freeRow
	Near  string // as typed, to refill the form
	Week  string // the week shown, to keep it when asking who is free
}

// capacityBoard is a week laid out for the template.
type capacityBoard struct {
	Title      string   // "Week of Mon 23 Nov 2026"
	Days       []string // column headings, Monday first
	Rows       []capacityRow
	Prev, Next string // ?week= of the neighbouring weeks
	AmberPct   int
	RedPct     int
}

type capacityRow struct {
	UserID int64
	Name   string
	Colour string
	Days   [7]capacityCell
	Week   capacityCell
}

// capacityCell is one bar: hours booked against working hours.
type capacityCell struct {
	Booked, Working string // hours with one decimal: "3.0"
	Percent         int
	Level           string // green, amber, red, off: the bar's class
	Width           int    // the bar's width class: min(percent, 150), in steps of 5
}

type freeRow struct {
	Name     string
	Distance string // "1.2 km", "" when unknown
	Booked   string
	Working  string
	Level    string
}

// hours formats minutes as hours with one decimal.
func hours(minutes int) string { return fmt.Sprintf("%.1f", float64(minutes)/60) }

func newCell(booked, working, amber, red int) capacityCell {
	c := capacityCell{Booked: hours(booked), Working: hours(working)}
	c.Percent, c.Level = fieldops.CapacityLevel(booked, working, amber, red)
	w := min(c.Percent, 150)
	if working <= 0 && booked > 0 {
		w = 100 // booked on a day off: a full red bar
	}
	c.Width = (w + 2) / 5 * 5
	if c.Width == 0 && booked > 0 {
		c.Width = 5 // something is booked: show a sliver
	}
	return c
}

// orgLocation is the signed-in member's organisation's time zone.
func orgLocation(r *http.Request) *time.Location {
	if m, ok := memberFrom(r.Context()); ok {
		if loc, err := time.LoadLocation(m.org.TimeZone); err == nil {
			return loc
		}
	}
	return london
}

// parseNear reads "lat,lng".
func parseNear(s string) (*fieldops.LatLng, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	lat, lng, ok := strings.Cut(s, ",")
	p := fieldops.LatLng{}
	var err1, err2 error
	p.Lat, err1 = strconv.ParseFloat(strings.TrimSpace(lat), 64)
	p.Lng, err2 = strconv.ParseFloat(strings.TrimSpace(lng), 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fieldops.Invalid("near", "A location is latitude,longitude in degrees, such as 53.4794,-2.2453.")
	}
	return &p, p.Validate()
}

// handleCapacity shows the week board (?week=any date in it, default this
// week) and who is free now (?near=lat,lng to sort by distance).
func (s *Server) handleCapacity(w http.ResponseWriter, r *http.Request) {
	s.capacityPage(w, r, true)
}

// handleCapacityFree shows only who is free now, for an emergency call.
func (s *Server) handleCapacityFree(w http.ResponseWriter, r *http.Request) {
	s.capacityPage(w, r, false)
}

func (s *Server) capacityPage(w http.ResponseWriter, r *http.Request, board bool) {
	ctx := r.Context()
	if s.svc.Capacity == nil {
		s.fail(w, r, fieldops.Errorf(fieldops.EUNAVAILABLE, "Team capacity is not available on this server."))
		return
	}
	loc := orgLocation(r)
	weekOf := s.Now().In(loc)
	if q := r.URL.Query().Get("week"); q != "" {
		d, err := time.ParseInLocation(time.DateOnly, q, loc)
		if err != nil {
			s.fail(w, r, fieldops.Invalid("week", "The week is a date such as 2026-11-23."))
			return
		}
		weekOf = d.Add(12 * time.Hour) // midday: never in a skipped or repeated hour
	}
	near, err := parseNear(r.URL.Query().Get("near"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := capacityView{Near: r.URL.Query().Get("near")}
	title := "Who is free now"
	if board {
		week, err := s.svc.Capacity.FindCapacityWeek(ctx, weekOf)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v.Board = layoutBoard(week)
		v.Week = week.Start.Format(time.DateOnly)
		title = "Team capacity"
	}
	free, err := s.svc.Capacity.FindFreeNow(ctx, near)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, f := range free {
		row := freeRow{Name: f.Name, Booked: hours(f.BookedTodayMinutes), Working: hours(f.WorkingTodayMinutes), Level: f.Level}
		if f.DistanceM != nil {
			row.Distance = fmt.Sprintf("%.1f km", *f.DistanceM/1000)
		}
		v.Free = append(v.Free, row)
	}
	s.render(w, r, http.StatusOK, "capacity", &view{Title: title, Data: v})
}

// layoutBoard turns the service's week into rows of cells.
func layoutBoard(week *fieldops.CapacityWeek) *capacityBoard {
	b := &capacityBoard{
		Title:    "Week of " + week.Start.Format("Mon 2 Jan 2006"),
		Prev:     week.Start.AddDate(0, 0, -7).Format(time.DateOnly),
		Next:     week.Start.AddDate(0, 0, 7).Format(time.DateOnly),
		AmberPct: week.AmberPct, RedPct: week.RedPct,
	}
	for i := range 7 {
		b.Days = append(b.Days, week.Start.AddDate(0, 0, i).Format("Mon 2 Jan"))
	}
	for _, e := range week.Engineers {
		row := capacityRow{UserID: e.UserID, Name: e.Name, Colour: e.Colour,
			Week: newCell(e.BookedMinutes, e.WorkingMinutes, week.AmberPct, week.RedPct)}
		for i, d := range e.Days {
			row.Days[i] = newCell(d.BookedMinutes, d.WorkingMinutes, week.AmberPct, week.RedPct)
		}
		b.Rows = append(b.Rows, row)
	}
	return b
}
