// Package admin is the web front end of fieldops: the admin panel and the
// health endpoints. Handlers translate HTTP to calls of the domain
// services of package fieldops; they never decide permissions.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Check is a dependency that /readyz asks: Ping returns nil when it is up.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Server is the HTTP side of fieldops.
type Server struct {
	logger *slog.Logger
	checks []Check
	mux    *http.ServeMux
	// CheckTimeout bounds each readiness check.
	CheckTimeout time.Duration
}

// NewServer builds the server and registers its routes.
func NewServer(logger *slog.Logger, checks ...Check) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{logger: logger, checks: checks, mux: http.NewServeMux(), CheckTimeout: time.Second}
	s.routes()
	return s
}

// routes registers every route of the server in one place.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /livez", s.handleLivez)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
}

// Handler returns the server's handler with its middleware: security
// headers and the refusal of cross-origin state changes.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(s.mux))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
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
