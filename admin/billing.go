package admin

import (
	"net/http"
	"strconv"

	"github.com/fieldops/fieldops"
)

// billingView is the billing page (billing.view; changes need
// billing.manage).
type billingView struct {
	*fieldops.Billing
	Plans     []fieldops.Plan
	SeatPrice int
}

func (s *Server) handleBilling(w http.ResponseWriter, r *http.Request) {
	s.renderBilling(w, r, http.StatusOK, "")
}

func (s *Server) renderBilling(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	b, err := s.svc.Orgs.FindBilling(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "billing", &view{Title: "Plan and billing", Error: errMsg, Data: billingView{
		Billing: b, Plans: fieldops.Plans(), SeatPrice: fieldops.ExtraSeatPricePence}})
}

func (s *Server) handleBillingChange(w http.ResponseWriter, r *http.Request) {
	extra, err := strconv.Atoi(r.PostFormValue("extra_seats"))
	if err != nil {
		s.renderBilling(w, r, http.StatusUnprocessableEntity, "Extra seats must be a whole number, such as 0 or 2.")
		return
	}
	org, err := s.svc.Orgs.ChangePlan(r.Context(), r.PostFormValue("plan"), extra)
	if err != nil {
		switch fieldops.ErrorCode(err) {
		case fieldops.EINVALID, fieldops.ECONFLICT, fieldops.ELIMIT:
			s.renderBilling(w, r, statusOf(err), fieldops.ErrorMessage(err))
		default:
			s.fail(w, r, err)
		}
		return
	}
	p, _ := fieldops.FindPlan(org.Plan)
	s.back(w, r, "/billing", "Plan changed: "+p.Label()+" with "+strconv.Itoa(org.ExtraSeats)+" extra seats.")
}
