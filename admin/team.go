package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/fieldops/fieldops"
)

// teamView is the team page.
type teamView struct {
	Members     []*fieldops.Member
	Invitations []*fieldops.Invitation
	Plan        fieldops.Plan
	SeatsUsed   int
	Seats       int
	// NewLink is an invitation link shown once when it could not be
	// e-mailed.
	NewLink string
}

func (s *Server) handleTeam(w http.ResponseWriter, r *http.Request) {
	v, err := s.teamView(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "team", &view{Title: "Team", Data: v})
}

func (s *Server) teamView(r *http.Request) (*teamView, error) {
	ctx := r.Context()
	members, err := s.svc.Members.FindMembers(ctx, fieldops.MemberFilter{})
	if err != nil {
		return nil, err
	}
	invs, err := s.svc.Invitations.FindInvitations(ctx)
	if err != nil {
		return nil, err
	}
	m, _ := memberFrom(ctx)
	plan, err := fieldops.FindPlan(m.org.Plan)
	if err != nil {
		return nil, err
	}
	return &teamView{Members: members, Invitations: invs, Plan: plan,
		SeatsUsed: len(members) + len(invs), Seats: plan.Seats(m.org.ExtraSeats)}, nil
}

// handleInviteCreate invites someone by e-mail; without e-mail the link
// is shown once to pass on.
func (s *Server) handleInviteCreate(w http.ResponseWriter, r *http.Request) {
	role, err := fieldops.ParseRole(r.PostFormValue("role"))
	if err != nil {
		s.teamError(w, r, err)
		return
	}
	ovs, err := parseOverrides(r)
	if err != nil {
		s.teamError(w, r, err)
		return
	}
	inv, token, err := s.svc.Invitations.CreateInvitation(r.Context(), fieldops.NewInvitation{Email: r.PostFormValue("email"), Role: role, Overrides: ovs})
	if err != nil {
		s.teamError(w, r, err)
		return
	}
	s.deliverInvitation(w, r, inv, token, "Invitation sent to "+inv.Email+".")
}

func (s *Server) handleInviteResend(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Invitation not found."))
		return
	}
	inv, token, err := s.svc.Invitations.ResendInvitation(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.deliverInvitation(w, r, inv, token, "A new link was sent to "+inv.Email+"; the old one no longer works.")
}

// deliverInvitation e-mails the link, or shows it once when e-mail is not
// configured or fails.
func (s *Server) deliverInvitation(w http.ResponseWriter, r *http.Request, inv *fieldops.Invitation, token, sent string) {
	link := s.link("/invite/" + token)
	if s.svc.Mailer != nil {
		err := s.svc.Mailer.Send(r.Context(), fieldops.InvitationMail(inv, link))
		if err == nil {
			s.back(w, r, "/team", sent)
			return
		}
		s.logger.Warn("invitation e-mail failed", "invitation", inv.ID, "err", err)
	}
	v, err := s.teamView(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.NewLink = link
	msg := "E-mail is not set up, so send " + inv.Email + " this link yourself. It is shown only now."
	if s.svc.Mailer != nil {
		msg = "The e-mail to " + inv.Email + " could not be sent. Send them this link yourself; it is shown only now."
	}
	s.render(w, r, http.StatusOK, "team", &view{Title: "Team", Flash: msg, Data: v})
}

func (s *Server) handleInviteRevoke(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Invitation not found."))
		return
	}
	if err := s.svc.Invitations.RevokeInvitation(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.back(w, r, "/team", "Invitation withdrawn; its link no longer works.")
}

// teamError shows the team page again with what to change.
func (s *Server) teamError(w http.ResponseWriter, r *http.Request, err error) {
	v, verr := s.teamView(r)
	if verr != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, statusOf(err), "team", &view{Title: "Team", Error: fieldops.ErrorMessage(err), Field: fieldops.ErrorField(err), Data: v})
}

// memberView is one member's page.
type memberView struct {
	Member   *fieldops.Member
	Sessions []*fieldops.Session
	Grid     []overrideRow
	Plan     fieldops.Plan
}

// overrideRow is one flag in the overrides grid: the role's default and
// the member's override, if any.
type overrideRow struct {
	Flag     fieldops.Flag
	Default  fieldops.Scope
	Override string // "", "all", "own" or "none"
}

func (s *Server) handleMember(w http.ResponseWriter, r *http.Request) {
	s.renderMember(w, r, http.StatusOK, "")
}

func (s *Server) renderMember(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	id, ok := pathID(r)
	if !ok {
		s.fail(w, r, fieldops.Errorf(fieldops.ENOTFOUND, "Team member not found."))
		return
	}
	ctx := r.Context()
	mem, err := s.svc.Members.FindMemberByID(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	me, _ := memberFrom(ctx)
	v := memberView{Member: mem}
	if p, err := fieldops.FindPlan(me.org.Plan); err == nil {
		v.Plan = p
	}
	// Sessions are listed only to those who may see them.
	if sessions, err := s.svc.Sessions.FindSessions(ctx, fieldops.SessionFilter{UserID: id}); err == nil {
		v.Sessions = sessions
	}
	def := fieldops.RoleGrants(mem.Role)
	ovs := map[fieldops.Flag]fieldops.Scope{}
	for _, o := range mem.Overrides {
		ovs[o.Flag] = o.Scope
	}
	for _, f := range fieldops.AllFlags() {
		row := overrideRow{Flag: f, Default: def.Scope(f)}
		if sc, ok := ovs[f]; ok {
			row.Override = sc.String()
		}
		v.Grid = append(v.Grid, row)
	}
	s.render(w, r, status, "member", &view{Title: mem.Name, Error: errMsg, Data: v})
}

func (s *Server) handleMemberRole(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	role, err := fieldops.ParseRole(r.PostFormValue("role"))
	if err == nil {
		_, err = s.svc.Members.ChangeRole(r.Context(), id, role)
	}
	if err != nil {
		s.memberError(w, r, err)
		return
	}
	s.back(w, r, fmt.Sprintf("/team/%d", id), "Role changed to "+role.Label()+".")
}

// handleMemberOverrides saves the overrides grid: each flag is "" (the
// role's default), all, own or none.
func (s *Server) handleMemberOverrides(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	ovs, err := parseOverrides(r)
	if err != nil {
		s.memberError(w, r, err)
		return
	}
	if _, err := s.svc.Members.SetOverrides(r.Context(), id, ovs); err != nil {
		s.memberError(w, r, err)
		return
	}
	s.back(w, r, fmt.Sprintf("/team/%d", id), "Permissions saved.")
}

func (s *Server) handleMemberRemove(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	if err := s.svc.Members.RemoveMember(r.Context(), id); err != nil {
		s.memberError(w, r, err)
		return
	}
	s.back(w, r, "/team", "Member removed; all their sessions have ended.")
}

func (s *Server) handleTransferOwnership(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	m, err := s.svc.Members.TransferOwnership(r.Context(), id)
	if err != nil {
		s.memberError(w, r, err)
		return
	}
	s.back(w, r, "/team", m.Name+" is now an Owner.")
}

func (s *Server) handleMemberSessionsRevoke(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	if err := s.svc.Sessions.RevokeUserSessions(r.Context(), id); err != nil {
		s.memberError(w, r, err)
		return
	}
	me, _ := memberFrom(r.Context())
	if id == me.member.UserID {
		s.clearSession(w)
		s.back(w, r, "/signin", "All your sessions have ended.")
		return
	}
	s.back(w, r, fmt.Sprintf("/team/%d", id), "All their sessions have ended.")
}

// handleMemberTwoFactorReset turns a member's two-factor sign-in off
// (they lost their phone); their sessions here end with it. Resetting
// one's own ends the current session too.
func (s *Server) handleMemberTwoFactorReset(w http.ResponseWriter, r *http.Request) {
	id, _ := pathID(r)
	if err := s.svc.Auth.ResetTwoFactor(r.Context(), id); err != nil {
		s.memberError(w, r, err)
		return
	}
	me, _ := memberFrom(r.Context())
	if id == me.member.UserID {
		s.clearSession(w)
		s.back(w, r, "/signin", "Your two-factor sign-in was reset. Sign in again and set it up.")
		return
	}
	s.back(w, r, fmt.Sprintf("/team/%d", id), "Two-factor sign-in was reset; they will set it up again at their next sign-in.")
}

// memberError shows the member page again with what to change; errors
// that mean there is no page to show go to the error page.
func (s *Server) memberError(w http.ResponseWriter, r *http.Request, err error) {
	switch fieldops.ErrorCode(err) {
	case fieldops.ENOTFOUND, fieldops.EUNAUTHORIZED, fieldops.EUNAVAILABLE, fieldops.EINTERNAL:
		s.fail(w, r, err)
		return
	}
	s.renderMember(w, r, statusOf(err), fieldops.ErrorMessage(err))
}

func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// link makes an absolute link from the configured public address.
func (s *Server) link(path string) string {
	base := s.opt.BaseURL
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + path
}

// parseOverrides reads an overrides grid: a field flag.<name> per flag,
// "" for the role's default, else all, own or none.
func parseOverrides(r *http.Request) ([]fieldops.Override, error) {
	if err := r.ParseForm(); err != nil {
		return nil, fieldops.Invalid("overrides", "The form could not be read; reload the page and try again.")
	}
	var ovs []fieldops.Override
	for _, f := range fieldops.AllFlags() {
		v := r.PostForm.Get("flag." + f.String())
		if v == "" {
			continue
		}
		sc, err := fieldops.ParseScope(v)
		if err != nil {
			return nil, err
		}
		ovs = append(ovs, fieldops.Override{Flag: f, Scope: sc})
	}
	return ovs, nil
}
