package admin

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"NoProxyIgnoresHeader", nil, "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"UntrustedPeerIgnoresHeader", proxies, "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"TrustedProxy", proxies, "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"SpoofedLeftHopIgnored", proxies, "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"ChainOfProxies", proxies, "10.1.2.3:5000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"SeveralHeaders", proxies, "10.1.2.3:5000", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"GarbledHop", proxies, "10.1.2.3:5000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"OnlyProxies", proxies, "10.1.2.3:5000", []string{"10.4.4.4"}, "10.4.4.4"},
		{"MappedPeer", nil, "[::ffff:192.0.2.4]:5000", nil, "192.0.2.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{opt: Options{TrustedProxies: tt.trusted}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, h := range tt.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := s.clientIP(r).String(); got != tt.want {
				t.Fatalf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
