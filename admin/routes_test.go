package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/bot/telegramtest"
)

// route is one page or action with the flag that decides it.
type route struct {
	name   string
	method string
	path   func(o *org) string
	form   func(o *org) url.Values
	flag   fieldops.Flag // the flag that decides; 0xff: every member
	ok     int           // the status when allowed
}

const anyone = fieldops.Flag(0xff)

// routes lists every signed-in route; destructive ones come last, since
// each role runs them in order against its own organisation.
func routes() []route {
	target := func(o *org) string { return fmt.Sprint(o.user[fieldops.RoleReadOnly]) }
	return []route{
		{"Dashboard", "GET", func(*org) string { return "/" }, nil, anyone, 200},
		{"Team", "GET", func(*org) string { return "/team" }, nil, fieldops.FlagTeamView, 200},
		{"Member", "GET", func(o *org) string { return "/team/" + target(o) }, nil, fieldops.FlagTeamView, 200},
		{"Sessions", "GET", func(*org) string { return "/sessions" }, nil, anyone, 200},
		{"Billing", "GET", func(*org) string { return "/billing" }, nil, fieldops.FlagBillingView, 200},
		{"Audit", "GET", func(*org) string { return "/audit" }, nil, fieldops.FlagAuditView, 200},
		{"AuditCSV", "GET", func(*org) string { return "/audit.csv" }, nil, fieldops.FlagAuditExport, 200},
		{"Jobs", "GET", func(*org) string { return "/jobs" }, nil, fieldops.FlagJobView, 200},
		{"Customers", "GET", func(*org) string { return "/customers" }, nil, fieldops.FlagCustomerView, 200},
		{"Capacity", "GET", func(*org) string { return "/capacity" }, nil, fieldops.FlagCapacityView, 200},
		{"Tokens", "GET", func(*org) string { return "/account/tokens" }, nil, anyone, 200},
		{"TokenCreate", "POST", func(*org) string { return "/account/tokens" }, func(*org) url.Values { return url.Values{"name": {"Sync"}} }, anyone, 200},
		{"APIMe", "GET", func(*org) string { return "/api/v1/me" }, nil, anyone, 200},
		{"APIMembers", "GET", func(*org) string { return "/api/v1/members" }, nil, fieldops.FlagTeamView, 200},
		{"APISessionsAll", "GET", func(*org) string { return "/api/v1/sessions?all=1" }, nil, fieldops.FlagSessionViewAll, 200},
		{"Telegram", "GET", func(*org) string { return "/telegram" }, nil, anyone, 200},
		{"TelegramLink", "POST", func(*org) string { return "/telegram/link" }, url0, anyone, 200},
		{"TelegramUnlink", "POST", func(*org) string { return "/telegram/unlink" }, url0, anyone, 303},
		{"MemberTelegramUnlink", "POST", func(o *org) string { return "/team/" + target(o) + "/telegram/unlink" }, url0, fieldops.FlagSessionRevokeAll, 303},
		{"Sandbox", "GET", func(*org) string { return "/sandbox" }, nil, fieldops.FlagSettingsEdit, 200},
		{"SandboxStart", "POST", func(*org) string { return "/sandbox/start" }, func(*org) url.Values { return url.Values{"token": {"not-a-real-token"}} }, anyone, 303},
		{"SandboxChat", "GET", func(o *org) string { return "/sandbox/" + target(o) }, nil, fieldops.FlagSettingsEdit, 200},
		{"SandboxHistory", "GET", func(o *org) string { return "/sandbox/" + target(o) + "/history" }, nil, fieldops.FlagSettingsEdit, 200},
		{"SandboxText", "POST", func(o *org) string { return "/sandbox/" + target(o) + "/text" }, func(*org) url.Values { return url.Values{"text": {"hello"}} }, fieldops.FlagSettingsEdit, 303},
		{"SandboxLocation", "POST", func(o *org) string { return "/sandbox/" + target(o) + "/location" },
			func(*org) url.Values { return url.Values{"lat": {"51.5"}, "lng": {"-0.12"}, "accuracy": {"12"}} }, fieldops.FlagSettingsEdit, 303},
		{"SandboxPress", "POST", func(o *org) string { return "/sandbox/" + target(o) + "/press" }, nil, fieldops.FlagSettingsEdit, 303},
		// Without a file the upload is refused as invalid, after the
		// permission check; sandbox_test sends real photos.
		{"SandboxPhoto", "POST", func(o *org) string { return "/sandbox/" + target(o) + "/photo" }, url0, fieldops.FlagSettingsEdit, 422},
		{"Invite", "POST", func(*org) string { return "/team/invitations" },
			func(o *org) url.Values {
				return url.Values{"email": {fmt.Sprintf("new%d@example.co.uk", o.id)}, "role": {"engineer"}}
			}, fieldops.FlagTeamInvite, 303},
		{"BillingChange", "POST", func(*org) string { return "/billing" }, func(*org) url.Values { return url.Values{"plan": {"team"}, "extra_seats": {"7"}} }, fieldops.FlagBillingManage, 303},
		{"MemberRole", "POST", func(o *org) string { return "/team/" + target(o) + "/role" }, func(*org) url.Values { return url.Values{"role": {"accountant"}} }, fieldops.FlagTeamChangeRole, 303},
		{"MemberOverrides", "POST", func(o *org) string { return "/team/" + target(o) + "/overrides" },
			func(*org) url.Values { return url.Values{"flag.quote.view": {"none"}} }, fieldops.FlagTeamEditPermissions, 303},
		{"MemberSessionsRevoke", "POST", func(o *org) string { return "/team/" + target(o) + "/sessions/revoke" }, url0, fieldops.FlagSessionRevokeAll, 303},
		{"MemberTwoFactorReset", "POST", func(o *org) string { return "/team/" + target(o) + "/2fa/reset" }, url0, fieldops.FlagSecurityPolicy, 303},
		{"MemberRemove", "POST", func(o *org) string { return "/team/" + target(o) + "/remove" }, url0, fieldops.FlagTeamRemove, 303},
	}
}

func url0(*org) url.Values { return url.Values{} }

// prepare readies the organisation for a route just before it runs as
// role; a form it returns replaces the route's.
var prepare = map[string]func(t *testing.T, a *app, o *org, role fieldops.Role) url.Values{
	"TelegramUnlink": func(t *testing.T, a *app, o *org, role fieldops.Role) url.Values {
		a.mustLinkTelegram(t, o.id, o.user[role], 900_000_000+o.user[role])
		return nil
	},
	"MemberTelegramUnlink": func(t *testing.T, a *app, o *org, _ fieldops.Role) url.Values {
		target := o.user[fieldops.RoleReadOnly]
		a.mustLinkTelegram(t, o.id, target, 900_000_000+target)
		return nil
	},
	"SandboxPress": func(t *testing.T, a *app, o *org, _ fieldops.Role) url.Values {
		id := botSay(t, a.tg, sandboxID(o.id, o.user[fieldops.RoleReadOnly]), "Job at 10:00", "Check in", "job:checkin:1")
		return url.Values{"message": {fmt.Sprint(id)}, "data": {"job:checkin:1"}}
	},
}

// TestRoutesByRole runs every route as every role: allowed exactly when
// the role's grants hold the flag, refused with 403 otherwise.
func TestRoutesByRole(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.tg = telegramtest.New(t, telegramtest.WithoutLimits())
	a = a.withServer(t, a.sessions, a.auth) // with the sandbox
	for _, role := range fieldops.AllRoles() {
		t.Run(role.String(), func(t *testing.T) {
			o := a.mustOrg(t)
			grants := fieldops.RoleGrants(role)
			for _, rt := range routes() {
				allowed := rt.flag == anyone || grants.Scope(rt.flag) != fieldops.ScopeNone
				if role == fieldops.RoleReadOnly && strings.HasPrefix(rt.name, "Member") && rt.method == "POST" {
					continue // the target is the read-only member themselves
				}
				want := http.StatusForbidden
				if allowed {
					want = rt.ok
				}
				var form url.Values
				if rt.form != nil {
					form = rt.form(o)
				}
				if p := prepare[rt.name]; p != nil {
					if f := p(t, a, o, role); f != nil {
						form = f
					}
				}
				code, body, resp := a.do(t, o.client[role], rt.method, rt.path(o), form)
				if code != want {
					t.Errorf("%s %s as %s = %d, want %d\n%s", rt.method, rt.path(o), role, code, want, excerpt(body))
				}
				if code == 303 && strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
					t.Errorf("%s %s as %s redirected to sign-in", rt.method, rt.path(o), role)
				}
			}
		})
	}
}

// TestCrossOrganisation: another organisation's records are not found.
func TestCrossOrganisation(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	victim, other := a.mustOrg(t), a.mustOrg(t)
	inv, _, err := a.invites.CreateInvitation(victim.ctx[fieldops.RoleOwner], fieldops.NewInvitation{Email: "x@example.co.uk", Role: fieldops.RoleEngineer})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := a.sessions.FindSessions(victim.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: victim.user[fieldops.RoleEngineer]})
	if err != nil || len(sessions) == 0 {
		t.Fatalf("sessions = %v, %v", sessions, err)
	}
	eng := fmt.Sprint(victim.user[fieldops.RoleEngineer])
	for _, tt := range []struct{ method, path string }{
		{"GET", "/team/" + eng},
		{"POST", "/team/" + eng + "/role"},
		{"POST", "/team/" + eng + "/overrides"},
		{"POST", "/team/" + eng + "/remove"},
		{"POST", "/team/" + eng + "/sessions/revoke"},
		{"POST", "/sessions/" + sessions[0].ID + "/revoke"},
		{"POST", fmt.Sprintf("/invitations/%d/resend", inv.ID)},
		{"POST", fmt.Sprintf("/invitations/%d/revoke", inv.ID)},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			var form url.Values
			if tt.method == "POST" {
				form = url.Values{"role": {"owner"}}
			}
			code, body, _ := a.do(t, other.client[fieldops.RoleOwner], tt.method, tt.path, form)
			if code != http.StatusNotFound {
				t.Errorf("= %d, want 404\n%s", code, excerpt(body))
			}
		})
	}
	// Nothing changed for the victim.
	if _, err := a.sessions.FindSessions(victim.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: victim.user[fieldops.RoleEngineer]}); err != nil {
		t.Fatalf("victim's session gone: %v", err)
	}
	m, err := a.members.FindMemberByID(victim.ctx[fieldops.RoleOwner], victim.user[fieldops.RoleEngineer])
	if err != nil || m.Role != fieldops.RoleEngineer {
		t.Fatalf("victim's engineer = %+v, %v", m, err)
	}
	_ = context.Background()
}

func excerpt(s string) string {
	if i := strings.Index(s, `class="error"`); i >= 0 {
		s = s[i:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// TestInviteWithOverrides: the invite form's optional grid reaches the
// invitation, and the service still refuses what the inviter lacks.
func TestInviteWithOverrides(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	o := a.mustOrg(t)
	form := url.Values{"email": {"quotes@example.co.uk"}, "role": {"engineer"}, "flag.quote.view": {"all"}}
	if code, body, _ := a.do(t, o.client[fieldops.RoleOwner], "POST", "/team/invitations", form); code != 303 {
		t.Fatalf("invite with overrides = %d\n%s", code, excerpt(body))
	}
	invs, err := a.invites.FindInvitations(o.ctx[fieldops.RoleOwner])
	if err != nil || len(invs) != 1 || len(invs[0].Overrides) != 1 || invs[0].Overrides[0].Flag != fieldops.FlagQuoteView {
		t.Fatalf("invitations = %+v, %v", invs, err)
	}
	// An Admin cannot hand out billing.manage, which is locked.
	form = url.Values{"email": {"billing@example.co.uk"}, "role": {"engineer"}, "flag.billing.manage": {"all"}}
	if code, _, _ := a.do(t, o.client[fieldops.RoleAdmin], "POST", "/team/invitations", form); code != http.StatusUnprocessableEntity {
		t.Fatalf("invite with a locked flag = %d, want 422", code)
	}
}
