package admin_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

// TestJobsEngineerOwn: an engineer's list holds only their jobs, and
// another job's page is not found.
func TestJobsEngineerOwn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	eng := o.client[fieldops.RoleEngineer]
	code, body, _ := a.do(t, eng, "GET", "/jobs", nil)
	if code != 200 || !strings.Contains(body, "EICR at 12 Princess St") {
		t.Fatalf("the engineer's list = %d, without their job\n%s", code, body)
	}
	for _, j := range []*fieldops.Job{o.other, o.cancel, o.remove} {
		if strings.Contains(body, j.Title) {
			t.Errorf("the engineer's list shows %q, which is not theirs", j.Title)
		}
	}
	if strings.Contains(body, `name="engineer"`) {
		t.Error("the engineer filter is shown to an engineer, who cannot see the team")
	}
	if code, _, _ := a.do(t, eng, "GET", fmt.Sprintf("/jobs/%d", o.other.ID), nil); code != http.StatusNotFound {
		t.Fatalf("another job as the engineer = %d, want 404", code)
	}
	code, body, _ = a.do(t, eng, "GET", fmt.Sprintf("/jobs/%d", o.job.ID), nil)
	if code != 200 || strings.Contains(body, `action="/jobs/`+fmt.Sprint(o.job.ID)+`/assign"`) || strings.Contains(body, "Cancel this job") {
		t.Fatalf("their job's page = %d, or shows forms they cannot use\n%s", code, body)
	}
	// The manager's list holds every job.
	_, body, _ = a.do(t, o.client[fieldops.RoleManager], "GET", "/jobs", nil)
	for _, j := range []*fieldops.Job{o.job, o.other, o.cancel, o.remove} {
		if !strings.Contains(body, j.Title) {
			t.Errorf("the manager's list lacks %q", j.Title)
		}
	}
}

// TestJobsFilters narrows the list by status, type, engineer and dates.
func TestJobsFilters(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	if _, err := o.jobs.CancelJob(o.ctx[fieldops.RoleOwner], o.cancel.ID); err != nil {
		t.Fatal(err)
	}
	c := o.client[fieldops.RoleOfficeStaff]
	for _, tt := range []struct {
		query string
		want  []*fieldops.Job
	}{
		{"status=cancelled", []*fieldops.Job{o.cancel}},
		{"engineer=" + fmt.Sprint(o.user[fieldops.RoleEngineer]), []*fieldops.Job{o.job}},
		{"from=2027-03-02&to=2027-03-03", []*fieldops.Job{o.other, o.cancel}},
		{"type=pat", nil},
		{"customer=" + fmt.Sprint(o.spare.ID), nil},
	} {
		t.Run(tt.query, func(t *testing.T) {
			code, body, _ := a.do(t, c, "GET", "/jobs?"+tt.query, nil)
			if code != 200 {
				t.Fatalf("= %d\n%s", code, excerpt(body))
			}
			for _, j := range []*fieldops.Job{o.job, o.other, o.cancel, o.remove} {
				want := false
				for _, w := range tt.want {
					want = want || w == j
				}
				if got := strings.Contains(body, j.Title); got != want {
					t.Errorf("shows %q = %v, want %v", j.Title, got, want)
				}
			}
		})
	}
	t.Run("BadDate/ErrInvalid", func(t *testing.T) {
		code, body, _ := a.do(t, c, "GET", "/jobs?from=yesterday", nil)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "From must be a date") || !strings.Contains(body, `value="yesterday"`) {
			t.Fatalf("= %d\n%s", code, excerpt(body))
		}
	})
}

// TestJobsLater pages through the list with the "Later jobs" link.
func TestJobsLater(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	at := time.Date(2027, 4, 1, 8, 0, 0, 0, time.UTC)
	for i := range 47 { // with the four of mustFieldOrg: 51
		o.mustJob(t, fmt.Sprintf("Survey %02d", i+1), at.Add(time.Duration(i)*time.Hour), at.Add(time.Duration(i)*time.Hour+30*time.Minute))
	}
	c := o.client[fieldops.RoleReadOnly]
	_, body, _ := a.do(t, c, "GET", "/jobs", nil)
	if !strings.Contains(body, "Survey 46") || strings.Contains(body, "Survey 47") {
		t.Fatalf("first page:\n%s", body)
	}
	i := strings.Index(body, `<a href="/jobs?after=`)
	if i < 0 {
		t.Fatal("no Later jobs link")
	}
	link := body[i+len(`<a href="`):]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	_, body, _ = a.do(t, c, "GET", link, nil)
	if !strings.Contains(body, "Survey 47") || strings.Contains(body, "Survey 46") || strings.Contains(body, "Later jobs") {
		t.Fatalf("second page:\n%s", body)
	}
}

// TestJobCreate creates a job through the form: the window is read in the
// organisation's zone, and bad input comes back with what was typed.
func TestJobCreate(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	eng1 := o.user[fieldops.RoleEngineer]
	m, err := a.members.AddMember(o.ctx[fieldops.RoleOwner], fieldops.NewMember{Email: fmt.Sprintf("sam%d@example.co.uk", o.id), Name: "Sam Second", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	eng2 := m.UserID
	m1, err := a.members.FindMemberByID(o.ctx[fieldops.RoleOwner], eng1)
	if err != nil {
		t.Fatal(err)
	}
	mgr := o.client[fieldops.RoleManager]
	base := url.Values{"customer_id": {fmt.Sprint(o.customer.ID)}, "site_id": {fmt.Sprint(o.site.ID)}, "type": {"eicr"},
		"title": {"EICR at 3 Whitworth St"}, "description": {"Landlord certificate."}}

	t.Run("Form/OK", func(t *testing.T) {
		code, body, _ := a.do(t, mgr, "GET", "/jobs/new", nil)
		if code != 200 || !strings.Contains(body, "Acme Lettings") || !strings.Contains(body, `name="customer"`) {
			t.Fatalf("step one = %d\n%s", code, body)
		}
		code, body, _ = a.do(t, mgr, "GET", fmt.Sprintf("/jobs/new?customer=%d", o.customer.ID), nil)
		if code != 200 || !strings.Contains(body, "12 Princess St, Manchester") || !strings.Contains(body, "Sam Second") ||
			!strings.Contains(body, fmt.Sprintf(`name="engineer" value="%d"`, eng1)) {
			t.Fatalf("step two = %d\n%s", code, body)
		}
		// Only those who can check in are offered.
		if strings.Contains(body, fmt.Sprintf(`name="engineer" value="%d"`, o.user[fieldops.RoleAccountant])) {
			t.Error("the accountant is offered as an engineer")
		}
		// Read-only sees no form.
		_, body, _ = a.do(t, o.client[fieldops.RoleReadOnly], "GET", fmt.Sprintf("/jobs/new?customer=%d", o.customer.ID), nil)
		if strings.Contains(body, `action="/jobs"`) {
			t.Error("the form is shown to a member without job.create")
		}
	})
	t.Run("EndBeforeStart/ErrInvalid", func(t *testing.T) {
		form := merge(base, url.Values{"scheduled_start": {"2027-07-01T12:00"}, "scheduled_end": {"2027-07-01T09:00"},
			"engineer": {fmt.Sprint(eng1)}})
		code, body, _ := a.do(t, mgr, "POST", "/jobs", form)
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("end before start = %d, want 422\n%s", code, excerpt(body))
		}
		for _, want := range []string{"The job must end after it starts.", `value="EICR at 3 Whitworth St"`, `value="2027-07-01T12:00"`,
			"Landlord certificate.", fmt.Sprintf(`value="%d" checked`, eng1)} {
			if !strings.Contains(body, want) {
				t.Errorf("the form does not keep %q", want)
			}
		}
	})
	t.Run("NoPrimary/ErrInvalid", func(t *testing.T) {
		form := merge(base, url.Values{"scheduled_start": {"2027-07-01T09:00"}, "scheduled_end": {"2027-07-01T12:00"},
			"engineer": {fmt.Sprint(eng1), fmt.Sprint(eng2)}})
		code, body, _ := a.do(t, mgr, "POST", "/jobs", form)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Mark exactly one engineer as the primary contact") {
			t.Fatalf("two engineers without a primary = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("TwoEngineers/OK", func(t *testing.T) {
		form := merge(base, url.Values{"scheduled_start": {"2027-07-01T09:00"}, "scheduled_end": {"2027-07-01T12:00"},
			"engineer": {fmt.Sprint(eng1), fmt.Sprint(eng2)}, "primary": {fmt.Sprint(eng2)}})
		code, body, resp := a.do(t, mgr, "POST", "/jobs", form)
		if code != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/") {
			t.Fatalf("create = %d to %q\n%s", code, resp.Header.Get("Location"), excerpt(body))
		}
		code, body, _ = a.do(t, mgr, "GET", resp.Header.Get("Location"), nil)
		if code != 200 {
			t.Fatalf("job page = %d", code)
		}
		for _, want := range []string{"<li>" + m1.Name + "</li>", "<li>Sam Second <span class=\"tag\">primary</span></li>", "Acme Lettings", "12 Princess St, Manchester",
			"https://www.openstreetmap.org/?mlat=53.477600", "Thu 1 Jul 2027 09:00–12:00"} {
			if !strings.Contains(body, want) {
				t.Errorf("job page lacks %q", want)
			}
		}
		if strings.Contains(body, m1.Name+" <span class=\"tag\">primary</span>") {
			t.Error("both engineers are shown as primary")
		}
		// 09:00 in London in July is 08:00 UTC.
		var id int64
		fmt.Sscanf(resp.Header.Get("Location"), "/jobs/%d", &id)
		j, err := o.jobs.FindJobByID(o.ctx[fieldops.RoleOwner], id)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2027, 7, 1, 8, 0, 0, 0, time.UTC); !j.ScheduledStart.Equal(want) || j.EstimatedMinutes != 180 {
			t.Fatalf("start = %v, estimate %d; want %v, 180", j.ScheduledStart.UTC(), j.EstimatedMinutes, want)
		}
	})
}

// TestJobPage: the assignment form shows each engineer's day and warns of
// overlaps; the history is shown only with audit.view; the actions change
// the job.
func TestJobPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	eng := o.user[fieldops.RoleEngineer]
	// Overlaps the engineer's 09:00–12:00 job on the same day.
	at := o.job.ScheduledStart.Add(2 * time.Hour)
	clash := o.mustJob(t, "Consumer unit swap", at, at.Add(2*time.Hour))
	path := fmt.Sprintf("/jobs/%d", clash.ID)

	t.Run("Assign/Overlap", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", path, nil)
		if code != 200 {
			t.Fatalf("= %d", code)
		}
		// 3 h booked that day and this job's 2 h against 8 h of working
		// time: 63 %, green.
		m, err := a.members.FindMemberByID(o.ctx[fieldops.RoleOwner], eng)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{m.Name + " is already on &#39;EICR at 12 Princess St&#39; 09:00–12:00", "<td>3 h</td>", "<td>8 h</td>",
			`level-green" title="With this job: 63 %`, `fill="#2563eb"`} {
			if !strings.Contains(body, want) {
				t.Errorf("assignment form lacks %q\n%s", want, body)
			}
		}
		if strings.Contains(body, `id="history"`) {
			t.Error("the manager, without audit.view, is shown the history")
		}
	})
	t.Run("Assign/OK", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleManager], "POST", path+"/assign", url.Values{"engineer": {fmt.Sprint(eng)}})
		if code != 303 {
			t.Fatalf("assign = %d\n%s", code, excerpt(body))
		}
		j, err := o.jobs.FindJobByID(o.ctx[fieldops.RoleOwner], clash.ID)
		if p, ok := j.Primary(); err != nil || !ok || p.UserID != eng || len(j.Engineers) != 1 {
			t.Fatalf("engineers = %+v, %v", j.Engineers, err)
		}
	})
	t.Run("Assign/ErrInvalid", func(t *testing.T) {
		acc := fmt.Sprint(o.user[fieldops.RoleAccountant])
		code, body, _ := a.do(t, o.client[fieldops.RoleManager], "POST", path+"/assign", url.Values{"engineer": {acc}, "primary": {acc}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "cannot be put on a job") {
			t.Fatalf("assign the accountant = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Reschedule/ErrInvalid", func(t *testing.T) {
		form := url.Values{"scheduled_start": {"2027-03-01T15:00"}, "scheduled_end": {"2027-03-01T14:00"}}
		code, body, _ := a.do(t, o.client[fieldops.RoleOfficeStaff], "POST", path+"/reschedule", form)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "The job must end after it starts.") || !strings.Contains(body, `value="2027-03-01T15:00"`) {
			t.Fatalf("reschedule backwards = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Update/ErrInvalid", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleOfficeStaff], "POST", path, url.Values{"type": {"eicr"}, "title": {"  "}, "description": {"Typed text"}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Typed text") {
			t.Fatalf("empty title = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("History/Owner", func(t *testing.T) {
		_, body, _ := a.do(t, o.client[fieldops.RoleOwner], "GET", path, nil)
		for _, want := range []string{`id="history"`, "job.create", "job.assign"} {
			if !strings.Contains(body, want) {
				t.Errorf("the owner's job page lacks %q", want)
			}
		}
	})
	t.Run("Cancel/OK", func(t *testing.T) {
		if code, body, _ := a.do(t, o.client[fieldops.RoleOfficeStaff], "POST", path+"/cancel", url.Values{}); code != 303 {
			t.Fatalf("cancel = %d\n%s", code, excerpt(body))
		}
		_, body, _ := a.do(t, o.client[fieldops.RoleOfficeStaff], "GET", path, nil)
		if !strings.Contains(body, "status-cancelled") || strings.Contains(body, "Cancel this job") {
			t.Fatalf("cancelled job page:\n%s", body)
		}
		code, body, _ := a.do(t, o.client[fieldops.RoleOfficeStaff], "POST", path+"/cancel", url.Values{})
		if code != http.StatusConflict || !strings.Contains(body, "cancelled and cannot be changed") {
			t.Fatalf("cancel again = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Delete/OK", func(t *testing.T) {
		code, _, resp := a.do(t, o.client[fieldops.RoleManager], "POST", path+"/delete", url.Values{})
		if code != 303 || resp.Header.Get("Location") != "/jobs" {
			t.Fatalf("delete = %d to %q", code, resp.Header.Get("Location"))
		}
		if code, _, _ := a.do(t, o.client[fieldops.RoleManager], "GET", path, nil); code != http.StatusNotFound {
			t.Fatalf("deleted job = %d, want 404", code)
		}
	})
}
