package admin

import (
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/fieldops/fieldops"
)

// signInView is the data of the sign-in pages.
type signInView struct {
	Email     string
	Challenge string
}

func (s *Server) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.authenticate(r, false); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "signin", &view{Title: "Sign in", Data: signInView{}})
}

func (s *Server) signInRequest(r *http.Request) fieldops.SignIn {
	return fieldops.SignIn{Email: r.PostFormValue("email"), Password: r.PostFormValue("password"),
		IP: s.clientIP(r), UserAgent: r.UserAgent()}
}

// handleSignIn is the password step.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	req := s.signInRequest(r)
	res, err := s.svc.Auth.SignIn(r.Context(), req)
	if err != nil {
		s.render(w, r, statusOf(err), "signin", &view{Title: "Sign in", Error: fieldops.ErrorMessage(err), Data: signInView{Email: req.Email}})
		return
	}
	if res.Challenge != "" {
		s.render(w, r, http.StatusOK, "signin_code", &view{Title: "Two-factor code", Data: signInView{Email: req.Email, Challenge: res.Challenge}})
		return
	}
	s.signedInAs(w, r, res)
}

// handleSignInCode is the second step: a TOTP or a recovery code.
func (s *Server) handleSignInCode(w http.ResponseWriter, r *http.Request) {
	challenge := r.PostFormValue("challenge")
	req := s.signInRequest(r)
	res, err := s.svc.Auth.VerifySecondFactor(r.Context(), challenge, r.PostFormValue("code"), req)
	if err != nil {
		// Too many wrong codes end the challenge; otherwise the page offers
		// another try and a way to start again.
		if fieldops.ErrorCode(err) == fieldops.ELIMIT {
			s.render(w, r, statusOf(err), "signin", &view{Title: "Sign in", Error: fieldops.ErrorMessage(err), Data: signInView{Email: req.Email}})
			return
		}
		s.render(w, r, statusOf(err), "signin_code", &view{Title: "Two-factor code", Error: fieldops.ErrorMessage(err),
			Data: signInView{Email: req.Email, Challenge: challenge}})
		return
	}
	s.signedInAs(w, r, res)
}

// signedInAs sets the new session's cookie (a new token at every sign-in)
// and lands the member on enrolment or their dashboard.
func (s *Server) signedInAs(w http.ResponseWriter, r *http.Request, res *fieldops.SignInResult) {
	if res.Session == nil || res.Token == "" {
		// An existing account with two-factor sign-in joined: it signs in
		// with both factors like any other time.
		s.back(w, r, "/signin", "You have joined. Sign in with your password and your two-factor code.")
		return
	}
	s.setSession(w, res.Token)
	if res.MustEnrol {
		s.back(w, r, "/account/2fa", "Your role needs two-factor sign-in. Set it up to continue.")
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.sessionCookie()); err == nil {
		if err := s.svc.Auth.SignOut(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.clearSession(w)
	s.back(w, r, "/signin", "You are signed out.")
}

// enrolView is the enrolment page.
type enrolView struct {
	Secret   string
	QR       template.URL // data: URI of the PNG we made ourselves
	Recovery []string
	Enabled  bool
}

func (s *Server) handleEnrolPage(w http.ResponseWriter, r *http.Request) {
	m, _ := memberFrom(r.Context())
	if m.member.TOTPEnabled {
		s.render(w, r, http.StatusOK, "enrol", &view{Title: "Two-factor sign-in", Data: enrolView{Enabled: true}})
		return
	}
	e, err := s.svc.Auth.BeginEnrolment(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "enrol", &view{Title: "Set up two-factor sign-in", Data: enrolView{
		Secret: e.Secret, QR: qrURL(e.QRPNG)}})
}

func (s *Server) handleEnrolConfirm(w http.ResponseWriter, r *http.Request) {
	codes, err := s.svc.Auth.ConfirmEnrolment(r.Context(), r.PostFormValue("code"))
	if err != nil {
		if fieldops.ErrorCode(err) != fieldops.EINVALID {
			s.fail(w, r, err)
			return
		}
		e, berr := s.svc.Auth.BeginEnrolment(r.Context())
		if berr != nil {
			s.fail(w, r, berr)
			return
		}
		s.render(w, r, statusOf(err), "enrol", &view{Title: "Set up two-factor sign-in", Error: fieldops.ErrorMessage(err),
			Data: enrolView{Secret: e.Secret, QR: qrURL(e.QRPNG)}})
		return
	}
	s.render(w, r, http.StatusOK, "enrol", &view{Title: "Two-factor sign-in is on", Data: enrolView{Enabled: true, Recovery: codes}})
}

// inviteView is the invitation acceptance page.
type inviteView struct {
	Invitation *fieldops.Invitation
	Token      string
	Name       string
}

func (s *Server) handleInvitePage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	inv, err := s.svc.Invitations.FindInvitationByToken(r.Context(), token)
	if err != nil {
		s.render(w, r, statusOf(err), "error", &view{Title: "Invitation", Error: fieldops.ErrorMessage(err)})
		return
	}
	s.render(w, r, http.StatusOK, "invite", &view{Title: "Join " + inv.OrgName, Data: inviteView{Invitation: inv, Token: token}})
}

func (s *Server) handleInviteAccept(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	res, err := s.svc.Invitations.AcceptInvitation(r.Context(), token, fieldops.Accept{
		Name: r.PostFormValue("name"), Password: r.PostFormValue("password"), IP: s.clientIP(r), UserAgent: r.UserAgent()})
	if err != nil {
		inv, ferr := s.svc.Invitations.FindInvitationByToken(r.Context(), token)
		if ferr != nil {
			s.render(w, r, statusOf(ferr), "error", &view{Title: "Invitation", Error: fieldops.ErrorMessage(ferr)})
			return
		}
		s.render(w, r, statusOf(err), "invite", &view{Title: "Join " + inv.OrgName, Error: fieldops.ErrorMessage(err),
			Field: fieldops.ErrorField(err), Data: inviteView{Invitation: inv, Token: token, Name: r.PostFormValue("name")}})
		return
	}
	s.signedInAs(w, r, res)
}

// qrURL is the enrolment QR code as a data: URI. The bytes are a PNG that
// pquerna/otp drew, never user input, so the URL is trusted.
func qrURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}
