package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// env is one test's database with the services on it.
type env struct {
	pool      *pgxpool.Pool
	db        *store.DB
	orgs      *store.OrganisationService
	members   *store.MemberService
	customers *store.CustomerService
	sites     *store.SiteService
	jobs      *store.JobService
	audit     *store.AuditService
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	pool := storetest.MustOpenDB(tb)
	db := store.NewDB(pool, nil)
	return &env{
		pool: pool, db: db,
		orgs: store.NewOrganisationService(db), members: store.NewMemberService(db),
		customers: store.NewCustomerService(db), sites: store.NewSiteService(db),
		jobs: store.NewJobService(db), audit: store.NewAuditService(db),
	}
}

var seq atomic.Int64

// org is an organisation on the Team plan with two extra seats and one
// member of each role, a customer, a site and a job assigned to the
// engineer.
type org struct {
	id       int64
	ctx      map[fieldops.Role]context.Context
	user     map[fieldops.Role]int64
	customer *fieldops.Customer
	site     *fieldops.Site
	job      *fieldops.Job
}

func actorCtx(orgID, userID int64) context.Context {
	return fieldops.NewContext(context.Background(), fieldops.Actor{UserID: userID, OrgID: orgID, Channel: fieldops.ChannelWeb})
}

func mustOrg(tb testing.TB, e *env) *org {
	tb.Helper()
	n := seq.Add(1)
	owner, err := e.db.CreateUser(context.Background(), fmt.Sprintf("owner%d@example.co.uk", n), fmt.Sprintf("Owner %d", n), "")
	if err != nil {
		tb.Fatal(err)
	}
	uctx := fieldops.NewContext(context.Background(), fieldops.Actor{UserID: owner.ID, Channel: fieldops.ChannelWeb})
	o, err := e.orgs.CreateOrganisation(uctx, fieldops.NewOrganisation{Name: fmt.Sprintf("Sparks %d Ltd", n), Plan: "team"})
	if err != nil {
		tb.Fatal(err)
	}
	res := &org{id: o.ID, ctx: map[fieldops.Role]context.Context{}, user: map[fieldops.Role]int64{}}
	res.ctx[fieldops.RoleOwner], res.user[fieldops.RoleOwner] = actorCtx(o.ID, owner.ID), owner.ID
	octx := res.ctx[fieldops.RoleOwner]
	if _, err := e.orgs.ChangePlan(octx, "team", 2); err != nil {
		tb.Fatal(err)
	}
	for _, r := range fieldops.AllRoles()[1:] {
		m, err := e.members.AddMember(octx, fieldops.NewMember{Email: fmt.Sprintf("%s%d@example.co.uk", r, n), Name: fmt.Sprintf("%s %d", r.Label(), n), Role: r})
		if err != nil {
			tb.Fatalf("add %s: %v", r, err)
		}
		res.ctx[r], res.user[r] = actorCtx(o.ID, m.UserID), m.UserID
	}
	res.customer = mustCustomer(tb, e, octx, "Acme Lettings")
	res.site = mustSite(tb, e, octx, res.customer.ID)
	res.job = mustJob(tb, e, octx, res.customer.ID, res.site.ID, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		fieldops.Assignment{UserID: res.user[fieldops.RoleEngineer], Primary: true})
	return res
}

func ptr[T any](v T) *T { return &v }

func mustCustomer(tb testing.TB, e *env, ctx context.Context, name string) *fieldops.Customer {
	tb.Helper()
	c, err := e.customers.CreateCustomer(ctx, fieldops.CustomerUpdate{Name: ptr(name), Phone: ptr("0161 496 0000")})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustSite(tb testing.TB, e *env, ctx context.Context, customerID int64) *fieldops.Site {
	tb.Helper()
	s, err := e.sites.CreateSite(ctx, fieldops.SiteUpdate{CustomerID: customerID, Address: ptr("1 Deansgate, Manchester"),
		Postcode: ptr("m3 1aa"), Latitude: ptr(53.4794), Longitude: ptr(-2.2453)})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustJob(tb testing.TB, e *env, ctx context.Context, customerID, siteID int64, start time.Time, as ...fieldops.Assignment) *fieldops.Job {
	tb.Helper()
	j, err := e.jobs.CreateJob(ctx, fieldops.NewJob{CustomerID: customerID, SiteID: siteID, Type: "eicr", Title: "EICR",
		ScheduledStart: start, ScheduledEnd: start.Add(3 * time.Hour), Engineers: as})
	if err != nil {
		tb.Fatal(err)
	}
	return j
}

// count returns the number of rows a query counts.
func count(tb testing.TB, e *env, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := fieldops.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// wantField checks an error's code and the input field it names.
func wantField(tb testing.TB, err error, code, field string) {
	tb.Helper()
	if got := fieldops.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if got := fieldops.ErrorField(err); got != field {
		tb.Fatalf("error field = %q (%v), want %q", got, err, field)
	}
}

// outcome names the subtest of an expected error code: OK, ErrForbidden...
func outcome(code string) string {
	switch code {
	case "":
		return "OK"
	case fieldops.ENOTFOUND:
		return "ErrNotFound"
	case fieldops.EFORBIDDEN:
		return "ErrForbidden"
	case fieldops.EINVALID:
		return "ErrInvalid"
	case fieldops.ECONFLICT:
		return "ErrConflict"
	case fieldops.ELIMIT:
		return "ErrLimit"
	case fieldops.EUNAUTHORIZED:
		return "ErrUnauthorized"
	}
	return "Err" + code
}

// snapshot returns a digest of every row an organisation owns in the
// tables the services write, so that a test can show that a refused call
// changed nothing.
func snapshot(tb testing.TB, e *env, orgID int64) string {
	tb.Helper()
	const digest = `(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t WHERE %s = $1)`
	var parts []string
	for _, tbl := range []string{"organisations", "memberships", "customers", "sites", "jobs", "job_assignments",
		"audit_events", "notifications", "invitations"} {
		col := "org_id"
		if tbl == "organisations" {
			col = "id"
		}
		parts = append(parts, fmt.Sprintf(digest, tbl, col))
	}
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT concat_ws('/', `+strings.Join(parts, ", ")+`)`, orgID).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// auditCount returns the number of audit events of an organisation.
func auditCount(tb testing.TB, e *env, orgID int64) int {
	tb.Helper()
	return count(tb, e, `SELECT count(*) FROM audit_events WHERE org_id = $1`, orgID)
}

// lastAudit returns the newest audit event of an organisation.
func lastAudit(tb testing.TB, e *env, orgID int64) (action string, actor int64, channel string) {
	tb.Helper()
	if err := e.pool.QueryRow(context.Background(), `SELECT action, COALESCE(actor_user_id, 0), channel FROM audit_events
		WHERE org_id = $1 ORDER BY seq DESC LIMIT 1`, orgID).Scan(&action, &actor, &channel); err != nil {
		tb.Fatal(err)
	}
	return action, actor, channel
}

// mustMember adds a member of the role to the organisation of ctx.
func mustMember(tb testing.TB, e *env, ctx context.Context, role fieldops.Role) *fieldops.Member {
	tb.Helper()
	n := seq.Add(1)
	m, err := e.members.AddMember(ctx, fieldops.NewMember{Email: fmt.Sprintf("member%d@example.co.uk", n),
		Name: fmt.Sprintf("%s Member %d", role.Label(), n), Role: role})
	if err != nil {
		tb.Fatalf("add %s: %v", role, err)
	}
	return m
}

// mustExec runs a statement directly on the test's database.
func mustExec(tb testing.TB, e *env, sql string, args ...any) {
	tb.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
