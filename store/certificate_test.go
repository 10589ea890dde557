package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// certEnv is an organisation with the certificate and defect services.
type certEnv struct {
	*env
	o       *org
	certs   *store.CertificateService
	defects *store.DefectService
	other   *fieldops.Job // a job the engineer is not on
}

func newCertEnv(tb testing.TB) *certEnv {
	tb.Helper()
	e := newEnv(tb)
	o := mustOrg(tb, e)
	c := &certEnv{env: e, o: o, certs: store.NewCertificateService(e.db), defects: store.NewDefectService(e.db)}
	c.other = mustJob(tb, e, o.ctx[fieldops.RoleOwner], o.customer.ID, o.site.ID, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	return c
}

// mustCert creates a certificate as the owner and moves it to status.
func (c *certEnv) mustCert(tb testing.TB, jobID int64, typ, status string) *fieldops.Certificate {
	tb.Helper()
	ctx := c.o.ctx[fieldops.RoleOwner]
	cert, err := c.certs.CreateCertificate(ctx, jobID, typ)
	if err != nil {
		tb.Fatal(err)
	}
	steps := []func() (*fieldops.Certificate, error){
		func() (*fieldops.Certificate, error) { return c.certs.SubmitCertificate(ctx, cert.ID) },
		func() (*fieldops.Certificate, error) { return c.certs.ApproveCertificate(ctx, cert.ID) },
		func() (*fieldops.Certificate, error) {
			return c.certs.IssueCertificate(ctx, cert.ID, fieldops.IssueOptions{})
		},
	}
	for i, st := range fieldops.CertificateStatuses {
		if st == status {
			break
		}
		if cert, err = steps[i](); err != nil {
			tb.Fatal(err)
		}
	}
	if cert.Status != status {
		tb.Fatalf("status = %q, want %q", cert.Status, status)
	}
	return cert
}

func (c *certEnv) status(tb testing.TB, id int64) string {
	tb.Helper()
	var s string
	if err := c.pool.QueryRow(context.Background(), `SELECT status FROM certificates WHERE id = $1`, id).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// want is the outcome a role should get for flag on the engineer's job.
func want(role fieldops.Role, f fieldops.Flag) string {
	if fieldops.RoleGrants(role).Scope(f) == fieldops.ScopeNone {
		return fieldops.EFORBIDDEN
	}
	return ""
}

// TestCertificateByRole runs each method as every role, on the
// engineer's job (allowed by any scope) and, for the engineer, on a job
// they are not on (not found). A refused call changes nothing.
func TestCertificateByRole(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			ctx := o.ctx[role]
			for _, tt := range []struct {
				name string
				flag fieldops.Flag
				from string
				to   string
				call func(cert *fieldops.Certificate) error
			}{
				{"Create", fieldops.FlagCertificateCreate, "", "draft", func(*fieldops.Certificate) error {
					_, err := c.certs.CreateCertificate(ctx, o.job.ID, "eicr")
					return err
				}},
				{"Submit", fieldops.FlagCertificateCreate, "draft", "awaiting_approval", func(cert *fieldops.Certificate) error {
					_, err := c.certs.SubmitCertificate(ctx, cert.ID)
					return err
				}},
				{"Approve", fieldops.FlagCertificateApprove, "awaiting_approval", "approved", func(cert *fieldops.Certificate) error {
					_, err := c.certs.ApproveCertificate(ctx, cert.ID)
					return err
				}},
				{"Issue", fieldops.FlagCertificateIssue, "approved", "issued", func(cert *fieldops.Certificate) error {
					_, err := c.certs.IssueCertificate(ctx, cert.ID, fieldops.IssueOptions{})
					return err
				}},
				{"FindByID", fieldops.FlagCertificateView, "draft", "draft", func(cert *fieldops.Certificate) error {
					got, err := c.certs.FindCertificateByID(ctx, cert.ID)
					if err == nil && got.ID != cert.ID {
						t.Errorf("FindCertificateByID = %d, want %d", got.ID, cert.ID)
					}
					return err
				}},
				{"Find", fieldops.FlagCertificateView, "draft", "draft", func(cert *fieldops.Certificate) error {
					got, err := c.certs.FindCertificates(ctx, fieldops.CertificateFilter{JobID: o.job.ID})
					if err == nil && (len(got) == 0 || got[0].ID != cert.ID) {
						t.Errorf("FindCertificates = %v, want certificate %d first", got, cert.ID)
					}
					return err
				}},
			} {
				code := want(role, tt.flag)
				t.Run(tt.name+"/"+outcome(code), func(t *testing.T) {
					var cert *fieldops.Certificate
					if tt.from != "" {
						cert = c.mustCert(t, o.job.ID, "eicr", tt.from)
					}
					before := snapshot(t, c.env, o.id)
					n := count(t, c.env, `SELECT count(*) FROM certificates WHERE org_id = $1`, o.id)
					err := tt.call(cert)
					wantCode(t, err, code)
					if code != "" {
						if snapshot(t, c.env, o.id) != before || count(t, c.env, `SELECT count(*) FROM certificates WHERE org_id = $1`, o.id) != n {
							t.Error("a refused call changed something")
						}
						if cert != nil && c.status(t, cert.ID) != tt.from {
							t.Errorf("status moved to %q", c.status(t, cert.ID))
						}
						return
					}
					if cert != nil && c.status(t, cert.ID) != tt.to {
						t.Errorf("status = %q, want %q", c.status(t, cert.ID), tt.to)
					}
				})
			}
		})
	}

	t.Run("EngineerOtherJob/ErrNotFound", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleEngineer]
		_, err := c.certs.CreateCertificate(ctx, c.other.ID, "eicr")
		wantCode(t, err, fieldops.ENOTFOUND)
		cert := c.mustCert(t, c.other.ID, "pat", "draft")
		_, err = c.certs.SubmitCertificate(ctx, cert.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		_, err = c.certs.FindCertificateByID(ctx, cert.ID)
		wantCode(t, err, fieldops.ENOTFOUND)
		list, err := c.certs.FindCertificates(ctx, fieldops.CertificateFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range list {
			if x.JobID != o.job.ID {
				t.Errorf("the engineer's list holds certificate %d of job %d", x.ID, x.JobID)
			}
		}
		if c.status(t, cert.ID) != "draft" {
			t.Error("the certificate moved")
		}
	})
	t.Run("EngineerOwnJob/OK", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleEngineer]
		cert, err := c.certs.CreateCertificate(ctx, o.job.ID, "minor_works")
		if err != nil {
			t.Fatal(err)
		}
		if cert.CreatedBy != o.user[fieldops.RoleEngineer] || cert.Status != "draft" || cert.Type != "minor_works" {
			t.Fatalf("certificate = %+v", cert)
		}
		if cert, err = c.certs.SubmitCertificate(ctx, cert.ID); err != nil || cert.SubmittedAt == nil {
			t.Fatalf("submit = %+v, %v", cert, err)
		}
		list, err := c.certs.FindCertificates(ctx, fieldops.CertificateFilter{CreatedBy: o.user[fieldops.RoleEngineer], Status: "awaiting_approval"})
		if err != nil || len(list) != 1 || list[0].ID != cert.ID {
			t.Fatalf("awaiting list = %v, %v", list, err)
		}
	})
}

// TestCertificateStateMachine: each move only from its state, with a
// message that names the state; each move audited with from and to.
func TestCertificateStateMachine(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	ctx := c.o.ctx[fieldops.RoleOwner]
	moves := map[string]func(id int64) (*fieldops.Certificate, error){
		"submit":  func(id int64) (*fieldops.Certificate, error) { return c.certs.SubmitCertificate(ctx, id) },
		"approve": func(id int64) (*fieldops.Certificate, error) { return c.certs.ApproveCertificate(ctx, id) },
		"issue": func(id int64) (*fieldops.Certificate, error) {
			return c.certs.IssueCertificate(ctx, id, fieldops.IssueOptions{})
		},
	}
	from := map[string]string{"submit": "draft", "approve": "awaiting_approval", "issue": "approved"}
	say := map[string]string{"draft": "still a draft", "awaiting_approval": "awaiting approval", "approved": "approved already", "issued": "has been issued"}
	for _, st := range fieldops.CertificateStatuses {
		for move, do := range moves {
			if from[move] == st {
				continue
			}
			t.Run(move+"From_"+st+"/ErrConflict", func(t *testing.T) {
				cert := c.mustCert(t, c.o.job.ID, "eic", st)
				n := auditCount(t, c.env, c.o.id)
				_, err := do(cert.ID)
				wantCode(t, err, fieldops.ECONFLICT)
				if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, say[st]) {
					t.Errorf("message %q does not name the state %q", msg, st)
				}
				if c.status(t, cert.ID) != st || auditCount(t, c.env, c.o.id) != n {
					t.Error("a refused move changed something")
				}
			})
		}
	}
	t.Run("Audit/OK", func(t *testing.T) {
		cert := c.mustCert(t, c.o.job.ID, "eic", "issued")
		rows, err := c.pool.Query(context.Background(), `SELECT action, changes->'status'->>'from', changes->'status'->>'to' FROM audit_events
			WHERE org_id = $1 AND target_type = 'certificate' AND target_id = $2 ORDER BY seq`, c.o.id, fmt.Sprint(cert.ID))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var a string
			var f, to *string
			if err := rows.Scan(&a, &f, &to); err != nil {
				t.Fatal(err)
			}
			s := a + ":"
			if f != nil {
				s += *f
			}
			got = append(got, s+">"+*to)
		}
		want := "certificate.create:>draft certificate.submit:draft>awaiting_approval certificate.approve:awaiting_approval>approved certificate.issue:approved>issued"
		if strings.Join(got, " ") != want {
			t.Fatalf("audit = %v\nwant %s", got, want)
		}
	})
	t.Run("BadType/ErrInvalid", func(t *testing.T) {
		n := count(t, c.env, `SELECT count(*) FROM certificates WHERE org_id = $1`, c.o.id)
		for _, typ := range []string{"", "EICR", "install"} {
			_, err := c.certs.CreateCertificate(ctx, c.o.job.ID, typ)
			wantField(t, err, fieldops.EINVALID, "type")
		}
		if count(t, c.env, `SELECT count(*) FROM certificates WHERE org_id = $1`, c.o.id) != n {
			t.Error("a certificate was written")
		}
	})
	t.Run("CancelledJob/ErrConflict", func(t *testing.T) {
		j := mustJob(t, c.env, ctx, c.o.customer.ID, c.o.site.ID, time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		if _, err := c.jobs.CancelJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		_, err := c.certs.CreateCertificate(ctx, j.ID, "eicr")
		wantCode(t, err, fieldops.ECONFLICT)
	})
}

// notified returns the recipients of a kind of notification about a
// payload key's value, in user id order.
func notified(tb testing.TB, e *env, orgID int64, kind, key string, id int64) []int64 {
	tb.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT user_id FROM notifications WHERE org_id = $1 AND kind = $2 AND (payload->>$3)::bigint = $4
		ORDER BY user_id`, orgID, kind, key, id)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			tb.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// holdersOf lists the members of o whose role grants f, but actor.
func holdersOf(o *org, f fieldops.Flag, actor fieldops.Role) []int64 {
	var out []int64
	for _, r := range fieldops.AllRoles() {
		if r != actor && fieldops.RoleGrants(r).Scope(f) != fieldops.ScopeNone {
			out = append(out, o.user[r])
		}
	}
	// mustOrg adds the roles in order, so user ids ascend with them.
	return out
}

func sameIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCertificateNotifications: a submission tells those who can
// approve, an approval those who can issue, an issue the author; each in
// the transaction of the move.
func TestCertificateNotifications(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	eng, mgr, office := o.ctx[fieldops.RoleEngineer], o.ctx[fieldops.RoleManager], o.ctx[fieldops.RoleOfficeStaff]
	cert, err := c.certs.CreateCertificate(eng, o.job.ID, "eicr")
	if err != nil {
		t.Fatal(err)
	}
	sameTx := func(t *testing.T, kind string) {
		t.Helper()
		if n := count(t, c.env, `SELECT count(*) FROM notifications n WHERE n.org_id = $1 AND n.kind = $2 AND (n.payload->>'certificate_id')::bigint = $3
			AND n.xmin::text <> (SELECT xmin::text FROM certificates WHERE id = $3)`, o.id, kind, cert.ID); n != 0 {
			t.Errorf("%d %s notifications were written outside the move's transaction", n, kind)
		}
	}
	if _, err := c.certs.SubmitCertificate(eng, cert.ID); err != nil {
		t.Fatal(err)
	}
	got, wantIDs := notified(t, c.env, o.id, "certificate.submitted", "certificate_id", cert.ID), holdersOf(o, fieldops.FlagCertificateApprove, fieldops.RoleEngineer)
	if !sameIDs(got, wantIDs) || len(got) == 0 {
		t.Errorf("submitted: told %v, want %v", got, wantIDs)
	}
	sameTx(t, "certificate.submitted")
	if _, err := c.certs.ApproveCertificate(mgr, cert.ID); err != nil {
		t.Fatal(err)
	}
	got, wantIDs = notified(t, c.env, o.id, "certificate.approved", "certificate_id", cert.ID), holdersOf(o, fieldops.FlagCertificateIssue, fieldops.RoleManager)
	if !sameIDs(got, wantIDs) || len(got) == 0 {
		t.Errorf("approved: told %v, want %v", got, wantIDs)
	}
	sameTx(t, "certificate.approved")
	if _, err := c.certs.IssueCertificate(office, cert.ID, fieldops.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := notified(t, c.env, o.id, "certificate.issued", "certificate_id", cert.ID); !sameIDs(got, []int64{o.user[fieldops.RoleEngineer]}) {
		t.Errorf("issued: told %v, want the author", got)
	}
	sameTx(t, "certificate.issued")
}

// TestIssueEICR: the site's next inspection due by property type, by the
// per-job interval and by the inspector's date; the outcome by the
// defects found on the job.
func TestIssueEICR(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	o := c.o
	owner := o.ctx[fieldops.RoleOwner]
	// 23:30 UTC on 31 August 2026 is already 1 September in London.
	c.db.Now = func() time.Time { return time.Date(2026, 8, 31, 23, 30, 0, 0, time.UTC) }
	issue := func(t *testing.T, propertyType string, opt fieldops.IssueOptions, codes ...string) (*fieldops.Certificate, *fieldops.Site) {
		t.Helper()
		s := mustSite(t, c.env, owner, o.customer.ID)
		if _, err := c.sites.UpdateSite(owner, s.ID, fieldops.SiteUpdate{PropertyType: ptr(propertyType)}); err != nil {
			t.Fatal(err)
		}
		j := mustJob(t, c.env, owner, o.customer.ID, s.ID, time.Date(2026, 8, 31, 9, 0, 0, 0, time.UTC))
		for _, code := range codes {
			if _, err := c.defects.LogDefect(owner, j.ID, code, "Observation "+code, ""); err != nil {
				t.Fatal(err)
			}
		}
		cert := c.mustCert(t, j.ID, "eicr", "approved")
		cert, err := c.certs.IssueCertificate(owner, cert.ID, opt)
		if err != nil {
			t.Fatal(err)
		}
		site, err := c.sites.FindSiteByID(owner, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cert, site
	}
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	for _, tt := range []struct {
		propertyType string
		want         string
	}{
		{"owner_occupied", "2036-09-01"},
		{"rented", "2031-09-01"},
		{"hmo", "2031-09-01"},
		{"commercial", "2031-09-01"},
		{"industrial", "2029-09-01"},
		{"caravan", "2029-09-01"},
		{"swimming_pool", "2027-09-01"},
	} {
		t.Run("PropertyType/"+tt.propertyType, func(t *testing.T) {
			cert, site := issue(t, tt.propertyType, fieldops.IssueOptions{})
			if site.NextInspectionDue == nil || site.NextInspectionDue.Format(time.DateOnly) != tt.want {
				t.Fatalf("site next inspection due = %v, want %s", site.NextInspectionDue, tt.want)
			}
			if cert.NextDue == nil || !cert.NextDue.Equal(*site.NextInspectionDue) || cert.Outcome != fieldops.OutcomeSatisfactory {
				t.Fatalf("certificate next due %v, outcome %q", cert.NextDue, cert.Outcome)
			}
		})
	}
	t.Run("IntervalOverride/OK", func(t *testing.T) {
		_, site := issue(t, "owner_occupied", fieldops.IssueOptions{IntervalMonths: 18})
		if got := site.NextInspectionDue.Format(time.DateOnly); got != "2028-03-01" {
			t.Fatalf("next due = %s, want 2028-03-01", got)
		}
	})
	t.Run("LongerThanThePropertyTypeAllows/ErrInvalid", func(t *testing.T) {
		// A rented home is due within 5 years (1 September 2031 here): a
		// longer interval or a later date is refused, the certificate stays
		// approved; the longest allowed is accepted.
		for _, tt := range []struct {
			opt   fieldops.IssueOptions
			field string
		}{
			{fieldops.IssueOptions{IntervalMonths: 61}, "interval_months"},
			{fieldops.IssueOptions{RecommendedDue: ptr(day("2031-09-02"))}, "next_due"},
		} {
			s := mustSite(t, c.env, owner, o.customer.ID)
			if _, err := c.sites.UpdateSite(owner, s.ID, fieldops.SiteUpdate{PropertyType: ptr("rented")}); err != nil {
				t.Fatal(err)
			}
			j := mustJob(t, c.env, owner, o.customer.ID, s.ID, time.Date(2026, 8, 31, 9, 0, 0, 0, time.UTC))
			cert := c.mustCert(t, j.ID, "eicr", "approved")
			_, err := c.certs.IssueCertificate(owner, cert.ID, tt.opt)
			wantField(t, err, fieldops.EINVALID, tt.field)
			if c.status(t, cert.ID) != "approved" {
				t.Error("a refused issue changed the certificate")
			}
		}
		if _, site := issue(t, "rented", fieldops.IssueOptions{RecommendedDue: ptr(day("2031-09-01"))}); site.NextInspectionDue.Format(time.DateOnly) != "2031-09-01" {
			t.Errorf("next due = %v, want 2031-09-01", site.NextInspectionDue)
		}
		if _, site := issue(t, "swimming_pool", fieldops.IssueOptions{IntervalMonths: 12}); site.NextInspectionDue.Format(time.DateOnly) != "2027-09-01" {
			t.Errorf("next due = %v, want 2027-09-01", site.NextInspectionDue)
		}
	})
	t.Run("Recommended/OK", func(t *testing.T) {
		_, site := issue(t, "owner_occupied", fieldops.IssueOptions{RecommendedDue: ptr(day("2029-06-30"))})
		if got := site.NextInspectionDue.Format(time.DateOnly); got != "2029-06-30" {
			t.Fatalf("next due = %s, want the inspector's 2029-06-30", got)
		}
	})
	for _, tt := range []struct {
		codes []string
		want  string
	}{
		{nil, fieldops.OutcomeSatisfactory},
		{[]string{"C3", "C3"}, fieldops.OutcomeSatisfactory},
		{[]string{"C3", "C2"}, fieldops.OutcomeUnsatisfactory},
		{[]string{"FI"}, fieldops.OutcomeUnsatisfactory},
		{[]string{"C1"}, fieldops.OutcomeUnsatisfactory},
	} {
		t.Run("Outcome/"+strings.Join(tt.codes, "+"), func(t *testing.T) {
			cert, _ := issue(t, "rented", fieldops.IssueOptions{}, tt.codes...)
			if cert.Outcome != tt.want {
				t.Fatalf("outcome = %q, want %q", cert.Outcome, tt.want)
			}
		})
	}
	t.Run("NotEICR/OK", func(t *testing.T) {
		cert := c.mustCert(t, o.job.ID, "pat", "issued")
		site, err := c.sites.FindSiteByID(owner, o.site.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cert.NextDue != nil || cert.Outcome != "" || site.NextInspectionDue != nil {
			t.Fatalf("a PAT certificate set next due %v / %v, outcome %q", cert.NextDue, site.NextInspectionDue, cert.Outcome)
		}
	})
	t.Run("BadOptions/ErrInvalid", func(t *testing.T) {
		eicr := c.mustCert(t, o.job.ID, "eicr", "approved")
		pat := c.mustCert(t, o.job.ID, "pat", "approved")
		n := auditCount(t, c.env, o.id)
		for _, tt := range []struct {
			id    int64
			opt   fieldops.IssueOptions
			field string
		}{
			{eicr.ID, fieldops.IssueOptions{IntervalMonths: 121}, "interval_months"},
			{eicr.ID, fieldops.IssueOptions{IntervalMonths: -1}, "interval_months"},
			{eicr.ID, fieldops.IssueOptions{RecommendedDue: ptr(day("2026-09-01"))}, "next_due"},
			{pat.ID, fieldops.IssueOptions{IntervalMonths: 12}, "next_due"},
		} {
			_, err := c.certs.IssueCertificate(owner, tt.id, tt.opt)
			wantField(t, err, fieldops.EINVALID, tt.field)
		}
		if c.status(t, eicr.ID) != "approved" || c.status(t, pat.ID) != "approved" || auditCount(t, c.env, o.id) != n {
			t.Error("a refused issue changed something")
		}
	})
	t.Run("Audit/OK", func(t *testing.T) {
		_, site := issue(t, "caravan", fieldops.IssueOptions{})
		if n := count(t, c.env, `SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'site.next_inspection_due' AND target_id = $2
			AND changes->'next_inspection_due'->>'to' = '2029-09-01'`, o.id, fmt.Sprint(site.ID)); n != 1 {
			t.Fatalf("site audit entries = %d, want 1", n)
		}
	})
}

// TestCertificateTenant: another organisation's certificates are not
// found, whatever is asked, and nothing changes.
func TestCertificateTenant(t *testing.T) {
	t.Parallel()
	c := newCertEnv(t)
	other := mustOrg(t, c.env)
	ctx := other.ctx[fieldops.RoleOwner]
	cert := c.mustCert(t, c.o.job.ID, "eicr", "draft")
	approved := c.mustCert(t, c.o.job.ID, "eicr", "approved")
	before := snapshot(t, c.env, c.o.id)
	_, err := c.certs.CreateCertificate(ctx, c.o.job.ID, "eicr")
	wantCode(t, err, fieldops.ENOTFOUND)
	_, err = c.certs.FindCertificateByID(ctx, cert.ID)
	wantCode(t, err, fieldops.ENOTFOUND)
	_, err = c.certs.SubmitCertificate(ctx, cert.ID)
	wantCode(t, err, fieldops.ENOTFOUND)
	_, err = c.certs.IssueCertificate(ctx, approved.ID, fieldops.IssueOptions{})
	wantCode(t, err, fieldops.ENOTFOUND)
	list, err := c.certs.FindCertificates(ctx, fieldops.CertificateFilter{JobID: c.o.job.ID})
	if err != nil || len(list) != 0 {
		t.Fatalf("other organisation's list = %v, %v", list, err)
	}
	if snapshot(t, c.env, c.o.id) != before || c.status(t, cert.ID) != "draft" || c.status(t, approved.ID) != "approved" {
		t.Error("the other organisation changed something")
	}
}
