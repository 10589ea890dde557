package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// jobsView is the job list with its filters.
type jobsView struct {
	clock
	Jobs      []*fieldops.Job
	Filter    url.Values // the filters as typed: status, type, engineer, customer, from, to
	Next      string
	Engineers []*fieldops.Member // for the engineer filter; nil without team.view
	Customer  *fieldops.Customer // when the list is one customer's
	Types     []string
	Statuses  []string
}

// F returns a filter as typed.
func (v *jobsView) F(name string) string { return v.Filter.Get(name) }

// NextURL links to the next page with the same filters.
func (v *jobsView) NextURL() string {
	q := url.Values{}
	for _, k := range []string{"status", "type", "engineer", "customer", "from", "to"} {
		if val := v.Filter.Get(k); val != "" {
			q.Set(k, val)
		}
	}
	q.Set("after", v.Next)
	return "/jobs?" + q.Encode()
}

// jobFilter reads the list's filters: dates are whole days in the
// organisation's zone, "to" included.
func jobFilter(q url.Values, c clock) (fieldops.JobFilter, error) {
	f := fieldops.JobFilter{Status: q.Get("status"), Type: q.Get("type"), After: q.Get("after")}
	var err error
	if f.EngineerID, err = optionalID(q.Get("engineer"), "engineer", "Choose an engineer from the list."); err != nil {
		return f, err
	}
	if f.CustomerID, err = optionalID(q.Get("customer"), "customer", "Choose a customer from the customer list."); err != nil {
		return f, err
	}
	day := func(field, label string) (time.Time, error) {
		v := strings.TrimSpace(q.Get(field))
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.ParseInLocation(time.DateOnly, v, c.loc)
		if err != nil {
			return t, fieldops.Invalid(field, "%s must be a date, such as 2027-01-31.", label)
		}
		return t, nil
	}
	if f.From, err = day("from", "From"); err != nil {
		return f, err
	}
	if f.To, err = day("to", "To"); err != nil {
		return f, err
	}
	if !f.To.IsZero() {
		f.To = f.To.AddDate(0, 0, 1) // the whole of the last day
	}
	return f, nil
}

func optionalID(s, field, msg string) (int64, error) {
	if s = strings.TrimSpace(s); s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fieldops.Invalid(field, "%s", msg)
	}
	return id, nil
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := &jobsView{clock: orgClock(ctx), Filter: r.URL.Query(), Types: fieldops.JobTypes, Statuses: fieldops.JobStatuses}
	engineers, err := s.assignable(ctx)
	if err != nil && fieldops.ErrorCode(err) != fieldops.EFORBIDDEN {
		s.fail(w, r, err)
		return
	}
	v.Engineers = engineers
	status := http.StatusOK
	page := &view{Title: "Jobs", Data: v}
	f, err := jobFilter(v.Filter, v.clock)
	if err == nil {
		v.Jobs, v.Next, err = s.svc.Jobs.FindJobs(ctx, f)
	}
	if err == nil && f.CustomerID != 0 {
		v.Customer, err = s.svc.Customers.FindCustomerByID(ctx, f.CustomerID)
	}
	switch {
	case err == nil:
	case fieldops.ErrorCode(err) == fieldops.EINVALID:
		status, page.Error, page.Field = statusOf(err), fieldops.ErrorMessage(err), fieldops.ErrorField(err)
	default:
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "jobs", page)
}

// assignable lists the members who can be put on a job: those whose
// permissions let them check in (needs team.view).
func (s *Server) assignable(ctx context.Context) ([]*fieldops.Member, error) {
	ms, err := s.svc.Members.FindMembers(ctx, fieldops.MemberFilter{})
	if err != nil {
		return nil, err
	}
	overrides := true
	if me, ok := memberFrom(ctx); ok {
		if p, err := fieldops.FindPlan(me.org.Plan); err == nil {
			overrides = p.Overrides
		}
	}
	out := ms[:0:0]
	for _, m := range ms {
		ovs := m.Overrides
		if !overrides {
			ovs = nil
		}
		if fieldops.EffectiveGrants(m.Role, ovs).Scope(fieldops.FlagJobCheckIn) != fieldops.ScopeNone {
			out = append(out, m)
		}
	}
	return out, nil
}

// jobFormView is the new-job form: first the customer, then the rest.
type jobFormView struct {
	clock
	Q         string
	Customers []*fieldops.Customer // step one: choose the customer
	More      bool
	Customer  *fieldops.Customer // step two
	Sites     []*fieldops.Site
	Engineers []*fieldops.Member // nil without team.view: no assignment then
	Types     []string
	Typed     typed
	Start     string // datetime-local defaults: tomorrow 09:00–12:00
	End       string
	chosen    map[int64]bool
	primary   int64
}

// Chosen reports whether the engineer's box is ticked.
func (v *jobFormView) Chosen(id int64) bool { return v.chosen[id] }

// IsPrimary reports whether the engineer is marked primary.
func (v *jobFormView) IsPrimary(id int64) bool { return v.primary == id }

func (s *Server) handleJobNew(w http.ResponseWriter, r *http.Request) {
	id, err := optionalID(r.URL.Query().Get("customer"), "customer_id", "Choose a customer from the list.")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderJobForm(w, r, id, http.StatusOK, nil, typed{})
}

// renderJobForm shows the new-job form for the customer (0: the customer
// list); with err, it comes back with the message and what was typed.
func (s *Server) renderJobForm(w http.ResponseWriter, r *http.Request, customerID int64, status int, err error, t typed) {
	ctx := r.Context()
	c := orgClock(ctx)
	tomorrow := s.Now().In(c.loc).AddDate(0, 0, 1)
	start := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 9, 0, 0, 0, c.loc)
	v := &jobFormView{clock: c, Q: strings.TrimSpace(r.URL.Query().Get("q")), Types: fieldops.JobTypes, Typed: t,
		Start: c.Input(start), End: c.Input(start.Add(3 * time.Hour)), chosen: map[int64]bool{}}
	page := &view{Title: "New job", Data: v}
	if err != nil {
		page.Error, page.Field = fieldops.ErrorMessage(err), fieldops.ErrorField(err)
	}
	var ferr error
	if customerID == 0 {
		var next string
		v.Customers, next, ferr = s.svc.Customers.FindCustomers(ctx, fieldops.CustomerFilter{NamePrefix: v.Q, Limit: 200})
		if ferr != nil {
			s.fail(w, r, ferr)
			return
		}
		v.More = next != ""
		s.render(w, r, status, "job_form", page)
		return
	}
	if v.Customer, ferr = s.svc.Customers.FindCustomerByID(ctx, customerID); ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	if v.Sites, ferr = s.svc.Sites.FindSites(ctx, customerID); ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	if v.Engineers, ferr = s.assignable(ctx); ferr != nil && fieldops.ErrorCode(ferr) != fieldops.EFORBIDDEN {
		s.fail(w, r, ferr)
		return
	}
	if t.values != nil {
		for _, a := range formAssignments(t.values) {
			v.chosen[a.UserID] = true
			if a.Primary {
				v.primary = a.UserID
			}
		}
	}
	s.render(w, r, status, "job_form", page)
}

// formAssignments reads the engineer boxes (engineer, one per ticked
// engineer) and the primary radio. An engineer marked primary is on the
// job even when their box was left empty, and a lone engineer is the
// primary. Values that are not ids are dropped; the service checks the
// ids that remain.
func formAssignments(f url.Values) []fieldops.Assignment {
	primary, _ := strconv.ParseInt(f.Get("primary"), 10, 64)
	var ids []int64
	for _, v := range f["engineer"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if primary > 0 && !slices.Contains(ids, primary) {
		ids = append(ids, primary)
	}
	if len(ids) == 1 {
		primary = ids[0]
	}
	as := make([]fieldops.Assignment, len(ids))
	for i, id := range ids {
		as[i] = fieldops.Assignment{UserID: id, Primary: id == primary}
	}
	return as
}

// formWindow reads the start and end inputs (datetime-local) in the
// organisation's zone. Empty inputs stay zero for the service to name.
func formWindow(r *http.Request, c clock) (start, end time.Time, err error) {
	parse := func(field, label string) (time.Time, error) {
		v := strings.TrimSpace(r.PostFormValue(field))
		if v == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{dateTimeLocal, "2006-01-02T15:04:05"} {
			if t, err := time.ParseInLocation(layout, v, c.loc); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fieldops.Invalid(field, "%s must be a date and time, such as 2027-01-31 09:00.", label)
	}
	if start, err = parse("scheduled_start", "Start"); err != nil {
		return start, end, err
	}
	end, err = parse("scheduled_end", "End")
	return start, end, err
}

// formMinutes reads the estimate; empty is 0, the service's default.
func formMinutes(r *http.Request) (int, error) {
	v := strings.TrimSpace(r.PostFormValue("estimated_minutes"))
	if v == "" {
		return 0, nil
	}
	m, err := strconv.Atoi(v)
	if err != nil {
		return 0, fieldops.Invalid("estimated_minutes", "Estimated time is a whole number of minutes, such as 90.")
	}
	return m, nil
}

func (s *Server) handleJobCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := orgClock(ctx)
	n := fieldops.NewJob{Type: r.PostFormValue("type"), Title: r.PostFormValue("title"), Description: r.PostFormValue("description")}
	customerID, err := optionalID(r.PostFormValue("customer_id"), "customer_id", "Choose a customer for the job.")
	if err == nil {
		n.CustomerID = customerID
		n.SiteID, err = optionalID(r.PostFormValue("site_id"), "site_id", "Choose the site where the job is.")
	}
	if err == nil {
		n.ScheduledStart, n.ScheduledEnd, err = formWindow(r, c)
	}
	if err == nil {
		n.EstimatedMinutes, err = formMinutes(r)
	}
	var j *fieldops.Job
	if err == nil {
		n.Engineers = formAssignments(r.PostForm)
		j, err = s.svc.Jobs.CreateJob(ctx, n)
	}
	if err != nil {
		if !retype(err) {
			s.fail(w, r, err)
			return
		}
		if fieldops.ErrorField(err) == "customer_id" {
			customerID = 0 // back to choosing the customer
		}
		s.renderJobForm(w, r, customerID, statusOf(err), err, typedFrom(r, "job", err))
		return
	}
	s.back(w, r, fmt.Sprintf("/jobs/%d", j.ID), "Job created.")
}

// jobView is one job's page.
type jobView struct {
	clock
	Job        *fieldops.Job
	Site       *fieldops.Site
	Audit      []*fieldops.AuditEvent
	AuditNext  string // the cursor of older history entries, if any
	CanAudit   bool
	Candidates []*candidate // the assignment form; nil without job.assign or team.view
	Day        time.Time    // the job's first local day, which booked hours are for
	Types      []string
	Typed      typed
	Work       *jobWork // certificates and defects; see certificates.go
}

// candidate is one engineer on the assignment form with their day.
type candidate struct {
	Member   *fieldops.Member
	Colour   string // the member's colour when it is a plain #rrggbb
	Assigned bool
	Primary  bool
	// BookedMinutes is their time on other jobs that day; Level rates
	// it with this job added against their working time.
	BookedMinutes  int
	WorkingMinutes int
	Percent        int
	Level          string
	Clashes        []string // "Sam is already on 'EICR at 12 Princess St' 09:00–12:00"
}

// Booked is the booked time in hours and minutes: "5 h 30 min".
func (c *candidate) Booked() string { return hoursMinutes(c.BookedMinutes) }

// Working is the working time that day.
func (c *candidate) Working() string { return hoursMinutes(c.WorkingMinutes) }

func hoursMinutes(m int) string {
	switch h, min := m/60, m%60; {
	case m == 0:
		return "0 h"
	case h == 0:
		return fmt.Sprintf("%d min", min)
	case min == 0:
		return fmt.Sprintf("%d h", h)
	default:
		return fmt.Sprintf("%d h %d min", h, min)
	}
}

// Hours is the job's estimate in hours and minutes.
func (v *jobView) Hours() string { return hoursMinutes(v.Job.EstimatedMinutes) }

// HistoryURL links to the older entries of the job's history.
func (v *jobView) HistoryURL() string {
	return fmt.Sprintf("/jobs/%d?", v.Job.ID) + url.Values{"history": {v.AuditNext}}.Encode() + "#history"
}

// MapURL links to the job's site on a map.
func (v *jobView) MapURL() string {
	if v.Site != nil {
		return v.Site.MapURL()
	}
	return (&fieldops.Site{Latitude: v.Job.SiteLatitude, Longitude: v.Job.SiteLongitude}).MapURL()
}

var hexColour = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Job not found."))
		return
	}
	s.renderJob(w, r, id, http.StatusOK, nil, typed{})
}

// renderJob shows a job's page; with err, the form t names comes back
// with the message and what was typed.
func (s *Server) renderJob(w http.ResponseWriter, r *http.Request, id int64, status int, err error, t typed) {
	ctx := r.Context()
	j, ferr := s.svc.Jobs.FindJobByID(ctx, id)
	if ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	v := &jobView{clock: orgClock(ctx), Job: j, Types: fieldops.JobTypes, Typed: t}
	if site, err := s.svc.Sites.FindSiteByID(ctx, j.SiteID); err == nil {
		v.Site = site
	} // else the job's own copy of the address and coordinates is shown
	events, next, ferr := s.svc.Audit.FindAuditEvents(ctx, fieldops.AuditFilter{TargetType: "job", TargetID: strconv.FormatInt(id, 10),
		After: r.URL.Query().Get("history")})
	switch fieldops.ErrorCode(ferr) {
	case "":
		v.Audit, v.AuditNext, v.CanAudit = events, next, true
	case fieldops.EFORBIDDEN: // no audit.view: the trail is left out
	default:
		s.fail(w, r, ferr)
		return
	}
	if v.Work, ferr = s.jobWork(ctx, j); ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	st := j.ScheduledStart.In(v.loc)
	v.Day = time.Date(st.Year(), st.Month(), st.Day(), 0, 0, 0, 0, v.loc)
	if me, ok := memberFrom(ctx); ok && me.grants.Scope(fieldops.FlagJobAssign) != fieldops.ScopeNone && j.Status != "completed" && j.Status != "cancelled" {
		// Only to hide the form: the service decides on the assignment.
		if v.Candidates, ferr = s.candidates(ctx, v, me.org); ferr != nil {
			s.fail(w, r, ferr)
			return
		}
	}
	if t.form == "assign" && t.values != nil {
		as := formAssignments(t.values)
		for _, c := range v.Candidates {
			c.Assigned, c.Primary = false, false
			for _, a := range as {
				if a.UserID == c.Member.UserID {
					c.Assigned, c.Primary = true, a.Primary
				}
			}
		}
	}
	page := &view{Title: j.Title, Data: v}
	if err != nil {
		page.Error, page.Field = fieldops.ErrorMessage(err), fieldops.ErrorField(err)
	}
	s.render(w, r, status, "job", page)
}

// candidates lists who can be put on the job with their booked time on
// its day and the jobs of theirs it overlaps. One query pages through the
// organisation's jobs around the window and they are sorted per engineer:
// jobs that started more than a day before are not seen.
func (s *Server) candidates(ctx context.Context, v *jobView, org *fieldops.Organisation) ([]*candidate, error) {
	ms, err := s.assignable(ctx)
	if fieldops.ErrorCode(err) == fieldops.EFORBIDDEN {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j := v.Job
	dayStart, dayEnd := v.Day, v.Day.AddDate(0, 0, 1)
	f := fieldops.JobFilter{From: earliest(dayStart, j.ScheduledStart).Add(-24 * time.Hour), To: latest(dayEnd, j.ScheduledEnd), Limit: 200}
	byEngineer := map[int64][]*fieldops.Job{}
	for page := 0; page < 10; page++ {
		jobs, next, err := s.svc.Jobs.FindJobs(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, o := range jobs {
			if o.ID == j.ID || o.Status == "cancelled" {
				continue
			}
			for _, e := range o.Engineers {
				byEngineer[e.UserID] = append(byEngineer[e.UserID], o)
			}
		}
		if next == "" {
			break
		}
		f.After = next
	}
	thisJob := overlap(j.ScheduledStart, j.ScheduledEnd, dayStart, dayEnd)
	out := make([]*candidate, 0, len(ms))
	for _, m := range ms {
		c := &candidate{Member: m, WorkingMinutes: m.WorkingMinutes[(int(v.Day.Weekday())+6)%7]}
		if hexColour.MatchString(m.Colour) {
			c.Colour = m.Colour
		}
		for _, e := range j.Engineers {
			if e.UserID == m.UserID {
				c.Assigned, c.Primary = true, e.Primary
			}
		}
		for _, o := range byEngineer[m.UserID] {
			c.BookedMinutes += overlap(o.ScheduledStart, o.ScheduledEnd, dayStart, dayEnd)
			if o.ScheduledStart.Before(j.ScheduledEnd) && j.ScheduledStart.Before(o.ScheduledEnd) {
				c.Clashes = append(c.Clashes, fmt.Sprintf("%s is already on '%s' %s", m.Name, o.Title, v.span(o.ScheduledStart, o.ScheduledEnd, dayStart)))
			}
		}
		c.Percent, c.Level = fieldops.CapacityLevel(c.BookedMinutes+thisJob, c.WorkingMinutes, org.CapacityAmberPct, org.CapacityRedPct)
		out = append(out, c)
	}
	return out, nil
}

// span is a window as a clash shows it: "09:00–12:00" on the given day,
// with dates otherwise.
func (c clock) span(start, end, day time.Time) string {
	s, e := start.In(c.loc), end.In(c.loc)
	if !s.Before(day) && e.Sub(day) <= 24*time.Hour {
		return s.Format("15:04") + "–" + e.Format("15:04")
	}
	return c.Window(start, end)
}

// overlap returns the minutes [a1, a2) and [b1, b2) have in common.
func overlap(a1, a2, b1, b2 time.Time) int {
	from, to := latest(a1, b1), earliest(a2, b2)
	if !to.After(from) {
		return 0
	}
	return int(to.Sub(from) / time.Minute)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// jobAction reads a job action's id; an error goes back to the job page
// with form t when it is about the input or the job's state.
func (s *Server) jobAction(w http.ResponseWriter, r *http.Request, form string, do func(id int64) (string, string, error)) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Job not found."))
		return
	}
	to, flash, err := do(id)
	if err != nil {
		if retype(err) {
			s.renderJob(w, r, id, statusOf(err), err, typedFrom(r, form, err))
			return
		}
		s.fail(w, r, err)
		return
	}
	s.back(w, r, to, flash)
}

func jobURL(id int64) string { return fmt.Sprintf("/jobs/%d", id) }

func (s *Server) handleJobUpdate(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "edit", func(id int64) (string, string, error) {
		str := func(k string) *string { v := r.PostFormValue(k); return &v }
		u := fieldops.JobUpdate{Type: str("type"), Title: str("title"), Description: str("description")}
		if v := strings.TrimSpace(r.PostFormValue("estimated_minutes")); v != "" {
			m, err := formMinutes(r)
			if err != nil {
				return "", "", err
			}
			u.EstimatedMinutes = &m
		}
		_, err := s.svc.Jobs.UpdateJob(r.Context(), id, u)
		return jobURL(id), "Job saved; its engineers have been told.", err
	})
}

func (s *Server) handleJobReschedule(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "reschedule", func(id int64) (string, string, error) {
		start, end, err := formWindow(r, orgClock(r.Context()))
		if err != nil {
			return "", "", err
		}
		j, err := s.svc.Jobs.RescheduleJob(r.Context(), id, start, end)
		if err != nil {
			return "", "", err
		}
		return jobURL(id), "Job moved to " + orgClock(r.Context()).Window(j.ScheduledStart, j.ScheduledEnd) + "; its engineers have been told.", nil
	})
}

func (s *Server) handleJobAssign(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "assign", func(id int64) (string, string, error) {
		r.ParseForm()
		_, err := s.svc.Jobs.AssignEngineers(r.Context(), id, formAssignments(r.PostForm))
		return jobURL(id), "Engineers saved; those added or taken off have been told.", err
	})
}

func (s *Server) handleJobCancel(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "cancel", func(id int64) (string, string, error) {
		_, err := s.svc.Jobs.CancelJob(r.Context(), id)
		return jobURL(id), "Job cancelled; its engineers have been told.", err
	})
}

func (s *Server) handleJobDelete(w http.ResponseWriter, r *http.Request) {
	s.jobAction(w, r, "delete", func(id int64) (string, string, error) {
		return "/jobs", "Job deleted.", s.svc.Jobs.DeleteJob(r.Context(), id)
	})
}
