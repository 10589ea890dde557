package admin_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
)

// TestMemberTwoFactorReset: an engineer lost their phone. Only those with
// security.policy see and use the reset; it signs the engineer out.
func TestMemberTwoFactorReset(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	eng := o.user[fieldops.RoleEngineer]
	page := fmt.Sprintf("/team/%d", eng)
	reset := page + "/2fa/reset"
	form := `action="` + reset + `"`

	t.Run("ErrForbidden", func(t *testing.T) {
		// Read-Only sees the member page without the form, and is refused.
		status, body, _ := a.do(t, o.client[fieldops.RoleReadOnly], "GET", page, nil)
		if status != 200 || strings.Contains(body, form) {
			t.Fatalf("read-only member page = %d, reset form shown %v", status, strings.Contains(body, form))
		}
		if status, body, _ := a.do(t, o.client[fieldops.RoleReadOnly], "POST", reset, url.Values{}); status != http.StatusForbidden {
			t.Fatalf("read-only POST %s = %d, want 403\n%s", reset, status, excerpt(body))
		}
		// An Admin cannot reset an Owner's.
		owner := fmt.Sprintf("/team/%d/2fa/reset", o.user[fieldops.RoleOwner])
		if status, body, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", owner, url.Values{}); status != http.StatusForbidden {
			t.Fatalf("admin POST %s = %d, want 403\n%s", owner, status, excerpt(body))
		}
		if status, _, _ := a.do(t, o.client[fieldops.RoleEngineer], "GET", "/", nil); status != 200 {
			t.Fatalf("engineer after refused resets = %d, want 200", status)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		other := a.mustOrg(t)
		status, body, _ := a.do(t, other.client[fieldops.RoleOwner], "POST", reset, url.Values{})
		if status != http.StatusNotFound {
			t.Fatalf("another organisation's owner POST %s = %d, want 404\n%s", reset, status, excerpt(body))
		}
	})

	t.Run("OK", func(t *testing.T) {
		c := o.client[fieldops.RoleOwner]
		status, body, _ := a.do(t, c, "GET", page, nil)
		if status != 200 || !strings.Contains(body, form) {
			t.Fatalf("owner's member page = %d, reset form shown %v", status, strings.Contains(body, form))
		}
		status, body, resp := a.do(t, c, "POST", reset, url.Values{})
		if status != http.StatusSeeOther || resp.Header.Get("Location") != page {
			t.Fatalf("owner POST %s = %d %s, want 303 to %s\n%s", reset, status, resp.Header.Get("Location"), page, excerpt(body))
		}
		status, body, _ = a.do(t, c, "GET", page, nil)
		if status != 200 || !strings.Contains(body, "Two-factor sign-in was reset; they will set it up again at their next sign-in.") ||
			!strings.Contains(body, "two-factor off") || strings.Contains(body, form) {
			t.Fatalf("member page after reset = %d\n%s", status, excerpt(body))
		}
		// The engineer's browser is signed out on its next request.
		status, _, resp = a.do(t, o.client[fieldops.RoleEngineer], "GET", "/", nil)
		if status != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
			t.Fatalf("engineer's next request = %d %s, want 303 to /signin", status, resp.Header.Get("Location"))
		}
		// Once is enough: a second reset says it is already off.
		if status, _, _ := a.do(t, c, "POST", reset, url.Values{}); status != http.StatusConflict {
			t.Fatalf("second reset = %d, want 409", status)
		}
	})

	t.Run("OKSelf", func(t *testing.T) {
		self := fmt.Sprintf("/team/%d/2fa/reset", o.user[fieldops.RoleAdmin])
		status, _, resp := a.do(t, o.client[fieldops.RoleAdmin], "POST", self, url.Values{})
		if status != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
			t.Fatalf("admin resetting their own = %d %s, want 303 to /signin", status, resp.Header.Get("Location"))
		}
	})
}
