package store_test

import (
	"testing"

	"github.com/fieldops/fieldops"
)

// notices returns the security notices written for a member, by kind, as
// channel/kind pairs.
func notices(t *testing.T, e *env, orgID, userID int64, kind string) []string {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), `SELECT channel FROM notifications WHERE org_id = $1 AND user_id = $2 AND kind = $3 ORDER BY id`,
		orgID, userID, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ch string
		if err := rows.Scan(&ch); err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
	}
	return out
}

// TestSecurityNotices: a new Telegram link, setting up two-factor sign-in
// and its reset by an administrator each write exactly one e-mail notice
// to the member, in the change's transaction (reliability checklist A11);
// a refused change writes none.
func TestSecurityNotices(t *testing.T) {
	t.Parallel()
	t.Run("TelegramLinked", func(t *testing.T) {
		te := newTelegramEnv(t)
		o := mustOrg(t, te.env)
		mustSeats(t, te, o, 10)
		eng := o.user[fieldops.RoleEngineer]
		mustLink(t, te, o.ctx[fieldops.RoleEngineer], tgUser(3001, "sam_eng"))
		if got := notices(t, te.env, o.id, eng, "security.telegram_linked"); len(got) != 1 || got[0] != "email" {
			t.Fatalf("notices = %v, want one e-mail", got)
		}
		// A used token links nothing and tells no one.
		tok, err := te.tg.CreateLinkToken(o.ctx[fieldops.RoleEngineer])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := te.tg.Link(t.Context(), tok.Token, tgUser(3002, "other")); err != nil {
			t.Fatal(err)
		}
		if _, err := te.tg.Link(t.Context(), tok.Token, tgUser(3003, "third")); err == nil {
			t.Fatal("a used token linked again")
		}
		if got := notices(t, te.env, o.id, eng, "security.telegram_linked"); len(got) != 2 {
			t.Fatalf("notices = %v, want two (one per link)", got)
		}
	})
	t.Run("TwoFactor", func(t *testing.T) {
		a := newAuthEnv(t)
		o := a.org
		eng := o.user[fieldops.RoleEngineer]
		a.mustEnrol(t, o.ctx[fieldops.RoleEngineer])
		if got := notices(t, a.env, o.id, eng, "security.two_factor_enrolled"); len(got) != 1 || got[0] != "email" {
			t.Fatalf("enrolled notices = %v, want one e-mail", got)
		}
		// A manager may not reset it: refused, no notice.
		if err := a.auth.ResetTwoFactor(o.ctx[fieldops.RoleManager], eng); err == nil {
			t.Fatal("a manager reset two-factor sign-in")
		}
		if got := notices(t, a.env, o.id, eng, "security.two_factor_reset"); len(got) != 0 {
			t.Fatalf("a refused reset wrote %v", got)
		}
		if err := a.auth.ResetTwoFactor(o.ctx[fieldops.RoleOwner], eng); err != nil {
			t.Fatal(err)
		}
		if got := notices(t, a.env, o.id, eng, "security.two_factor_reset"); len(got) != 1 || got[0] != "email" {
			t.Fatalf("reset notices = %v, want one e-mail", got)
		}
	})
}
