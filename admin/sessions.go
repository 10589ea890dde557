package admin

import (
	"net/http"

	"github.com/fieldops/fieldops"
)

// sessionsView is the sessions page: the member's own, and everyone's for
// those with session.view_all.
type sessionsView struct {
	Mine    []*fieldops.Session
	All     []*fieldops.Session
	Current string
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me, _ := memberFrom(ctx)
	mine, err := s.svc.Sessions.FindSessions(ctx, fieldops.SessionFilter{UserID: me.member.UserID})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := sessionsView{Mine: mine, Current: me.session.ID}
	if all, err := s.svc.Sessions.FindSessions(ctx, fieldops.SessionFilter{}); err == nil {
		v.All = all
	} else if fieldops.ErrorCode(err) != fieldops.EFORBIDDEN {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "sessions", &view{Title: "Sessions", Data: v})
}

func (s *Server) handleSessionRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.Sessions.RevokeSession(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	me, _ := memberFrom(r.Context())
	if id == me.session.ID {
		s.clearSession(w)
		s.back(w, r, "/signin", "That session has ended.")
		return
	}
	s.back(w, r, "/sessions", "Session ended. It stops working on its next request.")
}
