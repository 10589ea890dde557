package admin

import (
	"net/http"

	"github.com/fieldops/fieldops"
)

// tokensView is the API tokens page: the member's api sessions, and a new
// token shown once.
type tokensView struct {
	Tokens   []*fieldops.Session
	NewToken string
	NewName  string
}

func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	s.renderTokens(w, r, http.StatusOK, "", tokensView{})
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, errMsg string, v tokensView) {
	me, _ := memberFrom(r.Context())
	sessions, err := s.svc.Sessions.FindSessions(r.Context(), fieldops.SessionFilter{UserID: me.member.UserID})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, sess := range sessions {
		if sess.Channel == fieldops.ChannelAPI {
			v.Tokens = append(v.Tokens, sess)
		}
	}
	s.render(w, r, status, "tokens", &view{Title: "API tokens", Error: errMsg, Data: v})
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	_, token, err := s.svc.Tokens.CreateAPIToken(r.Context(), name)
	if err != nil {
		if fieldops.ErrorCode(err) == fieldops.EINVALID || fieldops.ErrorCode(err) == fieldops.ECONFLICT {
			s.renderTokens(w, r, statusOf(err), fieldops.ErrorMessage(err), tokensView{NewName: name})
			return
		}
		s.fail(w, r, err)
		return
	}
	s.renderTokens(w, r, http.StatusOK, "", tokensView{NewToken: token, NewName: name})
}
