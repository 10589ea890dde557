// Package admin is the web front end of fieldops: the admin panel, its
// small JSON API and the health endpoints. Handlers translate HTTP into
// calls of the domain services of package fieldops; they never decide
// permissions (a hidden button is a convenience, the service refuses).
package admin

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/fieldops/fieldops"
)

//go:embed templates static
var assets embed.FS

// Check is a dependency that /readyz asks: Ping returns nil when it is up.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Services are the domain services the panel calls. Mailer may be nil:
// invitation links are then shown to the inviter to pass on.
type Services struct {
	Sessions    fieldops.SessionService
	Auth        fieldops.AuthService
	Orgs        fieldops.OrganisationService
	Members     fieldops.MemberService
	Jobs        fieldops.JobService
	Customers   fieldops.CustomerService
	Sites       fieldops.SiteService
	Capacity    fieldops.CapacityService
	Audit       fieldops.AuditService
	Invitations fieldops.InvitationService
	Tokens      fieldops.APITokenService
	Mailer      fieldops.Mailer

	// Certificates and Defects may be nil: the job page then leaves them out.
	Certificates fieldops.CertificateService
	Defects      fieldops.DefectService
	Evidence     fieldops.JobEvidenceService // time on site, photos and notes; may be nil
	// Telegram may be nil: the Telegram page, its links and the team
	// page's Unlink are then left out.
	Telegram fieldops.TelegramService
}

// Options are the panel's settings.
type Options struct {
	// SecureCookies marks cookies Secure and names the session cookie
	// with the __Host- prefix; turn off only for plain-http local runs.
	SecureCookies bool
	// BaseURL is the public address, for links in e-mails.
	BaseURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed.
	TrustedProxies []netip.Prefix
	// Sandbox, when set, is the local stand-in for Telegram that serve
	// runs when no bot token is configured: the panel then has a Sandbox
	// page to chat with the bot as a member. Nil: no such page.
	Sandbox fieldops.Sandbox
}

// Server is the HTTP side of fieldops.
type Server struct {
	logger *slog.Logger
	svc    Services
	opt    Options
	checks []Check
	mux    *http.ServeMux
	pages  map[string]*pageTemplate
	bufs   sync.Pool // *bytes.Buffer for render
	// CheckTimeout bounds each readiness check.
	CheckTimeout time.Duration
	// Now is the clock, for tests.
	Now func() time.Time
}

// NewServer builds the server and registers its routes. With zero
// Services only the health endpoints are served.
func NewServer(logger *slog.Logger, svc Services, opt Options, checks ...Check) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{logger: logger, svc: svc, opt: opt, checks: checks, mux: http.NewServeMux(), CheckTimeout: time.Second, Now: time.Now}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	if err := s.parseOptional(pages); err != nil {
		return nil, err
	}
	s.pages = pages
	s.routes()
	return s, nil
}

// routes registers every route of the server in one place.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /livez", s.handleLivez)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.svc.Sessions == nil {
		return
	}
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(http.FileServerFS(static))))

	// Signed out.
	s.mux.HandleFunc("GET /signin", s.handleSignInPage)
	s.mux.HandleFunc("POST /signin", s.handleSignIn)
	s.mux.HandleFunc("POST /signin/code", s.handleSignInCode)
	s.mux.HandleFunc("GET /invite/{token}", s.handleInvitePage)
	s.mux.HandleFunc("POST /invite/{token}", s.handleInviteAccept)

	// Signed in; enrolment is reachable before two-factor is set up.
	s.mux.Handle("POST /signout", s.signedIn(s.handleSignOut, allowUnenrolled))
	s.mux.Handle("GET /account/2fa", s.signedIn(s.handleEnrolPage, allowUnenrolled))
	s.mux.Handle("POST /account/2fa", s.signedIn(s.handleEnrolConfirm, allowUnenrolled))

	s.mux.Handle("GET /{$}", s.signedIn(s.handleDashboard, 0))
	s.mux.Handle("GET /customers", s.signedIn(s.handleCustomers, 0))
	s.mux.Handle("POST /customers", s.signedIn(s.handleCustomerCreate, 0))
	s.mux.Handle("GET /customers/{id}", s.signedIn(s.handleCustomer, 0))
	s.mux.Handle("POST /customers/{id}", s.signedIn(s.handleCustomerUpdate, 0))
	s.mux.Handle("POST /customers/{id}/delete", s.signedIn(s.handleCustomerDelete, 0))
	s.mux.Handle("POST /customers/{id}/sites", s.signedIn(s.handleSiteCreate, 0))
	s.mux.Handle("POST /sites/{id}", s.signedIn(s.handleSiteUpdate, 0))
	s.mux.Handle("GET /jobs", s.signedIn(s.handleJobs, 0))
	s.mux.Handle("GET /jobs/new", s.signedIn(s.handleJobNew, 0))
	s.mux.Handle("POST /jobs", s.signedIn(s.handleJobCreate, 0))
	s.mux.Handle("GET /jobs/{id}", s.signedIn(s.handleJob, 0))
	if s.svc.Certificates != nil && s.svc.Defects != nil {
		s.mux.Handle("POST /jobs/{id}/certificates", s.signedIn(s.handleCertificateCreate, 0))
		s.mux.Handle("POST /certificates/{id}/submit", s.signedIn(s.handleCertificateSubmit, 0))
		s.mux.Handle("POST /certificates/{id}/approve", s.signedIn(s.handleCertificateApprove, 0))
		s.mux.Handle("POST /certificates/{id}/issue", s.signedIn(s.handleCertificateIssue, 0))
		s.mux.Handle("POST /jobs/{id}/defects", s.signedIn(s.handleDefectLog, 0))
		s.mux.Handle("POST /defects/{id}/resolve", s.signedIn(s.handleDefectResolve, 0))
	}
	s.mux.Handle("POST /jobs/{id}", s.signedIn(s.handleJobUpdate, 0))
	s.mux.Handle("POST /jobs/{id}/reschedule", s.signedIn(s.handleJobReschedule, 0))
	s.mux.Handle("POST /jobs/{id}/assign", s.signedIn(s.handleJobAssign, 0))
	s.mux.Handle("POST /jobs/{id}/cancel", s.signedIn(s.handleJobCancel, 0))
	s.mux.Handle("POST /jobs/{id}/delete", s.signedIn(s.handleJobDelete, 0))
	s.mux.Handle("GET /team", s.signedIn(s.handleTeam, 0))
	s.mux.Handle("POST /team/invitations", s.signedIn(s.handleInviteCreate, 0))
	s.mux.Handle("POST /invitations/{id}/resend", s.signedIn(s.handleInviteResend, 0))
	s.mux.Handle("POST /invitations/{id}/revoke", s.signedIn(s.handleInviteRevoke, 0))
	s.mux.Handle("GET /team/{id}", s.signedIn(s.handleMember, 0))
	s.mux.Handle("POST /team/{id}/role", s.signedIn(s.handleMemberRole, 0))
	s.mux.Handle("POST /team/{id}/overrides", s.signedIn(s.handleMemberOverrides, 0))
	s.mux.Handle("POST /team/{id}/remove", s.signedIn(s.handleMemberRemove, 0))
	s.mux.Handle("POST /team/{id}/transfer", s.signedIn(s.handleTransferOwnership, 0))
	s.mux.Handle("POST /team/{id}/sessions/revoke", s.signedIn(s.handleMemberSessionsRevoke, 0))
	s.mux.Handle("POST /team/{id}/2fa/reset", s.signedIn(s.handleMemberTwoFactorReset, 0))
	s.mux.Handle("GET /sessions", s.signedIn(s.handleSessions, 0))
	s.mux.Handle("POST /sessions/{id}/revoke", s.signedIn(s.handleSessionRevoke, 0))
	s.mux.Handle("GET /billing", s.signedIn(s.handleBilling, 0))
	s.mux.Handle("POST /billing", s.signedIn(s.handleBillingChange, 0))
	s.mux.Handle("GET /audit", s.signedIn(s.handleAudit, 0))
	s.mux.Handle("GET /audit.csv", s.signedIn(s.handleAuditCSV, 0))
	s.mux.Handle("GET /account/tokens", s.signedIn(s.handleTokens, 0))
	s.mux.Handle("GET /capacity", s.signedIn(s.handleCapacity, 0))
	s.mux.Handle("GET /schedule", s.signedIn(s.handleSchedule, 0))
	s.mux.Handle("GET /capacity/free", s.signedIn(s.handleCapacityFree, 0))
	s.mux.Handle("POST /account/tokens", s.signedIn(s.handleTokenCreate, 0))
	if s.svc.Telegram != nil {
		s.mux.Handle("GET /telegram", s.signedIn(s.handleTelegram, 0))
		s.mux.Handle("POST /telegram/link", s.signedIn(s.handleTelegramLink, 0))
		s.mux.Handle("POST /telegram/unlink", s.signedIn(s.handleTelegramUnlink, 0))
		s.mux.Handle("POST /team/{id}/telegram/unlink", s.signedIn(s.handleMemberTelegramUnlink, 0))
	}
	if s.opt.Sandbox != nil {
		s.mux.Handle("GET /sandbox", s.signedIn(s.handleSandbox, 0))
		s.mux.Handle("POST /sandbox/start", s.signedIn(s.handleSandboxStart, 0))
		s.mux.Handle("GET /sandbox/{id}", s.signedIn(s.handleSandboxChat, 0))
		s.mux.Handle("GET /sandbox/{id}/history", s.signedIn(s.handleSandboxHistory, 0))
		s.mux.Handle("POST /sandbox/{id}/text", s.signedIn(s.handleSandboxText, 0))
		s.mux.Handle("POST /sandbox/{id}/location", s.signedIn(s.handleSandboxLocation, 0))
		s.mux.Handle("POST /sandbox/{id}/photo", s.signedIn(s.handleSandboxPhoto, 0))
		s.mux.Handle("POST /sandbox/{id}/press", s.signedIn(s.handleSandboxPress, 0))
	}

	// JSON API for integrations: a personal API token as Bearer, or the
	// session cookie.
	s.mux.Handle("GET /api/v1/me", s.apiAuth(s.handleAPIMe))
	s.mux.Handle("GET /api/v1/members", s.apiAuth(s.handleAPIMembers))
	s.mux.Handle("GET /api/v1/sessions", s.apiAuth(s.handleAPISessions))
}

// parseOptional adds to every page the parts that exist only with an
// optional service. The layout defines each part as empty; the files in
// templates/optional redefine them (html/template allows it before the
// first execution), so a page never shows a link to a missing route.
func (s *Server) parseOptional(pages map[string]*pageTemplate) error {
	var files []string
	if s.svc.Telegram != nil {
		files = append(files, "templates/optional/with_telegram.html")
	}
	if s.opt.Sandbox != nil {
		files = append(files, "templates/optional/with_sandbox.html")
	}
	for name, p := range pages {
		for _, f := range files {
			if _, err := p.t.ParseFS(assets, f); err != nil {
				return fmt.Errorf("template %s with %s: %w", name, f, err)
			}
		}
	}
	return nil
}

// Handler returns the server's handler with its middleware: security
// headers, panic recovery and the refusal of cross-origin state changes.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	return securityHeaders(s.recoverPanics(cop.Handler(s.mux)))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("Permissions-Policy", "geolocation=(), camera=(), microphone=()")
		next.ServeHTTP(w, r)
	})
}

func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic in a handler into a 500 page and a log line.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic in handler", "path", r.URL.Path, "panic", v)
				http.Error(w, "Something went wrong on our side; please try again.", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// handleLivez answers while the process runs.
func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReadyz asks every dependency at once and answers 503 naming the
// ones that are down.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{Status: "ok", Checks: make(map[string]string, len(s.checks))}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, c := range s.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), s.CheckTimeout)
			defer cancel()
			err := c.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.logger.Warn("readiness check failed", "check", c.Name, "err", err)
				res.Status = "unavailable"
				res.Checks[c.Name] = "down"
				return
			}
			res.Checks[c.Name] = "ok"
		})
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if res.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(res)
}
