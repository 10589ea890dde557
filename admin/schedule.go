package admin

import (
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// The dispatch board lays a day out in half-hour slots: a job block's
// start class is at0..at47 and its length class len1..len48, and
// overlapping jobs of one engineer go in lanes lane0..lane3 (the row's
// class lanes1..lanes4). Classes, not style attributes: the CSP allows
// no inline styles.
const (
	slotMinutes = 30
	daySlots    = 24 * 60 / slotMinutes
	maxLanes    = 4
)

// scheduleView is the dispatch board of one day.
type scheduleView struct {
	Title      string // "Mon 23 Nov 2026"
	Day        string // ?day= of the day shown
	Prev, Next string // links to the neighbouring days, same engineers
	Hours      []string
	Rows       []scheduleRow
	// Name is the engineers' name filter; Page of Pages, Total engineers
	// match it; First and Last number the engineers shown (from 1).
	Name                            string
	Page, Pages, Total, First, Last int
	PrevPage, NextPage              string // links to the neighbouring pages, "" at either end
	PageLinks                       []pageLink
	Unassigned                      []scheduleBlock
	// Listed reports whether the unassigned jobs could be listed (job.view).
	Listed bool
}

type scheduleRow struct {
	UserID int64
	Name   string
	Colour string
	Lanes  int
	Jobs   []scheduleBlock
	// Track is the row's job blocks as HTML, built by blocksHTML: a busy
	// day has thousands of blocks, and html/template's per-value escaping
	// through reflection cost 2–3 ms per hundred of them.
	Track template.HTML
}

// scheduleBlock is one job on the board.
type scheduleBlock struct {
	ID       int64
	Time     string // "09:00–12:00", with "…" where it runs over midnight
	Title    string
	Customer string
	Address  string
	Status   string
	Primary  bool // the row's engineer is the job's primary
	Start    int  // slot 0..47
	Len      int  // slots 1..48
	Lane     int
}

// pageLink is a numbered link to a page of the board; Current marks the
// page shown.
type pageLink struct {
	N       int
	URL     string
	Current bool
}

// handleSchedule shows the team's schedule of a day (?day=2026-11-23,
// default today) as a dispatch board (schedule.view_team), fifty
// engineers a page (?page=2), optionally only those whose name contains
// ?name=.
func (s *Server) handleSchedule(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc := orgLocation(r)
	day := s.Now().In(loc)
	if q := r.URL.Query().Get("day"); q != "" {
		d, err := time.ParseInLocation(time.DateOnly, q, loc)
		if err != nil {
			s.fail(w, r, fieldops.Invalid("day", "The day is a date such as 2026-11-23."))
			return
		}
		day = d.Add(12 * time.Hour) // midday: never in a skipped or repeated hour
	}
	q := fieldops.ScheduleQuery{Day: day, Name: strings.TrimSpace(r.URL.Query().Get("name"))}
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			s.fail(w, r, fieldops.Invalid("page", "The page is a number from 1, such as 2."))
			return
		}
		q.Page = n
	}
	sched, err := s.svc.Jobs.FindSchedule(ctx, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from := sched.Day
	to := time.Date(from.Year(), from.Month(), from.Day()+1, 0, 0, 0, 0, from.Location())
	v := &scheduleView{
		Title: from.Format("Mon 2 Jan 2006"),
		Day:   from.Format(time.DateOnly),
		Name:  q.Name,
		Page:  sched.Page, Pages: sched.Pages, Total: sched.Total,
	}
	if len(sched.Engineers) > 0 {
		v.First = (sched.Page-1)*sched.PerPage + 1
		v.Last = v.First + len(sched.Engineers) - 1
	}
	boardURL := func(day string, n int) string {
		u := url.Values{"day": {day}}
		if q.Name != "" {
			u.Set("name", q.Name)
		}
		if n > 1 {
			u.Set("page", strconv.Itoa(n))
		}
		return "/schedule?" + u.Encode()
	}
	pageURL := func(n int) string { return boardURL(v.Day, n) }
	v.Prev = boardURL(from.AddDate(0, 0, -1).Format(time.DateOnly), v.Page)
	v.Next = boardURL(from.AddDate(0, 0, 1).Format(time.DateOnly), v.Page)
	if v.Pages > 1 {
		for n := 1; n <= v.Pages; n++ {
			v.PageLinks = append(v.PageLinks, pageLink{N: n, URL: pageURL(n), Current: n == v.Page})
		}
		if v.Page > 1 {
			v.PrevPage = pageURL(v.Page - 1)
		}
		if v.Page < v.Pages {
			v.NextPage = pageURL(v.Page + 1)
		}
	}
	for h := range 24 {
		v.Hours = append(v.Hours, fmt.Sprintf("%02d", h))
	}
	for _, e := range sched.Engineers {
		row := scheduleRow{UserID: e.UserID, Name: e.Name, Colour: e.Colour, Lanes: 1}
		var laneEnds [maxLanes]int // the first free slot of each lane
		for _, j := range e.Jobs {
			b := newBlock(j, from, to)
			for _, pe := range j.Engineers {
				if pe.UserID == e.UserID {
					b.Primary = pe.Primary
				}
			}
			b.Lane = maxLanes - 1
			for i, end := range laneEnds {
				if end <= b.Start {
					b.Lane = i
					break
				}
			}
			laneEnds[b.Lane] = max(laneEnds[b.Lane], b.Start+b.Len)
			row.Lanes = max(row.Lanes, b.Lane+1)
			row.Jobs = append(row.Jobs, b)
		}
		row.Track = blocksHTML(row.Jobs)
		v.Rows = append(v.Rows, row)
	}
	// Jobs of the day with no one on them: those starting on the day (the
	// job list's filter), for a member who may see the job list.
	f := fieldops.JobFilter{From: from, To: to, Unassigned: true, Limit: 200}
	for {
		jobs, next, err := s.svc.Jobs.FindJobs(ctx, f)
		if fieldops.ErrorCode(err) == fieldops.EFORBIDDEN {
			break
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v.Listed = true
		for _, j := range jobs {
			if j.Status != "cancelled" {
				v.Unassigned = append(v.Unassigned, newBlock(j, from, to))
			}
		}
		if next == "" {
			break
		}
		f.After = next
	}
	s.render(w, r, http.StatusOK, "schedule", &view{Title: "Team schedule", Data: v})
}

// newBlock places a job on the day [from, to) in half-hour slots, by the
// wall clock of the organisation's zone.
func newBlock(j *fieldops.Job, from, to time.Time) scheduleBlock {
	loc := from.Location()
	start, end := j.ScheduledStart.In(loc), j.ScheduledEnd.In(loc)
	b := scheduleBlock{ID: j.ID, Title: j.Title, Customer: j.CustomerName, Address: j.SiteAddress, Status: j.Status}
	first, last := start.Format("15:04"), end.Format("15:04")
	startMin, endMin := start.Hour()*60+start.Minute(), end.Hour()*60+end.Minute()
	if start.Before(from) {
		first, startMin = "…"+start.Format("Mon 15:04"), 0
	}
	if !end.Before(to) {
		endMin = 24 * 60
		if end.After(to) {
			last = end.Format("Mon 15:04") + "…"
		}
	}
	b.Time = first + "–" + last
	b.Start = min(max(startMin/slotMinutes, 0), daySlots-1)
	endSlot := (endMin + slotMinutes - 1) / slotMinutes
	b.Len = min(max(endSlot-b.Start, 1), daySlots-b.Start)
	return b
}

// blocksHTML writes a row's job blocks as the schedule template did (see
// templates/schedule.html): every text goes through html.EscapeString,
// which escapes <, >, &, ' and ", so it is safe in element text and in the
// double-quoted attributes used here; the other values are numbers and
// the job status, one of fieldops.JobStatuses.
func blocksHTML(jobs []scheduleBlock) template.HTML {
	if len(jobs) == 0 {
		return `<span class="sb-free hint">No jobs</span>`
	}
	var b strings.Builder
	b.Grow(len(jobs) * 400)
	for _, j := range jobs {
		t, title, cust := html.EscapeString(j.Time), html.EscapeString(j.Title), html.EscapeString(j.Customer)
		b.WriteString(`<a class="sb-job at`)
		b.WriteString(strconv.Itoa(j.Start))
		b.WriteString(` len`)
		b.WriteString(strconv.Itoa(j.Len))
		b.WriteString(` lane`)
		b.WriteString(strconv.Itoa(j.Lane))
		b.WriteString(` st-`)
		b.WriteString(html.EscapeString(j.Status))
		if j.Primary {
			b.WriteString(` primary`)
		}
		b.WriteString(`" href="/jobs/`)
		b.WriteString(strconv.FormatInt(j.ID, 10))
		b.WriteString(`" title="`)
		b.WriteString(t + " " + title + " · " + cust + " · " + html.EscapeString(j.Address))
		b.WriteString("\">\n        <span class=\"sb-time\">")
		b.WriteString(t)
		b.WriteString(`</span> <span class="sb-title">`)
		b.WriteString(title)
		b.WriteString(`</span> <span class="sb-cust">`)
		b.WriteString(cust)
		b.WriteString(`</span>`)
		if j.Primary {
			b.WriteString(` <span class="sb-primary" title="Primary engineer">★ primary</span>`)
		}
		b.WriteString("\n      </a>")
	}
	return template.HTML(b.String())
}
