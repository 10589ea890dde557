package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldops/fieldops"
)

// typed is what the member typed into one form of a page, kept when the
// form comes back with an error so that nothing has to be typed again.
type typed struct {
	form   string // which form of the page: "customer", "site-new", "site-12"
	field  string // the input at fault, if any
	values url.Values
}

// Val returns the typed value of a field of form, or fallback when the
// page shows that form fresh.
func (t typed) Val(form, field, fallback string) string {
	if t.form == form && t.values != nil {
		return t.values.Get(field)
	}
	return fallback
}

// Bad reports whether field of form is the input at fault.
func (t typed) Bad(form, field string) bool { return t.form == form && t.field == field }

// Is reports whether form is the one that came back with an error.
func (t typed) Is(form string) bool { return t.form == form }

// clock shows times in the organisation's zone.
type clock struct{ loc *time.Location }

// orgClock is the clock of the signed-in member's organisation; an unknown
// zone falls back to London.
func orgClock(ctx context.Context) clock {
	if m, ok := memberFrom(ctx); ok {
		if loc, err := time.LoadLocation(m.org.TimeZone); err == nil {
			return clock{loc}
		}
	}
	return clock{london}
}

// When is a time as shown in lists: "Mon 2 Jan 2006 15:04".
func (c clock) When(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.loc).Format("Mon 2 Jan 2006 15:04")
}

// Window is a job's window: "Mon 2 Jan 2006 09:00–12:00", with the end's
// date when it ends on another day.
func (c clock) Window(start, end time.Time) string {
	s, e := start.In(c.loc), end.In(c.loc)
	if s.Year() == e.Year() && s.YearDay() == e.YearDay() {
		return s.Format("Mon 2 Jan 2006 15:04") + "–" + e.Format("15:04")
	}
	return s.Format("Mon 2 Jan 2006 15:04") + " – " + e.Format("Mon 2 Jan 2006 15:04")
}

// Input is a time as a datetime-local input holds it.
func (c clock) Input(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.loc).Format(dateTimeLocal)
}

// Date is a date as a date input holds it.
func (c clock) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.loc).Format(time.DateOnly)
}

const dateTimeLocal = "2006-01-02T15:04"

// customersView is the customer list.
type customersView struct {
	Customers []*fieldops.Customer
	Q         string
	After     string
	Next      string // the cursor of the next page, if any
	Typed     typed
}

// NextURL links to the next page with the same search.
func (v *customersView) NextURL() string {
	q := url.Values{"after": {v.Next}}
	if v.Q != "" {
		q.Set("q", v.Q)
	}
	return "/customers?" + q.Encode()
}

func (s *Server) handleCustomers(w http.ResponseWriter, r *http.Request) {
	s.renderCustomers(w, r, http.StatusOK, nil, typed{})
}

// renderCustomers shows the list; with err, the new-customer form comes
// back with the message and what was typed.
func (s *Server) renderCustomers(w http.ResponseWriter, r *http.Request, status int, err error, t typed) {
	v := &customersView{Q: strings.TrimSpace(r.URL.Query().Get("q")), After: r.URL.Query().Get("after"), Typed: t}
	cs, next, ferr := s.svc.Customers.FindCustomers(r.Context(), fieldops.CustomerFilter{NamePrefix: v.Q, After: v.After})
	if ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	v.Customers, v.Next = cs, next
	page := &view{Title: "Customers", Data: v}
	if err != nil {
		page.Error, page.Field = fieldops.ErrorMessage(err), fieldops.ErrorField(err)
	}
	s.render(w, r, status, "customers", page)
}

// customerUpdate reads the customer form; every field is set, so an
// emptied field is saved empty.
func customerUpdate(r *http.Request) fieldops.CustomerUpdate {
	str := func(k string) *string { v := r.PostFormValue(k); return &v }
	return fieldops.CustomerUpdate{Name: str("name"), Email: str("email"), Phone: str("phone"), Notes: str("notes")}
}

func (s *Server) handleCustomerCreate(w http.ResponseWriter, r *http.Request) {
	c, err := s.svc.Customers.CreateCustomer(r.Context(), customerUpdate(r))
	if err != nil {
		if retype(err) {
			s.renderCustomers(w, r, statusOf(err), err, typedFrom(r, "customer", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	s.back(w, r, fmt.Sprintf("/customers/%d", c.ID), "Customer "+c.Name+" added.")
}

// retype reports whether err is about the input or the record's state, so
// that the form comes back with the message; other errors (refusals,
// records not found, faults) go to the error page.
func retype(err error) bool {
	switch fieldops.ErrorCode(err) {
	case fieldops.EINVALID, fieldops.ECONFLICT:
		return true
	}
	return false
}

func typedFrom(r *http.Request, form string, err error) typed {
	r.ParseForm()
	return typed{form: form, field: fieldops.ErrorField(err), values: r.PostForm}
}

// customerView is one customer's page: details, sites and jobs.
type customerView struct {
	clock
	Customer      *fieldops.Customer
	Sites         []*fieldops.Site
	Jobs          []*fieldops.Job
	MoreJobs      bool
	PropertyTypes []string
	Typed         typed
}

func (s *Server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Customer not found."))
		return
	}
	s.renderCustomer(w, r, id, http.StatusOK, nil, typed{})
}

// renderCustomer shows a customer's page; with err, the form t names
// comes back with the message and what was typed.
func (s *Server) renderCustomer(w http.ResponseWriter, r *http.Request, id int64, status int, err error, t typed) {
	ctx := r.Context()
	c, ferr := s.svc.Customers.FindCustomerByID(ctx, id)
	if ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	v := &customerView{clock: orgClock(ctx), Customer: c, PropertyTypes: fieldops.PropertyTypes, Typed: t}
	if v.Sites, ferr = s.svc.Sites.FindSites(ctx, id); ferr != nil {
		s.fail(w, r, ferr)
		return
	}
	jobs, next, ferr := s.svc.Jobs.FindJobs(ctx, fieldops.JobFilter{CustomerID: id})
	switch fieldops.ErrorCode(ferr) {
	case "":
		v.Jobs, v.MoreJobs = jobs, next != ""
	case fieldops.EFORBIDDEN: // no job.view: the section is left out
	default:
		s.fail(w, r, ferr)
		return
	}
	page := &view{Title: c.Name, Data: v}
	if err != nil {
		page.Error, page.Field = fieldops.ErrorMessage(err), fieldops.ErrorField(err)
	}
	s.render(w, r, status, "customer", page)
}

func (s *Server) handleCustomerUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Customer not found."))
		return
	}
	c, err := s.svc.Customers.UpdateCustomer(r.Context(), id, customerUpdate(r))
	if err != nil {
		if retype(err) {
			s.renderCustomer(w, r, id, statusOf(err), err, typedFrom(r, "customer", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	s.back(w, r, fmt.Sprintf("/customers/%d", id), "Saved "+c.Name+".")
}

func (s *Server) handleCustomerDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Customer not found."))
		return
	}
	if err := s.svc.Customers.DeleteCustomer(r.Context(), id); err != nil {
		if retype(err) {
			s.renderCustomer(w, r, id, statusOf(err), err, typed{form: "delete"})
			return
		}
		s.fail(w, r, err)
		return
	}
	s.back(w, r, "/customers", "Customer deleted; their past jobs stay in the records.")
}

// siteUpdate reads a site form. Every field is set; a coordinate that is
// not a number is refused here, naming the field, before the service
// checks the rest.
func siteUpdate(r *http.Request) (fieldops.SiteUpdate, error) {
	str := func(k string) *string { v := r.PostFormValue(k); return &v }
	u := fieldops.SiteUpdate{Name: str("name"), Address: str("address"), Postcode: str("postcode")}
	if pt := r.PostFormValue("property_type"); pt != "" {
		u.PropertyType = &pt
	}
	for _, c := range []struct {
		field, label, example string
		to                    **float64
	}{
		{"latitude", "Latitude", "53.4808", &u.Latitude},
		{"longitude", "Longitude", "-2.2426", &u.Longitude},
	} {
		raw := strings.TrimSpace(r.PostFormValue(c.field))
		if raw == "" {
			continue // required on create; the service says so
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return u, fieldops.Invalid(c.field, "%s must be a number in degrees, such as %s.", c.label, c.example)
		}
		*c.to = &f
	}
	return u, nil
}

func (s *Server) handleSiteCreate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Customer not found."))
		return
	}
	u, err := siteUpdate(r)
	var site *fieldops.Site
	if err == nil {
		u.CustomerID = id
		site, err = s.svc.Sites.CreateSite(r.Context(), u)
	}
	if err != nil {
		if retype(err) {
			s.renderCustomer(w, r, id, statusOf(err), err, typedFrom(r, "site-new", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	s.back(w, r, fmt.Sprintf("/customers/%d", id), "Site "+site.Address+" added.")
}

func (s *Server) handleSiteUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Site not found."))
		return
	}
	u, err := siteUpdate(r)
	var site *fieldops.Site
	if err == nil {
		site, err = s.svc.Sites.UpdateSite(r.Context(), id, u)
	}
	if err != nil {
		if !retype(err) {
			s.fail(w, r, err)
			return
		}
		// The site's customer page takes the form back.
		old, ferr := s.svc.Sites.FindSiteByID(r.Context(), id)
		if ferr != nil {
			s.fail(w, r, ferr)
			return
		}
		s.renderCustomer(w, r, old.CustomerID, statusOf(err), err, typedFrom(r, fmt.Sprintf("site-%d", id), err))
		return
	}
	s.back(w, r, fmt.Sprintf("/customers/%d", site.CustomerID), "Site "+site.Address+" saved.")
}
