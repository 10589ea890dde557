package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/admin"
	"github.com/fieldops/fieldops/store"
)

// withCapacity is the test's panel with the capacity service wired in,
// and the clock of both on clock.
func withCapacity(t *testing.T, a *app, clock time.Time) *app {
	t.Helper()
	b := *a
	b.db.Now = func() time.Time { return clock }
	s, err := admin.NewServer(nil, admin.Services{
		Sessions: a.sessions, Auth: a.auth, Orgs: a.orgs, Members: a.members, Jobs: store.NewJobService(a.db),
		Audit: store.NewAuditService(a.db), Invitations: a.invites, Tokens: store.NewAPITokenService(a.db, a.sessions),
		Capacity: store.NewCapacityService(a.db), Mailer: a.mail,
	}, admin.Options{SecureCookies: true, BaseURL: "https://fieldops.example"})
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return clock }
	b.srv = httptest.NewTLSServer(s.Handler())
	t.Cleanup(b.srv.Close)
	return &b
}

// TestCapacityByRole: the capacity pages are allowed exactly when the
// role holds capacity.view, and refused with 403 otherwise.
func TestCapacityByRole(t *testing.T) {
	t.Parallel()
	a := withCapacity(t, newApp(t), time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC))
	o := a.mustOrg(t)
	for _, role := range fieldops.AllRoles() {
		allowed := fieldops.RoleGrants(role).Scope(fieldops.FlagCapacityView) != fieldops.ScopeNone
		for _, path := range []string{"/capacity", "/capacity?week=2026-11-23", "/capacity?near=53.4794,-2.2453", "/capacity/free"} {
			want := http.StatusForbidden
			if allowed {
				want = http.StatusOK
			}
			code, body, _ := a.do(t, o.client[role], "GET", path, nil)
			if code != want {
				t.Errorf("GET %s as %s = %d, want %d\n%s", path, role, code, want, excerpt(body))
			}
		}
		// The menu shows the link to those who may follow it.
		_, body, _ := a.do(t, o.client[role], "GET", "/", nil)
		if got := strings.Contains(body, `href="/capacity"`); got != allowed {
			t.Errorf("%s: capacity link in the menu = %v, want %v", role, got, allowed)
		}
	}
}

// TestCapacityPage: the figures of the board and the free-now list.
func TestCapacityPage(t *testing.T) {
	t.Parallel()
	// Wednesday 25 November 2026, 13:00 in London (GMT).
	a := withCapacity(t, newApp(t), time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC))
	o := a.mustOrg(t)
	owner := o.ctx[fieldops.RoleOwner]
	name, address, lat, lng := "Acme Lettings", "1 Deansgate, Manchester", 53.4794, -2.2453
	c, err := store.NewCustomerService(a.db).CreateCustomer(owner, fieldops.CustomerUpdate{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	site, err := store.NewSiteService(a.db).CreateSite(owner, fieldops.SiteUpdate{CustomerID: c.ID, Address: &address,
		Latitude: &lat, Longitude: &lng})
	if err != nil {
		t.Fatal(err)
	}
	jobs := store.NewJobService(a.db)
	book := func(start time.Time, d time.Duration, who fieldops.Role) {
		t.Helper()
		if _, err := jobs.CreateJob(owner, fieldops.NewJob{CustomerID: c.ID, SiteID: site.ID, Type: "eicr", Title: "EICR",
			ScheduledStart: start, ScheduledEnd: start.Add(d), Engineers: []fieldops.Assignment{{UserID: o.user[who], Primary: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	// The engineer: 3 h on Monday (62.5 % of 8 h is 37.5 %: green) and on
	// a job now; the manager: 8 h finished this morning in Manchester.
	book(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), 3*time.Hour, fieldops.RoleEngineer)
	book(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), 2*time.Hour, fieldops.RoleEngineer)
	book(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), 4*time.Hour, fieldops.RoleManager)

	code, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", "/capacity?week=2026-11-26", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /capacity = %d\n%s", code, excerpt(body))
	}
	for _, want := range []string{
		"Week of Mon 23 Nov 2026",
		`href="/capacity?week=2026-11-16"`, `href="/capacity?week=2026-11-30"`,
		"Mon 23 Nov", "Sun 29 Nov",
		`cap-bar green w40"></span></span><span class="cap-h">3.0 / 8.0 h`, // Monday: 37.5 % → bar 40
		`cap-bar green w25"></span></span><span class="cap-h">2.0 / 8.0 h`, // Wednesday: 25 %
	} {
		if !strings.Contains(body, want) {
			t.Errorf("capacity page lacks %q", want)
		}
	}
	// The engineer's week: 5 h of 40 h (12.5 % → 13 %, bar 15).
	if !strings.Contains(body, `cap-bar green w15"></span></span><span class="cap-h">5.0 / 40.0 h`) {
		t.Errorf("the engineer's week total is not 5.0 / 40.0 h\n%s", body)
	}
	// The manager's Wednesday: 4 h of 8 h, 50 %.
	if !strings.Contains(body, `cap-bar green w50"></span></span><span class="cap-h">4.0 / 8.0 h`) {
		t.Error("the manager's Wednesday is not 4.0 / 8.0 h")
	}

	// Free now: the engineer is on a job; the manager finished in
	// Manchester; owner and admin have no jobs today.
	code, body, _ = a.do(t, o.client[fieldops.RoleOfficeStaff], "GET", "/capacity/free?near=53.4794,-2.2453", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /capacity/free = %d\n%s", code, excerpt(body))
	}
	free := body[strings.Index(body, "<h2>Free now</h2>"):]
	if strings.Contains(free, "Engineer ") {
		t.Error("the engineer on a job is listed as free")
	}
	iManager, iOwner := strings.Index(free, "Manager "), strings.Index(free, "Owner ")
	if iManager < 0 || iOwner < 0 || iManager > iOwner {
		t.Errorf("free now: want the manager (0.0 km) before the owner (unknown)\n%s", free)
	}
	if !strings.Contains(free, "0.0 km") || !strings.Contains(free, "4.0 h of 8.0 h") {
		t.Errorf("free now lacks the manager's distance and hours\n%s", free)
	}
	if strings.Contains(body, "Week of") {
		t.Error("the free-now page shows the week board")
	}

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, path := range []string{"/capacity?week=23-11-2026", "/capacity?near=north", "/capacity?near=95,0"} {
			if code, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", path, nil); code != http.StatusUnprocessableEntity {
				t.Errorf("GET %s = %d, want 422\n%s", path, code, excerpt(body))
			}
		}
	})
}
