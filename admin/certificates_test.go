package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// workOrg is a field organisation with the certificate and defect
// services.
type workOrg struct {
	*fieldOrg
	certs   *store.CertificateService
	defects *store.DefectService
}

func (a *app) mustWorkOrg(t testing.TB) *workOrg {
	t.Helper()
	return &workOrg{fieldOrg: a.mustFieldOrg(t), certs: store.NewCertificateService(a.db), defects: store.NewDefectService(a.db)}
}

// mustCert creates a certificate on the job as the owner and moves it to
// status.
func (o *workOrg) mustCert(t testing.TB, jobID int64, typ, status string) *fieldops.Certificate {
	t.Helper()
	ctx := o.ctx[fieldops.RoleOwner]
	c, err := o.certs.CreateCertificate(ctx, jobID, typ)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range fieldops.CertificateStatuses[1:] {
		if c.Status == status {
			break
		}
		switch st {
		case "awaiting_approval":
			c, err = o.certs.SubmitCertificate(ctx, c.ID)
		case "approved":
			c, err = o.certs.ApproveCertificate(ctx, c.ID)
		case "issued":
			c, err = o.certs.IssueCertificate(ctx, c.ID, fieldops.IssueOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (o *workOrg) mustDefect(t testing.TB, jobID int64, code string) *fieldops.Defect {
	t.Helper()
	d, err := o.defects.LogDefect(o.ctx[fieldops.RoleOwner], jobID, code, "Cracked socket face", "Kitchen")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// workRoutes lists the certificate and defect routes on the engineer's
// job, with records in the state each needs.
func workRoutes(t testing.TB, o *workOrg) []fieldRoute {
	j := fmt.Sprint(o.job.ID)
	draft := o.mustCert(t, o.job.ID, "eicr", "draft")
	awaiting := o.mustCert(t, o.job.ID, "eicr", "awaiting_approval")
	approved := o.mustCert(t, o.job.ID, "eicr", "approved")
	defect := o.mustDefect(t, o.job.ID, "C2")
	return []fieldRoute{
		{"Job", "GET", "/jobs/" + j, nil, fieldops.FlagJobView, 200},
		{"CertificateCreate", "POST", "/jobs/" + j + "/certificates", url.Values{"type": {"eicr"}}, fieldops.FlagCertificateCreate, 303},
		{"CertificateSubmit", "POST", fmt.Sprintf("/certificates/%d/submit", draft.ID), url.Values{}, fieldops.FlagCertificateCreate, 303},
		{"CertificateApprove", "POST", fmt.Sprintf("/certificates/%d/approve", awaiting.ID), url.Values{}, fieldops.FlagCertificateApprove, 303},
		{"CertificateIssue", "POST", fmt.Sprintf("/certificates/%d/issue", approved.ID), url.Values{"interval_months": {"60"}}, fieldops.FlagCertificateIssue, 303},
		{"DefectLog", "POST", "/jobs/" + j + "/defects", url.Values{"code": {"C3"}, "description": {"No labels on the board"}, "location": {"Hall"}}, fieldops.FlagDefectLog, 303},
		{"DefectResolve", "POST", fmt.Sprintf("/defects/%d/resolve", defect.ID), url.Values{"resolution": {"RCD fitted"}}, fieldops.FlagDefectResolve, 303},
	}
}

// TestWorkRoutesByRole runs every certificate and defect route as every
// role: allowed exactly when the role's grants hold the flag (the
// engineer's own job is the one asked about), 403 otherwise; the
// engineer is refused with 404 on a job they are not on.
func TestWorkRoutesByRole(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			t.Parallel()
			o := a.mustWorkOrg(t)
			grants := fieldops.RoleGrants(role)
			for _, rt := range workRoutes(t, o) {
				want := http.StatusForbidden
				if grants.Scope(rt.flag) != fieldops.ScopeNone {
					want = rt.ok
				}
				code, body, resp := a.do(t, o.client[role], rt.method, rt.path, rt.form)
				if code != want {
					t.Errorf("%s: %s %s as %s = %d, want %d\n%s", rt.name, rt.method, rt.path, role, code, want, excerpt(body))
				}
				if code == 303 && !strings.HasPrefix(resp.Header.Get("Location"), fmt.Sprintf("/jobs/%d#", o.job.ID)) {
					t.Errorf("%s as %s went to %q, not the job", rt.name, role, resp.Header.Get("Location"))
				}
				if rt.name == "Job" && code == 200 {
					for section, f := range map[string]fieldops.Flag{`id="certificates"`: fieldops.FlagCertificateView, `id="defects"`: fieldops.FlagDefectView} {
						if got, want := strings.Contains(body, section), grants.Scope(f) != fieldops.ScopeNone; got != want {
							t.Errorf("job page as %s: section %s shown = %v, want %v", role, section, got, want)
						}
					}
					for form, f := range map[string]fieldops.Flag{
						`action="/jobs/` + fmt.Sprint(o.job.ID) + `/certificates"`: fieldops.FlagCertificateCreate,
						`/submit"`:  fieldops.FlagCertificateCreate,
						`/approve"`: fieldops.FlagCertificateApprove,
						`/issue"`:   fieldops.FlagCertificateIssue,
						`action="/jobs/` + fmt.Sprint(o.job.ID) + `/defects"`: fieldops.FlagDefectLog,
						`/resolve"`: fieldops.FlagDefectResolve,
					} {
						if got, want := strings.Contains(body, form), grants.Scope(f) != fieldops.ScopeNone; got != want {
							t.Errorf("job page as %s: form %s shown = %v, want %v", role, form, got, want)
						}
					}
				}
			}
		})
	}
	t.Run("EngineerOtherJob", func(t *testing.T) {
		t.Parallel()
		o := a.mustWorkOrg(t)
		eng := o.client[fieldops.RoleEngineer]
		draft := o.mustCert(t, o.other.ID, "pat", "draft")
		for _, tt := range []struct {
			path string
			form url.Values
		}{
			{fmt.Sprintf("/jobs/%d/certificates", o.other.ID), url.Values{"type": {"pat"}}},
			{fmt.Sprintf("/certificates/%d/submit", draft.ID), url.Values{}},
			{fmt.Sprintf("/jobs/%d/defects", o.other.ID), url.Values{"code": {"C1"}, "description": {"Live conductor"}}},
		} {
			if code, body, _ := a.do(t, eng, "POST", tt.path, tt.form); code != http.StatusNotFound {
				t.Errorf("POST %s as the engineer = %d, want 404\n%s", tt.path, code, excerpt(body))
			}
		}
	})
}

// TestWorkCrossOrganisation: another organisation's jobs, certificates
// and defects are not found, and nothing changes.
func TestWorkCrossOrganisation(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	victim, other := a.mustWorkOrg(t), a.mustWorkOrg(t)
	draft := victim.mustCert(t, victim.job.ID, "eicr", "draft")
	awaiting := victim.mustCert(t, victim.job.ID, "eicr", "awaiting_approval")
	approved := victim.mustCert(t, victim.job.ID, "eicr", "approved")
	defect := victim.mustDefect(t, victim.job.ID, "C2")
	form := url.Values{"type": {"eicr"}, "code": {"C1"}, "description": {"Mine now"}, "resolution": {"Done"}}
	for _, path := range []string{
		fmt.Sprintf("/jobs/%d/certificates", victim.job.ID),
		fmt.Sprintf("/certificates/%d/submit", draft.ID),
		fmt.Sprintf("/certificates/%d/approve", awaiting.ID),
		fmt.Sprintf("/certificates/%d/issue", approved.ID),
		fmt.Sprintf("/jobs/%d/defects", victim.job.ID),
		fmt.Sprintf("/defects/%d/resolve", defect.ID),
	} {
		t.Run(path, func(t *testing.T) {
			code, body, _ := a.do(t, other.client[fieldops.RoleOwner], "POST", path, form)
			if code != http.StatusNotFound {
				t.Errorf("= %d, want 404\n%s", code, excerpt(body))
			}
			if strings.Contains(body, "Princess St") || strings.Contains(body, "Cracked socket") {
				t.Errorf("the page shows the other organisation's records\n%s", excerpt(body))
			}
		})
	}
	owner := victim.ctx[fieldops.RoleOwner]
	for id, want := range map[int64]string{draft.ID: "draft", awaiting.ID: "awaiting_approval", approved.ID: "approved"} {
		if c, err := victim.certs.FindCertificateByID(owner, id); err != nil || c.Status != want {
			t.Errorf("victim's certificate %d = %+v, %v", id, c, err)
		}
	}
	if d, err := victim.defects.FindDefectByID(owner, defect.ID); err != nil || !d.Open() {
		t.Errorf("victim's defect = %+v, %v", d, err)
	}
	if ds, err := victim.defects.FindDefects(owner, fieldops.DefectFilter{JobID: victim.job.ID}); err != nil || len(ds) != 1 {
		t.Errorf("victim's defects = %v, %v", ds, err)
	}
}

// TestWorkFlow: an engineer logs a C1 (the owner is alerted) and writes an
// EICR that a manager approves and the office issues; the dashboards show
// what waits and what was logged.
func TestWorkFlow(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustWorkOrg(t)
	eng, mgr, office := o.client[fieldops.RoleEngineer], o.client[fieldops.RoleManager], o.client[fieldops.RoleOfficeStaff]
	j := fmt.Sprint(o.job.ID)
	bg := context.Background()

	// A C1 alerts the owner at once.
	code, body, _ := a.do(t, eng, "POST", "/jobs/"+j+"/defects", url.Values{"code": {"C1"}, "description": {"Exposed live conductors at the meter"}, "location": {"Hallway"}})
	if code != 303 {
		t.Fatalf("log C1 = %d\n%s", code, excerpt(body))
	}
	var n int
	if err := a.pool.QueryRow(bg, `SELECT count(*) FROM notifications WHERE org_id = $1 AND user_id = $2 AND kind = 'defect.c1'`,
		o.id, o.user[fieldops.RoleOwner]).Scan(&n); err != nil || n != 1 {
		t.Fatalf("owner's C1 alerts = %d, %v", n, err)
	}
	// Bad input comes back with what was typed.
	code, body, _ = a.do(t, eng, "POST", "/jobs/"+j+"/defects", url.Values{"code": {"C9"}, "description": {"Loose cover"}, "location": {"Loft"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Defect code must be one of") || !strings.Contains(body, `value="Loft"`) {
		t.Fatalf("bad code = %d\n%s", code, excerpt(body))
	}

	// The engineer starts and submits an EICR.
	if code, body, _ = a.do(t, eng, "POST", "/jobs/"+j+"/certificates", url.Values{"type": {"eicr"}}); code != 303 {
		t.Fatalf("create = %d\n%s", code, excerpt(body))
	}
	certs, err := o.certs.FindCertificates(o.ctx[fieldops.RoleOwner], fieldops.CertificateFilter{JobID: o.job.ID})
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificates = %v, %v", certs, err)
	}
	id := fmt.Sprint(certs[0].ID)
	// Approving a draft is refused, saying what to do.
	code, body, _ = a.do(t, mgr, "POST", "/certificates/"+id+"/approve", url.Values{})
	if code != http.StatusConflict || !strings.Contains(body, "still a draft") {
		t.Fatalf("approve a draft = %d\n%s", code, excerpt(body))
	}
	if code, body, _ = a.do(t, eng, "POST", "/certificates/"+id+"/submit", url.Values{}); code != 303 {
		t.Fatalf("submit = %d\n%s", code, excerpt(body))
	}
	_, body, _ = a.do(t, eng, "GET", "/", nil)
	for _, want := range []string{"Certificates awaiting approval", "/jobs/" + j + "#certificates", "Defects I logged", "Exposed live conductors at the meter"} {
		if !strings.Contains(body, want) {
			t.Errorf("the engineer's dashboard lacks %q", want)
		}
	}
	_, body, _ = a.do(t, mgr, "GET", "/", nil)
	if !strings.Contains(body, "/jobs/"+j+"#certificates") {
		t.Error("the manager's dashboard does not show the certificate waiting for approval")
	}
	if strings.Contains(body, "Exposed live conductors") {
		t.Error("the manager's dashboard shows defects someone else logged")
	}
	_, body, _ = a.do(t, o.client[fieldops.RoleAccountant], "GET", "/", nil)
	if strings.Contains(body, "Certificates awaiting approval") || strings.Contains(body, "Defects I logged") {
		t.Error("the accountant's dashboard shows certificates or defects")
	}

	if code, body, _ = a.do(t, mgr, "POST", "/certificates/"+id+"/approve", url.Values{}); code != 303 {
		t.Fatalf("approve = %d\n%s", code, excerpt(body))
	}
	// A bad interval comes back on the job page.
	code, body, _ = a.do(t, office, "POST", "/certificates/"+id+"/issue", url.Values{"interval_months": {"500"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "between 1 and 120 months") || !strings.Contains(body, `value="500"`) {
		t.Fatalf("bad interval = %d\n%s", code, excerpt(body))
	}
	code, body, resp := a.do(t, office, "POST", "/certificates/"+id+"/issue", url.Values{"interval_months": {"60"}})
	if code != 303 || resp.Header.Get("Location") != "/jobs/"+j+"#certificates" {
		t.Fatalf("issue = %d to %q\n%s", code, resp.Header.Get("Location"), excerpt(body))
	}
	c, err := o.certs.FindCertificateByID(o.ctx[fieldops.RoleOwner], certs[0].ID)
	if err != nil || c.Status != "issued" || c.Outcome != fieldops.OutcomeUnsatisfactory || c.NextDue == nil {
		t.Fatalf("issued certificate = %+v, %v", c, err)
	}
	site, err := o.sites.FindSiteByID(o.ctx[fieldops.RoleOwner], o.site.ID)
	if err != nil || site.NextInspectionDue == nil || !site.NextInspectionDue.Equal(*c.NextDue) {
		t.Fatalf("site next inspection = %v, %v", site.NextInspectionDue, err)
	}
	var actions []string
	rows, err := a.pool.Query(bg, `SELECT action || ':' || actor_user_id FROM audit_events WHERE org_id = $1 AND target_type = 'certificate' AND target_id = $2 ORDER BY seq`, o.id, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		actions = append(actions, s)
	}
	rows.Close()
	want := fmt.Sprintf("certificate.create:%d certificate.submit:%d certificate.approve:%d certificate.issue:%d",
		o.user[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer], o.user[fieldops.RoleManager], o.user[fieldops.RoleOfficeStaff])
	if strings.Join(actions, " ") != want {
		t.Fatalf("audit = %v\nwant %s", actions, want)
	}
	_, body, _ = a.do(t, o.client[fieldops.RoleReadOnly], "GET", "/jobs/"+j, nil)
	for _, want := range []string{"unsatisfactory", "next inspection", "Exposed live conductors at the meter", "status-issued"} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}

	// The manager resolves the C1.
	ds, err := o.defects.FindDefects(o.ctx[fieldops.RoleOwner], fieldops.DefectFilter{JobID: o.job.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("defects = %v, %v", ds, err)
	}
	code, body, _ = a.do(t, mgr, "POST", fmt.Sprintf("/defects/%d/resolve", ds[0].ID), url.Values{"resolution": {""}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "What was done is required") {
		t.Fatalf("resolve without text = %d\n%s", code, excerpt(body))
	}
	if code, body, _ = a.do(t, mgr, "POST", fmt.Sprintf("/defects/%d/resolve", ds[0].ID), url.Values{"resolution": {"Meter tails made safe"}}); code != 303 {
		t.Fatalf("resolve = %d\n%s", code, excerpt(body))
	}
	_, body, _ = a.do(t, mgr, "GET", "/jobs/"+j, nil)
	if !strings.Contains(body, "Meter tails made safe") {
		t.Error("the job page does not show the resolution")
	}
}
