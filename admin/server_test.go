package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldops/fieldops/admin"
)

func TestReadyz(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	tests := []struct {
		name       string
		pg, redis  func(context.Context) error
		wantStatus int
		wantChecks map[string]string
	}{
		{"OK", up, up, 200, map[string]string{"postgres": "ok", "redis": "ok"}},
		{"ErrRedisDown", up, down, 503, map[string]string{"postgres": "ok", "redis": "down"}},
		{"ErrPostgresDown", down, up, 503, map[string]string{"postgres": "down", "redis": "ok"}},
		{"ErrBothDown", down, down, 503, map[string]string{"postgres": "down", "redis": "down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustServer(t, admin.Check{Name: "postgres", Ping: tt.pg}, admin.Check{Name: "redis", Ping: tt.redis})
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			var body struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.wantChecks {
				if body.Checks[k] != v {
					t.Errorf("checks[%s] = %q, want %q", k, body.Checks[k], v)
				}
			}
		})
	}
}

func TestLivezAndHeaders(t *testing.T) {
	s := mustServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/livez", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "ok") {
		t.Fatalf("livez = %d %q", rec.Code, rec.Body.String())
	}
	for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Referrer-Policy"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
}

func TestCrossOriginRefused(t *testing.T) {
	s := mustServer(t)
	req := httptest.NewRequest("POST", "/livez", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST = %d, want 403", rec.Code)
	}
}

func mustServer(t *testing.T, checks ...admin.Check) *admin.Server {
	t.Helper()
	s, err := admin.NewServer(nil, admin.Services{}, admin.Options{}, checks...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
