package admin_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// fieldOrg is an organisation of mustOrg with customers, a site and jobs:
// job is the engineer's (primary), other is nobody's, cancel and remove
// are there to be cancelled and deleted, spare is a customer without jobs.
type fieldOrg struct {
	*org
	customers *store.CustomerService
	sites     *store.SiteService
	jobs      *store.JobService
	customer  *fieldops.Customer
	spare     *fieldops.Customer
	site      *fieldops.Site
	job       *fieldops.Job
	other     *fieldops.Job
	cancel    *fieldops.Job
	remove    *fieldops.Job
}

func ptr[T any](v T) *T { return &v }

// mustFieldOrg makes an organisation with mustOrg and adds the records.
func (a *app) mustFieldOrg(t testing.TB) *fieldOrg {
	t.Helper()
	o := &fieldOrg{org: a.mustOrg(t), customers: store.NewCustomerService(a.db), sites: store.NewSiteService(a.db), jobs: store.NewJobService(a.db)}
	o.customer = o.mustCustomer(t, "Acme Lettings")
	o.spare = o.mustCustomer(t, "Zeta Holdings")
	o.site = o.mustSite(t, o.customer.ID, "12 Princess St, Manchester")
	at := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC) // GMT: the same in London
	o.job = o.mustJob(t, "EICR at 12 Princess St", at, at.Add(3*time.Hour), fieldops.Assignment{UserID: o.user[fieldops.RoleEngineer], Primary: true})
	o.other = o.mustJob(t, "PAT testing at the office", at.AddDate(0, 0, 1), at.AddDate(0, 0, 1).Add(2*time.Hour))
	o.cancel = o.mustJob(t, "Fire alarm service", at.AddDate(0, 0, 2), at.AddDate(0, 0, 2).Add(2*time.Hour))
	o.remove = o.mustJob(t, "Booked by mistake", at.AddDate(0, 0, 3), at.AddDate(0, 0, 3).Add(time.Hour))
	return o
}

func (o *fieldOrg) mustCustomer(t testing.TB, name string) *fieldops.Customer {
	t.Helper()
	c, err := o.customers.CreateCustomer(o.ctx[fieldops.RoleOwner], fieldops.CustomerUpdate{Name: ptr(name), Email: ptr("office@example.co.uk")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (o *fieldOrg) mustSite(t testing.TB, customerID int64, address string) *fieldops.Site {
	t.Helper()
	s, err := o.sites.CreateSite(o.ctx[fieldops.RoleOwner], fieldops.SiteUpdate{CustomerID: customerID, Address: ptr(address),
		Postcode: ptr("M1 4BT"), Latitude: ptr(53.4776), Longitude: ptr(-2.2367)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (o *fieldOrg) mustJob(t testing.TB, title string, start, end time.Time, as ...fieldops.Assignment) *fieldops.Job {
	t.Helper()
	j, err := o.jobs.CreateJob(o.ctx[fieldops.RoleOwner], fieldops.NewJob{CustomerID: o.customer.ID, SiteID: o.site.ID, Type: "eicr",
		Title: title, ScheduledStart: start, ScheduledEnd: end, Engineers: as})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// fieldRoute is one customer, site or job route with the flag that
// decides it.
type fieldRoute struct {
	name   string
	method string
	path   string
	form   url.Values
	flag   fieldops.Flag
	ok     int
}

// fieldRoutes lists the customer, site and job routes for o; destructive
// ones come last, since each role runs them in order.
func fieldRoutes(o *fieldOrg) []fieldRoute {
	c, s, j := fmt.Sprint(o.customer.ID), fmt.Sprint(o.site.ID), fmt.Sprint(o.job.ID)
	eng := fmt.Sprint(o.user[fieldops.RoleEngineer])
	site := url.Values{"name": {"Back office"}, "address": {"14 Princess St, Manchester"}, "postcode": {"m1 4bt"},
		"latitude": {"53.4777"}, "longitude": {"-2.2368"}, "property_type": {"commercial"}}
	window := url.Values{"scheduled_start": {"2027-03-01T10:00"}, "scheduled_end": {"2027-03-01T13:00"}}
	return []fieldRoute{
		{"Customers", "GET", "/customers", nil, fieldops.FlagCustomerView, 200},
		{"CustomersSearch", "GET", "/customers?q=acme", nil, fieldops.FlagCustomerView, 200},
		{"Customer", "GET", "/customers/" + c, nil, fieldops.FlagCustomerView, 200},
		{"Jobs", "GET", "/jobs", nil, fieldops.FlagJobView, 200},
		{"JobsFiltered", "GET", "/jobs?status=scheduled&type=eicr&from=2027-03-01&to=2027-03-31&customer=" + c, nil, fieldops.FlagJobView, 200},
		{"Job", "GET", "/jobs/" + j, nil, fieldops.FlagJobView, 200},
		// The new-job form lists customers and sites (customer.view); it
		// is shown only to those with job.create, and CreateJob decides.
		{"JobNew", "GET", "/jobs/new", nil, fieldops.FlagCustomerView, 200},
		{"JobNewCustomer", "GET", "/jobs/new?customer=" + c, nil, fieldops.FlagCustomerView, 200},
		{"CustomerCreate", "POST", "/customers", url.Values{"name": {"Bright Homes"}, "email": {"hello@bright.example.co.uk"}, "phone": {"0161 496 0001"}}, fieldops.FlagCustomerCreate, 303},
		{"CustomerUpdate", "POST", "/customers/" + c, url.Values{"name": {"Acme Lettings Ltd"}, "email": {"office@example.co.uk"}, "phone": {""}, "notes": {"Keys at reception."}}, fieldops.FlagCustomerEdit, 303},
		{"SiteCreate", "POST", "/customers/" + c + "/sites", site, fieldops.FlagSiteManage, 303},
		{"SiteUpdate", "POST", "/sites/" + s, url.Values{"name": {""}, "address": {"12 Princess Street, Manchester"}, "postcode": {"M1 4BT"},
			"latitude": {"53.4776"}, "longitude": {"-2.2367"}, "property_type": {"rented"}}, fieldops.FlagSiteManage, 303},
		{"JobCreate", "POST", "/jobs", merge(window, url.Values{"customer_id": {c}, "site_id": {s}, "type": {"repair"}, "title": {"Socket repair"},
			"engineer": {eng}, "primary": {eng}}), fieldops.FlagJobCreate, 303},
		{"JobUpdate", "POST", "/jobs/" + j, url.Values{"type": {"eicr"}, "title": {"EICR, 12 Princess St"}, "description": {"Ring first."}, "estimated_minutes": {"150"}}, fieldops.FlagJobEdit, 303},
		{"JobReschedule", "POST", "/jobs/" + j + "/reschedule", window, fieldops.FlagJobSchedule, 303},
		{"JobAssign", "POST", "/jobs/" + j + "/assign", url.Values{"engineer": {eng}, "primary": {eng}}, fieldops.FlagJobAssign, 303},
		{"JobCancel", "POST", fmt.Sprintf("/jobs/%d/cancel", o.cancel.ID), url.Values{}, fieldops.FlagJobEdit, 303},
		{"JobDelete", "POST", fmt.Sprintf("/jobs/%d/delete", o.remove.ID), url.Values{}, fieldops.FlagJobDelete, 303},
		{"CustomerDelete", "POST", fmt.Sprintf("/customers/%d/delete", o.spare.ID), url.Values{}, fieldops.FlagCustomerDelete, 303},
	}
}

func merge(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = append(out[k], x...)
		}
	}
	return out
}

// TestFieldRoutesByRole runs every customer, site and job route as every
// role: allowed exactly when the role's grants hold the flag (any scope:
// the engineer's own customer and job are the ones asked for), refused
// with 403 otherwise.
func TestFieldRoutesByRole(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			t.Parallel()
			o := a.mustFieldOrg(t)
			grants := fieldops.RoleGrants(role)
			for _, rt := range fieldRoutes(o) {
				want := http.StatusForbidden
				if grants.Scope(rt.flag) != fieldops.ScopeNone {
					want = rt.ok
				}
				code, body, resp := a.do(t, o.client[role], rt.method, rt.path, rt.form)
				if code != want {
					t.Errorf("%s: %s %s as %s = %d, want %d\n%s", rt.name, rt.method, rt.path, role, code, want, excerpt(body))
				}
				if code == 303 && strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
					t.Errorf("%s: %s %s as %s redirected to sign-in", rt.name, rt.method, rt.path, role)
				}
			}
		})
	}
}

// TestFieldCrossOrganisation: another organisation's customers, sites and
// jobs are not found, whatever is asked of them, and nothing changes.
func TestFieldCrossOrganisation(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	victim, other := a.mustFieldOrg(t), a.mustFieldOrg(t)
	c, s, j := fmt.Sprint(victim.customer.ID), fmt.Sprint(victim.site.ID), fmt.Sprint(victim.job.ID)
	form := url.Values{"name": {"Mine now"}, "address": {"1 Elsewhere"}, "latitude": {"51.5"}, "longitude": {"-0.1"},
		"title": {"Mine now"}, "type": {"repair"}, "scheduled_start": {"2027-03-01T10:00"}, "scheduled_end": {"2027-03-01T11:00"},
		"engineer": {fmt.Sprint(other.user[fieldops.RoleEngineer])}, "primary": {fmt.Sprint(other.user[fieldops.RoleEngineer])}}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/customers/" + c},
		{"POST", "/customers/" + c},
		{"POST", "/customers/" + c + "/delete"},
		{"POST", "/customers/" + c + "/sites"},
		{"POST", "/sites/" + s},
		{"GET", "/jobs/new?customer=" + c},
		{"GET", "/jobs/" + j},
		{"POST", "/jobs/" + j},
		{"POST", "/jobs/" + j + "/reschedule"},
		{"POST", "/jobs/" + j + "/assign"},
		{"POST", "/jobs/" + j + "/cancel"},
		{"POST", "/jobs/" + j + "/delete"},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			var f url.Values
			if tt.method == "POST" {
				f = form
			}
			code, body, _ := a.do(t, other.client[fieldops.RoleOwner], tt.method, tt.path, f)
			if code != http.StatusNotFound {
				t.Errorf("= %d, want 404\n%s", code, excerpt(body))
			}
			if strings.Contains(body, "Acme Lettings") || strings.Contains(body, "Princess St") {
				t.Errorf("the page shows the other organisation's records\n%s", excerpt(body))
			}
		})
	}
	// A job for the other organisation's customer is refused as bad input.
	code, body, _ := a.do(t, other.client[fieldops.RoleOwner], "POST", "/jobs", merge(form, url.Values{"customer_id": {c}, "site_id": {s}}))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "That customer was not found") {
		t.Errorf("POST /jobs with another organisation's customer = %d\n%s", code, excerpt(body))
	}
	// Nothing of the victim's changed.
	owner := victim.ctx[fieldops.RoleOwner]
	if got, err := victim.customers.FindCustomerByID(owner, victim.customer.ID); err != nil || got.Name != "Acme Lettings" {
		t.Fatalf("victim's customer = %+v, %v", got, err)
	}
	if got, err := victim.jobs.FindJobByID(owner, victim.job.ID); err != nil || got.Title != victim.job.Title || got.Status != "scheduled" ||
		!got.ScheduledStart.Equal(victim.job.ScheduledStart) || len(got.Engineers) != 1 {
		t.Fatalf("victim's job = %+v, %v", got, err)
	}
	if got, err := victim.sites.FindSiteByID(owner, victim.site.ID); err != nil || got.Address != victim.site.Address {
		t.Fatalf("victim's site = %+v, %v", got, err)
	}
}

func TestCustomerPages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	office := o.client[fieldops.RoleOfficeStaff]

	t.Run("Create/OK", func(t *testing.T) {
		code, _, resp := a.do(t, office, "POST", "/customers", url.Values{"name": {"  Bright Homes "}, "email": {"Hello@Bright.example.co.uk"}, "phone": {"0161 496 0001"}, "notes": {"Gate code 1234"}})
		if code != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/customers/") {
			t.Fatalf("create = %d to %q", code, resp.Header.Get("Location"))
		}
		code, body, _ := a.do(t, office, "GET", resp.Header.Get("Location"), nil)
		if code != 200 || !strings.Contains(body, "<h1>Bright Homes</h1>") || !strings.Contains(body, "hello@bright.example.co.uk") || !strings.Contains(body, "Gate code 1234") {
			t.Fatalf("customer page = %d\n%s", code, body)
		}
	})
	t.Run("Create/ErrInvalid", func(t *testing.T) {
		code, body, _ := a.do(t, office, "POST", "/customers", url.Values{"name": {"Typed Name Ltd"}, "email": {"not-an-address"}, "phone": {"0161"}})
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("create with a bad e-mail = %d", code)
		}
		for _, want := range []string{"is not an e-mail address", `value="Typed Name Ltd"`, `value="not-an-address"`, `aria-invalid="true"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the form does not show %q\n%s", want, excerpt(body))
			}
		}
	})
	t.Run("Search/OK", func(t *testing.T) {
		_, body, _ := a.do(t, office, "GET", "/customers?q=ACM", nil)
		if !strings.Contains(body, "Acme Lettings") || strings.Contains(body, "Zeta Holdings") {
			t.Fatalf("search for acm:\n%s", body)
		}
	})
	t.Run("Update/ErrInvalid", func(t *testing.T) {
		code, body, _ := a.do(t, office, "POST", fmt.Sprintf("/customers/%d", o.customer.ID), url.Values{"name": {"Acme Renamed"}, "phone": {"call me"}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Phone number may hold digits") || !strings.Contains(body, `value="Acme Renamed"`) {
			t.Fatalf("update with a bad phone = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Site/OK", func(t *testing.T) {
		form := url.Values{"name": {"Flat 2"}, "address": {"3 Oxford Rd, Manchester"}, "postcode": {"m1 5an"}, "latitude": {"53.4740"}, "longitude": {"-2.2410"}, "property_type": {"hmo"}}
		if code, body, _ := a.do(t, office, "POST", fmt.Sprintf("/customers/%d/sites", o.customer.ID), form); code != 303 {
			t.Fatalf("add site = %d\n%s", code, excerpt(body))
		}
		_, body, _ := a.do(t, office, "GET", fmt.Sprintf("/customers/%d", o.customer.ID), nil)
		for _, want := range []string{"3 Oxford Rd, Manchester", "M1 5AN", "hmo", "https://www.openstreetmap.org/?mlat=53.474000&amp;mlon=-2.241000", "EICR at 12 Princess St"} {
			if !strings.Contains(body, want) {
				t.Errorf("customer page lacks %q", want)
			}
		}
	})
	t.Run("Site/ErrInvalid", func(t *testing.T) {
		form := url.Values{"address": {"5 Typed Lane"}, "latitude": {"north"}, "longitude": {"-2.24"}}
		code, body, _ := a.do(t, office, "POST", fmt.Sprintf("/customers/%d/sites", o.customer.ID), form)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Latitude must be a number") || !strings.Contains(body, `value="5 Typed Lane"`) {
			t.Fatalf("add site with a bad latitude = %d\n%s", code, excerpt(body))
		}
		form = url.Values{"address": {"6 Typed Lane"}, "latitude": {"53.4"}, "longitude": {"-200"}}
		code, body, _ = a.do(t, office, "POST", fmt.Sprintf("/sites/%d", o.site.ID), form)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Longitude must be between -180 and 180") || !strings.Contains(body, `value="6 Typed Lane"`) {
			t.Fatalf("edit site with a bad longitude = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Delete/ErrConflict", func(t *testing.T) {
		code, body, _ := a.do(t, o.client[fieldops.RoleOwner], "POST", fmt.Sprintf("/customers/%d/delete", o.customer.ID), url.Values{})
		if code != http.StatusConflict || !strings.Contains(body, "still to do") {
			t.Fatalf("delete a customer with open jobs = %d\n%s", code, excerpt(body))
		}
	})
	t.Run("Engineer/Own", func(t *testing.T) {
		_, body, _ := a.do(t, o.client[fieldops.RoleEngineer], "GET", "/customers", nil)
		if !strings.Contains(body, "Acme Lettings") || strings.Contains(body, "Zeta Holdings") {
			t.Fatalf("the engineer's customer list:\n%s", body)
		}
		if code, _, _ := a.do(t, o.client[fieldops.RoleEngineer], "GET", fmt.Sprintf("/customers/%d", o.spare.ID), nil); code != http.StatusNotFound {
			t.Fatalf("another customer as the engineer = %d, want 404", code)
		}
	})
}

// TestCustomersMore pages through the list with the More link.
func TestCustomersMore(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustFieldOrg(t)
	for i := 1; i <= 50; i++ {
		o.mustCustomer(t, fmt.Sprintf("Baker %02d", i))
	}
	c := o.client[fieldops.RoleReadOnly]
	_, body, _ := a.do(t, c, "GET", "/customers?q=baker", nil)
	if !strings.Contains(body, "Baker 50") || strings.Contains(body, "Acme Lettings") {
		t.Fatalf("first page:\n%s", body)
	}
	_, body, _ = a.do(t, c, "GET", "/customers", nil)
	if !strings.Contains(body, "Acme Lettings") || !strings.Contains(body, "Baker 49") || strings.Contains(body, "Baker 50") {
		t.Fatalf("first page of all holds the first 50 by name:\n%s", body)
	}
	i := strings.Index(body, `<a href="/customers?after=`)
	if i < 0 {
		t.Fatal("no More link")
	}
	link := body[i+len(`<a href="`):]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	_, body, _ = a.do(t, c, "GET", link, nil)
	if !strings.Contains(body, "Baker 50") || !strings.Contains(body, "Zeta Holdings") || strings.Contains(body, "Acme Lettings") || strings.Contains(body, "/customers?after=") {
		t.Fatalf("second page:\n%s", body)
	}
}
