package admin

import (
	"net/http"
	"time"

	"github.com/fieldops/fieldops"
)

// dashboardView is the landing page: the member's jobs this week (an
// engineer sees only theirs; the service decides).
type dashboardView struct {
	Today    []*fieldops.Job
	Week     []*fieldops.Job
	Upcoming []*fieldops.Job
	CanJobs  bool
	// Awaiting are certificates awaiting approval: those the member
	// wrote, or, for a member who approves, all of them.
	Awaiting    []*fieldops.Certificate
	CanAwaiting bool
	Approver    bool
	// Logged are the defects the member logged, newest first.
	Logged    []*fieldops.Defect
	CanLogged bool
	Day       time.Time // the organisation's day, for overdue remedials
}

// Overdue reports whether a defect's remedial is past due.
func (v dashboardView) Overdue(d *fieldops.Defect) bool { return d.Overdue(v.Day) }

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	loc := orgLocation(r)
	now := s.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	v := dashboardView{}
	jobs, _, err := s.svc.Jobs.FindJobs(ctx, fieldops.JobFilter{From: monday, To: monday.AddDate(0, 0, 14), Limit: 200})
	switch fieldops.ErrorCode(err) {
	case "":
		v.CanJobs = true
	case fieldops.EFORBIDDEN:
	default:
		s.fail(w, r, err)
		return
	}
	tomorrow, nextMonday := today.AddDate(0, 0, 1), monday.AddDate(0, 0, 7)
	for _, j := range jobs {
		switch st := j.ScheduledStart.In(loc); {
		case !st.Before(today) && st.Before(tomorrow):
			v.Today = append(v.Today, j)
		case st.Before(nextMonday):
			v.Week = append(v.Week, j)
		default:
			v.Upcoming = append(v.Upcoming, j)
		}
	}
	v.Day = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	if err := s.dashboardWork(r, me, &v); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "dashboard", &view{Title: "Dashboard", Data: v})
}

// dashboardWork fills the member's certificates awaiting approval and the
// defects they logged; a list the member cannot see is left out.
func (s *Server) dashboardWork(r *http.Request, me *signedInMember, v *dashboardView) error {
	ctx := r.Context()
	if s.svc.Certificates != nil {
		f := fieldops.CertificateFilter{Status: "awaiting_approval", CreatedBy: me.member.UserID, Limit: 50}
		if v.Approver = me.grants.Scope(fieldops.FlagCertificateApprove) != fieldops.ScopeNone; v.Approver {
			f.CreatedBy = 0 // what waits for them
		}
		certs, err := s.svc.Certificates.FindCertificates(ctx, f)
		switch fieldops.ErrorCode(err) {
		case "":
			v.Awaiting, v.CanAwaiting = certs, true
		case fieldops.EFORBIDDEN:
		default:
			return err
		}
	}
	if s.svc.Defects != nil {
		defects, err := s.svc.Defects.FindDefects(ctx, fieldops.DefectFilter{LoggedBy: me.member.UserID, Limit: 50})
		switch fieldops.ErrorCode(err) {
		case "":
			v.Logged, v.CanLogged = defects, true
		case fieldops.EFORBIDDEN:
		default:
			return err
		}
	}
	return nil
}
