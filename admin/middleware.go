package admin

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/fieldops/fieldops"
)

// signedIn options.
const allowUnenrolled = 1

// sessionCookie is the cookie's name: the __Host- prefix binds it to this
// host, https and path /, so it needs Secure.
func (s *Server) sessionCookie() string {
	if s.opt.SecureCookies {
		return "__Host-fieldops"
	}
	return "fieldops"
}

func (s *Server) setSession(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookie(), Value: token, Path: "/", HttpOnly: true,
		Secure: s.opt.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookie(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.opt.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// clientIP is the client's address: the TCP peer, or, when the peer is a
// trusted reverse proxy, the nearest address in X-Forwarded-For that is
// not itself a trusted proxy. Other forwarding headers are ignored.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	ip := peerIP(r)
	if !s.trusted(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a garbled chain: keep the last address we trust to be real
		}
		hop = hop.Unmap()
		if !s.trusted(hop) {
			return hop
		}
		ip = hop
	}
	return ip
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.opt.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// signedInMember is the signed-in member, loaded once per request.
type signedInMember struct {
	session *fieldops.Session
	member  *fieldops.Member
	org     *fieldops.Organisation
	grants  fieldops.Grants
}

type memberKey struct{}

func memberFrom(ctx context.Context) (*signedInMember, bool) {
	m, ok := ctx.Value(memberKey{}).(*signedInMember)
	return m, ok
}

// authenticate resolves the request's session (cookie, or a Bearer token
// for the API) and puts the actor into the context.
func (s *Server) authenticate(r *http.Request, bearer bool) (*http.Request, *signedInMember, error) {
	token := ""
	if bearer {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			token = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
		}
	}
	if token == "" {
		if c, err := r.Cookie(s.sessionCookie()); err == nil {
			token = c.Value
		}
	}
	if token == "" {
		return r, nil, fieldops.Errorf(fieldops.EUNAUTHORIZED, "Please sign in.")
	}
	sess, actor, err := s.svc.Sessions.Authenticate(r.Context(), token, s.clientIP(r))
	if err != nil {
		return r, nil, err
	}
	actor.IP = s.clientIP(r)
	ctx := fieldops.NewContext(r.Context(), actor)
	me, err := s.svc.Members.FindMemberByID(ctx, actor.UserID)
	if err != nil {
		return r, nil, err
	}
	org, err := s.svc.Orgs.FindOrganisation(ctx)
	if err != nil {
		return r, nil, err
	}
	ovs := me.Overrides
	if p, err := fieldops.FindPlan(org.Plan); err == nil && !p.Overrides {
		ovs = nil
	}
	m := &signedInMember{session: sess, member: me, org: org, grants: fieldops.EffectiveGrants(me.Role, ovs)}
	ctx = context.WithValue(ctx, memberKey{}, m)
	return r.WithContext(ctx), m, nil
}

// signedIn wraps a page handler: the caller must have a live session, and
// a member whose role needs two-factor sign-in is sent to enrolment first,
// on every request, also with a session that already existed.
func (s *Server) signedIn(h http.HandlerFunc, opts int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _, err := s.authenticate(r, false)
		if err != nil {
			s.failAuth(w, r, err)
			return
		}
		if opts&allowUnenrolled == 0 {
			must, err := s.svc.Auth.RequiresEnrolment(r.Context())
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if must {
				s.back(w, r, "/account/2fa", "Your role needs two-factor sign-in. Set it up to continue.")
				return
			}
		}
		h(w, r)
	})
}

// failAuth answers a request whose session could not be established: to
// the sign-in page, or a 503 page when the session store is down (fail
// closed: never signed in).
func (s *Server) failAuth(w http.ResponseWriter, r *http.Request, err error) {
	if fieldops.ErrorCode(err) == fieldops.EUNAVAILABLE {
		s.render(w, r, http.StatusServiceUnavailable, "error", &view{Title: "Temporarily unavailable",
			Error: "fieldops cannot check your sign-in right now. Nothing has been changed; please try again in a minute."})
		return
	}
	if _, ok := r.Cookie(s.sessionCookie()); ok == nil && fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED {
		s.setFlash(w, "Your session has ended. Please sign in again.")
	}
	s.clearSession(w)
	if r.Header.Get("HX-Request") == "true" {
		// A boosted click: make the browser load the sign-in page itself,
		// so its address bar says where it is.
		w.Header().Set("HX-Redirect", "/signin")
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// apiAuth wraps a JSON handler: Bearer token or cookie, JSON errors.
func (s *Server) apiAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _, err := s.authenticate(r, true)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		if must, err := s.svc.Auth.RequiresEnrolment(r.Context()); err != nil || must {
			if err == nil {
				err = fieldops.Errorf(fieldops.EFORBIDDEN, "Set up two-factor sign-in in the web panel first.")
			}
			writeJSONError(w, err)
			return
		}
		h(w, r)
	})
}
