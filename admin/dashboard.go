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
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	loc, err := time.LoadLocation(me.org.TimeZone)
	if err != nil {
		loc = london
	}
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
	s.render(w, r, http.StatusOK, "dashboard", &view{Title: "Dashboard", Data: v})
}
