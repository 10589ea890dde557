package admin_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

var nextPageRE = regexp.MustCompile(`href="/audit\?([^"]+)">Older events`)

// BenchmarkAuditPageDeep serves the audit log page of one organisation
// holding 1,000,000 events, filtered by member and action, 20,000 matching
// events deep, through the whole panel (session, permission, query,
// render). It reports the p95 of the requests as p95-ms.
//
//	go test -run '^$' -bench AuditPageDeep -benchtime 200x ./admin/
func BenchmarkAuditPageDeep(b *testing.B) {
	a := newApp(b)
	o := a.mustOrg(b)
	actor := o.user[fieldops.RoleManager]
	actions := []string{"job.update", "job.assign", "job.reschedule", "customer.update", "site.update", "member.role_change", "auth.sign_in"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// 1,000,000 events over two years from the seven members, after the
	// fixture's own events; the chain itself is not the point here.
	if _, err := a.pool.Exec(context.Background(), `
		INSERT INTO audit_events (org_id, seq, at, actor_user_id, actor_label, channel, action, target_type, target_id, changes, hash)
		SELECT $1, 1000 + g, $2::timestamptz + g * interval '63 seconds',
		       (SELECT user_id FROM memberships WHERE org_id = $1 ORDER BY user_id OFFSET (g % 7) LIMIT 1),
		       'bench', 'web', ($3::text[])[1 + (g / 7) % 7], 'job', (g % 5000)::text, '{"title": {"from": "a", "to": "b"}}', '\x00'
		FROM generate_series(1, 1000000) g`, o.id, start, actions); err != nil {
		b.Fatal(err)
	}
	if _, err := a.pool.Exec(context.Background(), `ANALYZE audit_events`); err != nil {
		b.Fatal(err)
	}
	c := o.client[fieldops.RoleOwner]
	q := url.Values{"member": {fmt.Sprint(actor)}, "action": {"job.assign"}}
	// Walk 400 pages of 50 in: 20,000 matching events deep.
	path := "/audit?" + q.Encode()
	for range 400 {
		_, body, _ := a.do(b, c, "GET", path, nil)
		m := nextPageRE.FindStringSubmatch(body)
		if m == nil {
			b.Fatal("no next page")
		}
		path = "/audit?" + html.UnescapeString(m[1])
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		status, body, _ := a.do(b, c, "GET", path, nil)
		took = append(took, time.Since(t0))
		if status != http.StatusOK || !nextPageRE.MatchString(body) {
			b.Fatalf("deep page = %d", status)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkScheduleBoardPage serves the dispatch board (/schedule) for one
// day of 500 engineers, five 90-minute jobs each and a second engineer on
// a tenth of them (about 2,750 blocks that day), with 400 such days in the
// table (1,000,000 jobs), through the whole panel: session, permission,
// the service call and the html/template render; the first, a middle and
// the last page of 50 engineers (about 275 blocks) and a name search
// ("Engineer 25": eleven engineers). It reports the p95 of the requests
// as p95-ms and the page size as KiB.
//
//	go test -run '^$' -bench ScheduleBoardPage -benchtime 100x ./admin/
func BenchmarkScheduleBoardPage(b *testing.B) {
	const engineers, days, perDay = 500, 400, 5
	a := newApp(b)
	o := a.mustOrg(b)
	ctx := context.Background()
	conn, err := a.pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	owner := o.user[fieldops.RoleOwner]
	var customer, site int64
	if err := conn.QueryRow(ctx, `INSERT INTO customers (org_id, name, created_by) VALUES ($1, 'Bench Ltd', $2) RETURNING id`, o.id, owner).Scan(&customer); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `INSERT INTO sites (org_id, customer_id, address, latitude, longitude, created_by)
		VALUES ($1, $2, '1 Deansgate, Manchester', 53.4794, -2.2453, $3) RETURNING id`, o.id, customer, owner).Scan(&site); err != nil {
		b.Fatal(err)
	}
	first := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	// Bulk load as store's bigOrg does: triggers off, the assignments get
	// their copy of the job's window here.
	exec(`SET session_replication_role = replica`)
	exec(`INSERT INTO users (email, name) SELECT 'board' || k || '-' || $1::bigint || '@example.co.uk', 'Engineer ' || lpad(k::text, 3, '0')
		FROM generate_series(1, $2::int) k`, o.id, engineers)
	exec(`INSERT INTO memberships (org_id, user_id, role) SELECT $1, id, 'engineer' FROM users WHERE email LIKE 'board%-' || $1::bigint || '@example.co.uk'`, o.id)
	exec(`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
		SELECT $1, $2, $3, 'repair', 'Job', $4::timestamptz + d * interval '1 day' + (7 + 2 * s) * interval '1 hour',
		       $4::timestamptz + d * interval '1 day' + (7 + 2 * s) * interval '1 hour' + interval '90 minutes', 90, m.user_id
		FROM generate_series(0, $5::int - 1) d
		CROSS JOIN (SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'engineer' AND user_id <> $7) m
		CROSS JOIN generate_series(0, $6::int - 1) s
		ORDER BY d, m.user_id, s`, o.id, customer, site, first, days, perDay, o.user[fieldops.RoleEngineer])
	exec(`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by, scheduled_start, scheduled_end, estimated_minutes, live)
		SELECT org_id, id, created_by, true, $2, scheduled_start, scheduled_end, estimated_minutes, true
		FROM jobs WHERE org_id = $1 AND title = 'Job'`, o.id, owner)
	exec(`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by, scheduled_start, scheduled_end, estimated_minutes, live)
		SELECT j.org_id, j.id, (SELECT min(m.user_id) FROM memberships m WHERE m.org_id = j.org_id AND m.role = 'engineer' AND m.user_id > j.created_by), false, $2,
		       j.scheduled_start, j.scheduled_end, j.estimated_minutes, true
		FROM jobs j WHERE j.org_id = $1 AND j.title = 'Job' AND j.id % 10 = 0
		  AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = j.org_id AND m.role = 'engineer' AND m.user_id > j.created_by)`, o.id, owner)
	exec(`RESET session_replication_role`)
	exec(`VACUUM (FREEZE, ANALYZE) jobs`)
	exec(`VACUUM (FREEZE, ANALYZE) job_assignments`)
	exec(`ANALYZE`)
	day := first.AddDate(0, 0, 7*(days/7/2)+2).Format(time.DateOnly) // a Wednesday mid-way
	c := o.client[fieldops.RoleManager]
	for _, bc := range []struct{ name, path string }{
		{"page=1", "/schedule?day=" + day},
		{"page=6", "/schedule?day=" + day + "&page=6"},
		{"page=last", "/schedule?day=" + day + "&page=11"},
		{"name", "/schedule?day=" + day + "&name=Engineer+25"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			status, body, _ := a.do(b, c, "GET", bc.path, nil)
			if status != http.StatusOK {
				b.Fatalf("board = %d", status)
			}
			blocks := strings.Count(body, `class="sb-job `)
			if blocks < 10 {
				b.Fatalf("the board shows %d blocks", blocks)
			}
			var took []time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				status, _, _ := a.do(b, c, "GET", bc.path, nil)
				took = append(took, time.Since(t0))
				if status != http.StatusOK {
					b.Fatalf("board = %d", status)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(blocks), "blocks")
			b.ReportMetric(float64(len(body))/1024, "KiB")
		})
	}
}
