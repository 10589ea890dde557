package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// TestScheduleByRole: the dispatch board is allowed exactly when the role
// holds schedule.view_team, refused with 403 otherwise, and linked from
// the menu for those who may follow the link.
func TestScheduleByRole(t *testing.T) {
	t.Parallel()
	a := withCapacity(t, newApp(t), time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC))
	o := a.mustOrg(t)
	for _, role := range fieldops.AllRoles() {
		allowed := fieldops.RoleGrants(role).Scope(fieldops.FlagScheduleViewTeam) != fieldops.ScopeNone
		want := http.StatusForbidden
		if allowed {
			want = http.StatusOK
		}
		for _, path := range []string{"/schedule", "/schedule?day=2026-11-23"} {
			if code, body, _ := a.do(t, o.client[role], "GET", path, nil); code != want {
				t.Errorf("GET %s as %s = %d, want %d\n%s", path, role, code, want, excerpt(body))
			}
		}
		_, body, _ := a.do(t, o.client[role], "GET", "/", nil)
		if got := strings.Contains(body, `href="/schedule"`); got != allowed {
			t.Errorf("%s: schedule link in the menu = %v, want %v", role, got, allowed)
		}
	}
}

// TestSchedulePage: each job is a block in its engineers' rows, placed by
// the time of day, and jobs without engineers are listed apart.
func TestSchedulePage(t *testing.T) {
	t.Parallel()
	a := withCapacity(t, newApp(t), time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC))
	o := a.mustOrg(t)
	owner := o.ctx[fieldops.RoleOwner]
	name, address, lat, lng := "Acme Lettings", "1 Deansgate, Manchester", 53.4794, -2.2453
	c, err := store.NewCustomerService(a.db).CreateCustomer(owner, fieldops.CustomerUpdate{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	site, err := store.NewSiteService(a.db).CreateSite(owner, fieldops.SiteUpdate{CustomerID: c.ID, Address: &address, Latitude: &lat, Longitude: &lng})
	if err != nil {
		t.Fatal(err)
	}
	jobs := store.NewJobService(a.db)
	book := func(title string, start time.Time, d time.Duration, as ...fieldops.Assignment) *fieldops.Job {
		t.Helper()
		j, err := jobs.CreateJob(owner, fieldops.NewJob{CustomerID: c.ID, SiteID: site.ID, Type: "eicr", Title: title,
			ScheduledStart: start, ScheduledEnd: start.Add(d), Engineers: as})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	eng, mgr := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	// Monday 23 November 2026, London on GMT.
	rewire := book("Rewire kitchen", time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC), 3*time.Hour,
		fieldops.Assignment{UserID: eng, Primary: true}, fieldops.Assignment{UserID: mgr})
	book("Night call-out", time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC), 4*time.Hour, fieldops.Assignment{UserID: mgr, Primary: true})
	book("Unstaffed PAT", time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC), time.Hour)

	// row returns the HTML of the engineer's row of the board.
	row := func(t *testing.T, body string, userID int64) string {
		t.Helper()
		i := strings.Index(body, fmt.Sprintf(`id="engineer-%d"`, userID))
		if i < 0 {
			t.Fatalf("no row for engineer %d\n%s", userID, excerpt(body))
		}
		r := body[i:]
		if j := strings.Index(r[1:], `class="sb-row"`); j >= 0 {
			r = r[:j+1]
		}
		return r
	}

	code, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", "/schedule", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /schedule = %d\n%s", code, excerpt(body))
	}
	for _, want := range []string{"Mon 23 Nov 2026", `href="/schedule?day=2026-11-22"`, `href="/schedule?day=2026-11-24"`} {
		if !strings.Contains(body, want) {
			t.Errorf("board lacks %q", want)
		}
	}
	if strings.Contains(body, "style=") {
		t.Error("the board has an inline style, which the CSP refuses")
	}
	// 09:30 is slot 19; three hours are six slots.
	engRow := row(t, body, eng)
	for _, want := range []string{"Rewire kitchen", fmt.Sprintf(`href="/jobs/%d"`, rewire.ID), "at19 len6", "09:30–12:30", "Acme Lettings", "★ primary"} {
		if !strings.Contains(engRow, want) {
			t.Errorf("engineer's row lacks %q\n%s", want, engRow)
		}
	}
	if strings.Contains(engRow, "Night call-out") {
		t.Error("the manager's job is in the engineer's row")
	}
	mgrRow := row(t, body, mgr)
	if !strings.Contains(mgrRow, "Rewire kitchen") || !strings.Contains(mgrRow, "Night call-out") {
		t.Errorf("manager's row lacks a job\n%s", mgrRow)
	}
	// The night job runs on past midnight: to the end of the day, and
	// on the next day from its start.
	if !strings.Contains(mgrRow, "at44 len4") {
		t.Errorf("the night job is not placed 22:00 to midnight\n%s", mgrRow)
	}
	unassigned := body[strings.Index(body, "<h2>Unassigned</h2>"):]
	if !strings.Contains(unassigned, "Unstaffed PAT") || strings.Contains(unassigned, "Rewire kitchen") {
		t.Errorf("unassigned list is wrong\n%s", unassigned)
	}

	_, body, _ = a.do(t, o.client[fieldops.RoleManager], "GET", "/schedule?day=2026-11-24", nil)
	if r := row(t, body, mgr); !strings.Contains(r, "Night call-out") || !strings.Contains(r, "at0 len4") {
		t.Errorf("the night job is not on the next day from midnight to 02:00\n%s", r)
	}
	if strings.Contains(row(t, body, eng), "Rewire kitchen") {
		t.Error("Monday's job is on Tuesday")
	}

	t.Run("ErrInvalid", func(t *testing.T) {
		if code, body, _ := a.do(t, o.client[fieldops.RoleManager], "GET", "/schedule?day=23-11-2026", nil); code != http.StatusUnprocessableEntity {
			t.Errorf("GET /schedule?day=23-11-2026 = %d, want 422\n%s", code, excerpt(body))
		}
	})
}

// TestSchedulePages: the board shows fifty engineers a page, by name,
// with links to the other pages that keep the day and the name filter,
// and the name filter finds one engineer among many.
func TestSchedulePages(t *testing.T) {
	t.Parallel()
	a := withCapacity(t, newApp(t), time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC))
	o := a.mustOrg(t)
	ctx := t.Context()
	if _, err := a.pool.Exec(ctx, `INSERT INTO users (email, name) SELECT 'pages' || k || '-' || $1::bigint || '@example.co.uk', 'Zed ' || lpad(k::text, 2, '0')
		FROM generate_series(1, 60) k`, o.id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.pool.Exec(ctx, `INSERT INTO memberships (org_id, user_id, role) SELECT $1, id, 'engineer' FROM users WHERE email LIKE 'pages%-' || $1::bigint || '@example.co.uk'`, o.id); err != nil {
		t.Fatal(err)
	}
	c := o.client[fieldops.RoleManager]
	rows := func(body string) int { return strings.Count(body, `<div class="sb-row" id="engineer-`) }

	code, body, _ := a.do(t, c, "GET", "/schedule?day=2026-11-23", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /schedule = %d\n%s", code, excerpt(body))
	}
	// The fixture's members who can check in come first by name; the 60
	// "Zed" engineers after them.
	if got := rows(body); got != fieldops.DefaultSchedulePerPage {
		t.Fatalf("page 1 has %d rows, want %d", got, fieldops.DefaultSchedulePerPage)
	}
	i := strings.Index(body, `id="board-count">Engineers 1–50 of `)
	if i < 0 {
		t.Fatalf("no count of engineers\n%s", excerpt(body))
	}
	var n int
	if _, err := fmt.Sscanf(body[i+len(`id="board-count">Engineers 1–50 of `):], "%d", &n); err != nil || n < 61 || n > 70 {
		t.Fatalf("total engineers = %d, %v", n, err)
	}
	for _, want := range []string{`href="/schedule?day=2026-11-23&amp;page=2" rel="next"`, `<strong aria-current="page">1</strong>`,
		`href="/schedule?day=2026-11-24"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page 1 lacks %s", want)
		}
	}
	_, body, _ = a.do(t, c, "GET", "/schedule?day=2026-11-23&page=2", nil)
	if got := rows(body); got != n-50 {
		t.Errorf("page 2 has %d rows, want %d", got, n-50)
	}
	for _, want := range []string{"Zed 60", `href="/schedule?day=2026-11-23" rel="prev"`, `href="/schedule?day=2026-11-24&amp;page=2"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page 2 lacks %s", want)
		}
	}
	if strings.Contains(body, ">Zed 01<") || strings.Contains(body, `rel="next"`) {
		t.Error("page 2 shows an engineer of page 1 or a next page")
	}
	_, body, _ = a.do(t, c, "GET", "/schedule?day=2026-11-23&name=zed+07", nil)
	if rows(body) != 1 || !strings.Contains(body, "Zed 07") || !strings.Contains(body, "Engineers 1–1 of 1 whose name contains") || strings.Contains(body, `class="pager"`) {
		t.Errorf("name filter: %d rows\n%s", rows(body), excerpt(body))
	}
	_, body, _ = a.do(t, c, "GET", "/schedule?day=2026-11-23&name=nobody", nil)
	if !strings.Contains(body, "No engineer's name contains “nobody”") {
		t.Errorf("no match is not explained\n%s", excerpt(body))
	}
	for _, p := range []string{"0", "two", "-1"} {
		if code, body, _ := a.do(t, c, "GET", "/schedule?page="+p, nil); code != http.StatusUnprocessableEntity || !strings.Contains(body, "The page is a number") {
			t.Errorf("page=%s = %d, want 422 naming the page\n%s", p, code, excerpt(body))
		}
	}
}
