package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/migrations"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// wantPgError checks that err is a Postgres error with the SQLSTATE and,
// when given, the constraint name.
func wantPgError(tb testing.TB, err error, code, constraint string) {
	tb.Helper()
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		tb.Fatalf("error = %v, want Postgres error %s %s", err, code, constraint)
	}
	if pg.Code != code || (constraint != "" && pg.ConstraintName != constraint) {
		tb.Fatalf("error = %s %q (%s), want %s %q", pg.Code, pg.ConstraintName, pg.Message, code, constraint)
	}
}

// inRolledBackTx runs one statement in a transaction that is rolled back.
func inRolledBackTx(tb testing.TB, e *env, sql string, args ...any) error {
	tb.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, sql, args...)
	return err
}

func hash32(tb testing.TB) []byte {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestPrimaryEngineer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	ctx := context.Background()
	owner, eng, mgr := o.user[fieldops.RoleOwner], o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager]
	primaryOf := func(t *testing.T, jobID int64) int64 {
		t.Helper()
		var uid int64
		if err := e.pool.QueryRow(ctx, `SELECT user_id FROM job_assignments WHERE job_id = $1 AND is_primary`, jobID).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		return uid
	}

	t.Run("SecondPrimary/Err", func(t *testing.T) {
		_, err := e.pool.Exec(ctx, `INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, true, $4)`,
			o.id, o.job.ID, mgr, owner)
		wantPgError(t, err, "23505", "job_assignments_one_primary")
	})
	t.Run("AddSecondEngineer/OK", func(t *testing.T) {
		mustExec(t, e, `INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, false, $4)`,
			o.id, o.job.ID, mgr, owner)
	})
	t.Run("NoPrimaryAtCommit/Err", func(t *testing.T) {
		for name, sql := range map[string]string{
			"Unmark": `UPDATE job_assignments SET is_primary = false WHERE job_id = $1`,
			"Delete": `DELETE FROM job_assignments WHERE job_id = $1 AND is_primary`,
		} {
			tx, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, sql, o.job.ID); err != nil {
				tx.Rollback(ctx)
				t.Fatalf("%s: the check must wait for COMMIT: %v", name, err)
			}
			wantPgError(t, tx.Commit(ctx), "23514", "job_assignments_primary_required")
		}
		if got := primaryOf(t, o.job.ID); got != eng {
			t.Fatalf("primary = %d, want %d", got, eng)
		}
	})
	t.Run("FirstEngineerNotPrimary/Err", func(t *testing.T) {
		j := mustJob(t, e, o.ctx[fieldops.RoleOwner], o.customer.ID, o.site.ID, time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
		_, err := e.pool.Exec(ctx, `INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, false, $4)`,
			o.id, j.ID, eng, owner)
		wantPgError(t, err, "23514", "job_assignments_primary_required")
	})
	t.Run("MovePrimaryInOneTx/OK", func(t *testing.T) {
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, u := range []struct {
			user    int64
			primary bool
		}{{eng, false}, {mgr, true}} {
			if _, err := tx.Exec(ctx, `UPDATE job_assignments SET is_primary = $3 WHERE job_id = $1 AND user_id = $2`,
				o.job.ID, u.user, u.primary); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("moving the primary: %v", err)
		}
		if got := primaryOf(t, o.job.ID); got != mgr {
			t.Fatalf("primary = %d, want %d", got, mgr)
		}
	})
	t.Run("RemoveAllEngineers/OK", func(t *testing.T) {
		mustExec(t, e, `DELETE FROM job_assignments WHERE job_id = $1`, o.job.ID)
	})
}

// TestCrossOrganisationReferences: the composite foreign keys keep every
// row inside its organisation. Each case first inserts the row with
// references of its own organisation (rolled back), to show that only the
// foreign reference is at fault.
func TestCrossOrganisationReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := mustOrg(t, e), mustOrg(t, e)
	owner := func(o *org) int64 { return o.user[fieldops.RoleOwner] }
	eng := func(o *org) int64 { return o.user[fieldops.RoleEngineer] }
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	// A second customer of A with its own site, for a job whose site is
	// another customer's.
	aCust2 := mustCustomer(t, e, a.ctx[fieldops.RoleOwner], "Second Customer")
	aSite2 := mustSite(t, e, a.ctx[fieldops.RoleOwner], aCust2.ID)

	for _, tt := range []struct {
		name       string
		sql        string
		ok, bad    []any
		constraint string
	}{
		{"Job/SiteOfOtherOrg",
			`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
			 VALUES ($1, $2, $3, 'eicr', 'EICR', $4, $5, 60, $6)`,
			[]any{a.id, a.customer.ID, a.site.ID, start, start.Add(time.Hour), owner(a)},
			[]any{a.id, a.customer.ID, b.site.ID, start, start.Add(time.Hour), owner(a)},
			"jobs_org_id_site_id_customer_id_fkey"},
		{"Job/SiteOfOtherCustomer",
			`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
			 VALUES ($1, $2, $3, 'eicr', 'EICR', $4, $5, 60, $6)`,
			[]any{a.id, aCust2.ID, aSite2.ID, start, start.Add(time.Hour), owner(a)},
			[]any{a.id, a.customer.ID, aSite2.ID, start, start.Add(time.Hour), owner(a)},
			"jobs_org_id_site_id_customer_id_fkey"},
		{"Job/MovedToSiteOfOtherCustomer",
			`UPDATE jobs SET site_id = $2 WHERE id = $1`,
			[]any{a.job.ID, a.site.ID},
			[]any{a.job.ID, aSite2.ID},
			"jobs_org_id_site_id_customer_id_fkey"},
		{"Job/CreatorOfOtherOrg",
			`INSERT INTO jobs (org_id, customer_id, site_id, type, title, scheduled_start, scheduled_end, estimated_minutes, created_by)
			 VALUES ($1, $2, $3, 'eicr', 'EICR', $4, $5, 60, $6)`,
			[]any{a.id, a.customer.ID, a.site.ID, start, start.Add(time.Hour), owner(a)},
			[]any{a.id, a.customer.ID, a.site.ID, start, start.Add(time.Hour), owner(b)},
			"jobs_org_id_created_by_fkey"},
		{"Site/CustomerOfOtherOrg",
			`INSERT INTO sites (org_id, customer_id, address, latitude, longitude, created_by) VALUES ($1, $2, '1 High St', 53, -2, $3)`,
			[]any{a.id, a.customer.ID, owner(a)},
			[]any{a.id, b.customer.ID, owner(a)},
			"sites_org_id_customer_id_fkey"},
		{"Customer/CreatorOfOtherOrg",
			`INSERT INTO customers (org_id, name, created_by) VALUES ($1, 'Acme', $2)`,
			[]any{a.id, owner(a)},
			[]any{a.id, owner(b)},
			"customers_org_id_created_by_fkey"},
		{"JobAssignment/MemberOfOtherOrg",
			`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, false, $4)`,
			[]any{a.id, a.job.ID, a.user[fieldops.RoleManager], owner(a)},
			[]any{a.id, a.job.ID, eng(b), owner(a)},
			"job_assignments_org_id_user_id_fkey"},
		{"JobAssignment/JobOfOtherOrg",
			`INSERT INTO job_assignments (org_id, job_id, user_id, is_primary, assigned_by) VALUES ($1, $2, $3, false, $4)`,
			[]any{a.id, a.job.ID, a.user[fieldops.RoleManager], owner(a)},
			[]any{a.id, b.job.ID, a.user[fieldops.RoleManager], owner(a)},
			"job_assignments_org_id_job_id_fkey"},
		{"TimeEntry/JobOfOtherOrg",
			`INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, source) VALUES ($1, $2, $3, now(), 'telegram')`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, b.job.ID, eng(a)},
			"time_entries_org_id_job_id_fkey"},
		{"TimeEntry/MemberOfOtherOrg",
			`INSERT INTO time_entries (org_id, job_id, user_id, check_in_at, source) VALUES ($1, $2, $3, now(), 'telegram')`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, a.job.ID, eng(b)},
			"time_entries_org_id_user_id_fkey"},
		{"Photo/JobOfOtherOrg",
			`INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key) VALUES ($1, $2, $3, $4, 1000, 'image/jpeg', 'p/1.jpg')`,
			[]any{a.id, a.job.ID, eng(a), hash32(t)},
			[]any{a.id, b.job.ID, eng(a), hash32(t)},
			"photos_org_id_job_id_fkey"},
		{"Photo/MemberOfOtherOrg",
			`INSERT INTO photos (org_id, job_id, user_id, sha256, size_bytes, content_type, storage_key) VALUES ($1, $2, $3, $4, 1000, 'image/jpeg', 'p/1.jpg')`,
			[]any{a.id, a.job.ID, eng(a), hash32(t)},
			[]any{a.id, a.job.ID, eng(b), hash32(t)},
			"photos_org_id_user_id_fkey"},
		{"Defect/JobOfOtherOrg",
			`INSERT INTO defects (org_id, job_id, code, description, logged_by) VALUES ($1, $2, 'C3', 'No RCD on sockets', $3)`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, b.job.ID, eng(a)},
			"defects_org_id_job_id_fkey"},
		{"Defect/MemberOfOtherOrg",
			`INSERT INTO defects (org_id, job_id, code, description, logged_by) VALUES ($1, $2, 'C3', 'No RCD on sockets', $3)`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, a.job.ID, eng(b)},
			"defects_org_id_logged_by_fkey"},
		{"Note/JobOfOtherOrg",
			`INSERT INTO notes (org_id, job_id, user_id, body) VALUES ($1, $2, $3, 'Key under the mat')`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, b.job.ID, eng(a)},
			"notes_org_id_job_id_fkey"},
		{"Note/MemberOfOtherOrg",
			`INSERT INTO notes (org_id, job_id, user_id, body) VALUES ($1, $2, $3, 'Key under the mat')`,
			[]any{a.id, a.job.ID, eng(a)},
			[]any{a.id, a.job.ID, eng(b)},
			"notes_org_id_user_id_fkey"},
		{"Invitation/InviterOfOtherOrg",
			`INSERT INTO invitations (org_id, email, role, token_hash, invited_by) VALUES ($1, 'new@example.co.uk', 'engineer', $2, $3)`,
			[]any{a.id, hash32(t), owner(a)},
			[]any{a.id, hash32(t), owner(b)},
			"invitations_org_id_invited_by_fkey"},
		{"Notification/MemberOfOtherOrg",
			`INSERT INTO notifications (org_id, user_id, channel, kind) VALUES ($1, $2, 'telegram', 'job.assigned')`,
			[]any{a.id, eng(a)},
			[]any{a.id, eng(b)},
			"notifications_org_id_user_id_fkey"},
	} {
		t.Run(tt.name+"/Err", func(t *testing.T) {
			if err := inRolledBackTx(t, e, tt.sql, tt.ok...); err != nil {
				t.Fatalf("with references of its own organisation: %v", err)
			}
			wantPgError(t, inRolledBackTx(t, e, tt.sql, tt.bad...), "23503", tt.constraint)
		})
	}
}

// TestAuditLogAppendOnly: the audit log refuses UPDATE, DELETE and
// TRUNCATE, also to the owner of the table.
func TestAuditLogAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := mustOrg(t, e)
	n := auditCount(t, e, o.id)
	for _, tt := range []struct{ name, sql string }{
		{"Update", `UPDATE audit_events SET actor_label = 'someone else' WHERE org_id = $1`},
		{"UpdateChanges", `UPDATE audit_events SET changes = '{}' WHERE org_id = $1 AND seq = 1`},
		{"Delete", `DELETE FROM audit_events WHERE org_id = $1`},
		{"DeleteLast", `DELETE FROM audit_events WHERE org_id = $1 AND seq = (SELECT max(seq) FROM audit_events WHERE org_id = $1)`},
		{"Truncate", `TRUNCATE audit_events`},
		{"TruncateCascade", `TRUNCATE organisations CASCADE`},
	} {
		t.Run(tt.name+"/Err", func(t *testing.T) {
			var args []any
			if tt.name != "Truncate" && tt.name != "TruncateCascade" {
				args = []any{o.id}
			}
			_, err := e.pool.Exec(context.Background(), tt.sql, args...)
			wantPgError(t, err, "42501", "")
			if got := auditCount(t, e, o.id); got != n {
				t.Fatalf("audit events = %d, want %d", got, n)
			}
		})
	}
	if s, err := e.audit.VerifyChain(o.ctx[fieldops.RoleOwner]); err != nil || s != 0 {
		t.Fatalf("VerifyChain = %d, %v", s, err)
	}
}

// migrationCount is the number of embedded migration files: the version
// of a fully migrated database.
func migrationCount(tb testing.TB) int32 {
	tb.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		tb.Fatalf("migrations: %v %v", names, err)
	}
	return int32(len(names))
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	url := storetest.MustDatabaseURL(t)
	want := migrationCount(t)
	for i := range 2 {
		from, to, err := store.Migrate(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		if from != want || to != want {
			t.Fatalf("run %d: Migrate = %d -> %d, want %d -> %d", i+1, from, to, want, want)
		}
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.MustDatabaseURL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	want := migrationCount(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	tos := make([]int32, 3)
	for i := range errs {
		wg.Go(func() { _, tos[i], errs[i] = store.Migrate(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
		if tos[i] != want {
			t.Fatalf("Migrate %d: to = %d, want %d", i, tos[i], want)
		}
	}

	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int
	var version int32
	if err := conn.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != want {
		t.Fatalf("schema_version: %d rows, version %d; want 1 row, version %d", rows, version, want)
	}
	var missing int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL`,
		[]string{"organisations", "audit_events", "job_assignments", "notifications", "scheduler_runs"}).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d tables missing after Migrate", missing)
	}
}
