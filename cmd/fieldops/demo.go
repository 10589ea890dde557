package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// demoDomain is where the demo accounts live; .test is reserved (RFC 2606)
// so no mail can ever reach a real person.
const demoDomain = "demo.fieldops.test"

// demoSite is a real place around Manchester.
type demoSite struct {
	customer, address, postcode, property string
	lat, lng                              float64
}

var demoSites = []demoSite{
	{"Albert Square Lettings", "Flat 4, 12 Princess Street, Manchester", "M2 4DF", "rented", 53.47889, -2.24275},
	{"Albert Square Lettings", "7 Beech Road, Chorlton-cum-Hardy, Manchester", "M21 9EG", "rented", 53.44240, -2.28170},
	{"Quayside Media Ltd", "Orange Tower, MediaCityUK, Salford", "M50 2HF", "commercial", 53.47234, -2.29733},
	{"Mrs P. Okafor", "23 School Lane, Didsbury, Manchester", "M20 6RD", "owner_occupied", 53.41672, -2.23133},
	{"Ancoats Studios CIC", "Cutting Room Square, Ancoats, Manchester", "M4 6DE", "commercial", 53.48390, -2.22620},
	{"Trafford Fabrication Ltd", "Westinghouse Road, Trafford Park, Manchester", "M17 1PY", "industrial", 53.46760, -2.31960},
}

// runDemo creates the demo organisation once and prints how to sign in.
func (m *Main) runDemo(ctx context.Context, args []string) error {
	cfg, err := m.config("demo", args, nil)
	if err != nil {
		return err
	}
	if _, _, err := store.Migrate(ctx, cfg.Database.URL); err != nil {
		return err
	}
	pool, err := store.OpenPool(ctx, cfg.Database.URL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	db := store.NewDB(pool, cfg.Log.Logger(m.Stderr))
	return db.WithDemoLock(ctx, func() error {
		if id, ok, err := db.FindDemoOrganisation(ctx); err != nil {
			return err
		} else if ok {
			fmt.Fprintf(m.Stdout, "The demo organisation already exists (id %d); nothing changed.\n"+
				"Its sign-in details were printed when it was created.\n", id)
			return nil
		}
		return m.createDemo(ctx, db, cfg)
	})
}

func (m *Main) createDemo(ctx context.Context, db *store.DB, cfg Config) error {
	password := rand.Text()[:20]
	owner, err := db.FindUserByEmail(ctx, "owner@"+demoDomain)
	if fieldops.ErrorCode(err) == fieldops.ENOTFOUND {
		owner, err = db.CreateUser(ctx, "owner@"+demoDomain, "Olivia Owner", password)
	}
	if err != nil {
		return fmt.Errorf("demo owner: %w", err)
	}
	if err := db.SetPassword(ctx, owner.ID, password); err != nil {
		return err
	}
	orgs := store.NewOrganisationService(db)
	members := store.NewMemberService(db)
	customers := store.NewCustomerService(db)
	sites := store.NewSiteService(db)
	jobs := store.NewJobService(db)

	ctx = fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, Channel: fieldops.ChannelCLI})
	org, err := orgs.CreateOrganisation(ctx, fieldops.NewOrganisation{Name: "Demo Electrical & Gas Ltd", Plan: "team", TimeZone: "Europe/London"})
	if err != nil {
		return fmt.Errorf("demo organisation: %w", err)
	}
	ctx = fieldops.NewContext(ctx, fieldops.Actor{UserID: owner.ID, OrgID: org.ID, Channel: fieldops.ChannelCLI})
	// Seven people on the Team plan: five included plus two extra seats.
	if _, err := orgs.ChangePlan(ctx, "team", 2); err != nil {
		return err
	}
	people := []struct {
		role fieldops.Role
		name string
	}{
		{fieldops.RoleAdmin, "Amir Admin"}, {fieldops.RoleManager, "Megan Manager"}, {fieldops.RoleEngineer, "Ethan Engineer"},
		{fieldops.RoleOfficeStaff, "Olu Office"}, {fieldops.RoleReadOnly, "Rita Readonly"}, {fieldops.RoleAccountant, "Ash Accountant"},
	}
	accounts := []string{owner.Email + "\tOwner"}
	ids := map[fieldops.Role]int64{fieldops.RoleOwner: owner.ID}
	for _, p := range people {
		email := strings.ReplaceAll(p.role.String(), "_", "") + "@" + demoDomain
		mem, err := members.AddMember(ctx, fieldops.NewMember{Email: email, Name: p.name, Role: p.role})
		if err != nil {
			return fmt.Errorf("demo member %s: %w", p.role, err)
		}
		if err := db.SetPassword(ctx, mem.UserID, password); err != nil {
			return err
		}
		ids[p.role] = mem.UserID
		accounts = append(accounts, email+"\t"+p.role.Label())
	}

	custIDs := map[string]int64{}
	var siteList []*fieldops.Site
	for _, s := range demoSites {
		if _, ok := custIDs[s.customer]; !ok {
			c, err := customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr(s.customer), Phone: ptr("0161 496 0" + fmt.Sprint(100+len(custIDs)))})
			if err != nil {
				return err
			}
			custIDs[s.customer] = c.ID
		}
		site, err := sites.CreateSite(ctx, fieldops.SiteUpdate{CustomerID: custIDs[s.customer], Address: ptr(s.address),
			Postcode: ptr(s.postcode), Latitude: ptr(s.lat), Longitude: ptr(s.lng), PropertyType: ptr(s.property)})
		if err != nil {
			return err
		}
		siteList = append(siteList, site)
	}

	// A week of work, Monday to Friday of this week in the organisation's
	// time zone: a morning and an afternoon job each day, the bigger ones
	// with the manager as a second engineer.
	loc, err := time.LoadLocation(org.TimeZone)
	if err != nil {
		return err
	}
	now := time.Now().In(loc)
	monday := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -((int(now.Weekday()) + 6) % 7))
	kinds := []struct{ typ, title string }{
		{"eicr", "EICR: landlord five-yearly inspection"}, {"pat", "PAT testing, 40 items"}, {"fire_alarm", "Fire alarm six-monthly service"},
		{"gas_safety", "Landlord gas safety check"}, {"repair", "Tripping RCD on kitchen circuit"}, {"install", "Consumer unit replacement"},
		{"eic", "EIC for new circuit"}, {"minor_works", "Add two sockets in office"}, {"emergency", "No power to ground floor"}, {"eicr", "EICR: commercial unit"},
	}
	n := 0
	for day := range 5 {
		for slot, startHour := range []int{8, 13} {
			site := siteList[n%len(siteList)]
			k := kinds[n%len(kinds)]
			start := monday.AddDate(0, 0, day).Add(time.Duration(startHour) * time.Hour)
			hours := 3 + slot
			engineers := []fieldops.Assignment{{UserID: ids[fieldops.RoleEngineer], Primary: true}}
			if n%3 == 0 {
				engineers = append(engineers, fieldops.Assignment{UserID: ids[fieldops.RoleManager]})
			}
			if _, err := jobs.CreateJob(ctx, fieldops.NewJob{CustomerID: site.CustomerID, SiteID: site.ID, Type: k.typ, Title: k.title,
				ScheduledStart: start, ScheduledEnd: start.Add(time.Duration(hours) * time.Hour), Engineers: engineers}); err != nil {
				return fmt.Errorf("demo job: %w", err)
			}
			n++
		}
	}
	if err := db.MarkDemo(ctx, org.ID); err != nil {
		return err
	}

	fmt.Fprintf(m.Stdout, "Created the demo organisation %q (id %d) on the Team plan with 2 extra seats:\n", org.Name, org.ID)
	fmt.Fprintf(m.Stdout, "%d customers, %d sites around Manchester and %d jobs this week (%d with two engineers).\n\n",
		len(custIDs), len(siteList), n, (n+2)/3)
	fmt.Fprintf(m.Stdout, "Sign in at %s with any of these accounts; the password of all of them is:\n\n    %s\n\n", cfg.HTTP.BaseURL, password)
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    e-mail\trole")
	for _, a := range accounts {
		fmt.Fprintln(tw, "    "+a)
	}
	tw.Flush()
	fmt.Fprintln(m.Stdout, "\nOwners and Admins set up two-factor sign-in (an authenticator app) at their first sign-in.")
	fmt.Fprintln(m.Stdout, "The password is shown only now; keep it. Running demo again changes nothing.")
	return nil
}

func ptr[T any](v T) *T { return &v }
