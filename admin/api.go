package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/fieldops/fieldops"
)

// The JSON API: the same services and checks as the pages.

type apiMember struct {
	UserID      int64             `json:"user_id"`
	Email       string            `json:"email"`
	Name        string            `json:"name"`
	Role        string            `json:"role"`
	Overrides   map[string]string `json:"overrides"`
	TwoFactor   bool              `json:"two_factor"`
	Telegram    bool              `json:"telegram_linked"`
	LastSeenAt  *time.Time        `json:"last_seen_at"`
	MemberSince time.Time         `json:"member_since"`
}

func toAPIMember(m *fieldops.Member) apiMember {
	ovs := map[string]string{}
	for _, o := range m.Overrides {
		ovs[o.Flag.String()] = o.Scope.String()
	}
	return apiMember{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role.String(), Overrides: ovs,
		TwoFactor: m.TOTPEnabled, Telegram: m.TelegramLinked, LastSeenAt: m.LastSeenAt, MemberSince: m.CreatedAt}
}

type apiSession struct {
	ID         string    `json:"id"`
	UserID     int64     `json:"user_id"`
	UserName   string    `json:"user_name"`
	Channel    string    `json:"channel"`
	Device     string    `json:"device"`
	IP         string    `json:"ip"`
	TwoFactor  bool      `json:"two_factor"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	Current    bool      `json:"current"`
}

func (s *Server) handleAPIMe(w http.ResponseWriter, r *http.Request) {
	me, _ := memberFrom(r.Context())
	grants := map[string]string{}
	for _, f := range fieldops.AllFlags() {
		if sc := me.grants.Scope(f); sc != fieldops.ScopeNone {
			grants[f.String()] = sc.String()
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"member":       toAPIMember(me.member),
		"organisation": map[string]any{"id": me.org.ID, "name": me.org.Name, "plan": me.org.Plan, "time_zone": me.org.TimeZone},
		"permissions":  grants,
		"session":      map[string]any{"id": me.session.ID, "channel": me.session.Channel},
	})
}

func (s *Server) handleAPIMembers(w http.ResponseWriter, r *http.Request) {
	members, err := s.svc.Members.FindMembers(r.Context(), fieldops.MemberFilter{})
	if err != nil {
		writeJSONError(w, err)
		return
	}
	out := make([]apiMember, len(members))
	for i, m := range members {
		out[i] = toAPIMember(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out})
}

// handleAPISessions lists the caller's sessions, or the organisation's
// with ?all=1 (session.view_all).
func (s *Server) handleAPISessions(w http.ResponseWriter, r *http.Request) {
	me, _ := memberFrom(r.Context())
	f := fieldops.SessionFilter{UserID: me.member.UserID}
	if r.URL.Query().Get("all") == "1" {
		f.UserID = 0
	}
	sessions, err := s.svc.Sessions.FindSessions(r.Context(), f)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	out := make([]apiSession, len(sessions))
	for i, x := range sessions {
		out[i] = apiSession{ID: x.ID, UserID: x.UserID, UserName: x.UserName, Channel: string(x.Channel), Device: x.Device, IP: x.IP,
			TwoFactor: x.TwoFactor, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, Current: x.ID == me.session.ID}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONError answers with the error's code and its message for the
// user; the cause stays in the log.
func writeJSONError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), map[string]any{"error": map[string]string{
		"code": fieldops.ErrorCode(err), "message": fieldops.ErrorMessage(err), "field": fieldops.ErrorField(err)}})
}
