package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// telegramEnv is a sessionEnv with the Telegram link service.
type telegramEnv struct {
	*sessionEnv
	tg *store.TelegramService
}

func newTelegramEnv(tb testing.TB) *telegramEnv {
	tb.Helper()
	se := newSessionEnv(tb)
	se.members.Sessions = se.sessions
	return &telegramEnv{sessionEnv: se, tg: store.NewTelegramService(se.db, se.sessions, "fieldops_test_bot")}
}

// mustSeats gives the organisation room for n more members.
func mustSeats(tb testing.TB, te *telegramEnv, o *org, n int) {
	tb.Helper()
	if _, err := te.orgs.ChangePlan(o.ctx[fieldops.RoleOwner], "team", 2+n); err != nil {
		tb.Fatal(err)
	}
}

// tgUser is a Telegram account in its private chat with the bot.
func tgUser(id int64, username string) fieldops.TelegramUser {
	return fieldops.TelegramUser{ID: id, ChatID: id, Private: true, Username: username, FirstName: "Sam"}
}

func mustLinkToken(tb testing.TB, te *telegramEnv, ctx context.Context) *fieldops.TelegramLinkToken {
	tb.Helper()
	tok, err := te.tg.CreateLinkToken(ctx)
	if err != nil {
		tb.Fatalf("CreateLinkToken: %v", err)
	}
	return tok
}

// mustLink links the Telegram account to the member acting in ctx.
func mustLink(tb testing.TB, te *telegramEnv, ctx context.Context, u fieldops.TelegramUser) *fieldops.TelegramLink {
	tb.Helper()
	link, err := te.tg.Link(context.Background(), mustLinkToken(tb, te, ctx).Token, u)
	if err != nil {
		tb.Fatalf("Link: %v", err)
	}
	return link
}

// linkCtx is the context the bot acts in for a link.
func linkCtx(l *fieldops.TelegramLink) context.Context {
	return fieldops.NewContext(context.Background(), l.Actor())
}

// wantNotLinked checks that Resolve refuses the account.
func wantNotLinked(tb testing.TB, te *telegramEnv, telegramUserID int64) {
	tb.Helper()
	link, choices, err := te.tg.Resolve(context.Background(), telegramUserID)
	wantCode(tb, err, fieldops.EUNAUTHORIZED)
	if link != nil || choices != nil {
		tb.Fatalf("Resolve = %+v, %+v with an error", link, choices)
	}
}

// wantResolved checks that Resolve finds the link.
func wantResolved(tb testing.TB, te *telegramEnv, telegramUserID int64, want *fieldops.TelegramLink) {
	tb.Helper()
	link, choices, err := te.tg.Resolve(context.Background(), telegramUserID)
	if err != nil {
		tb.Fatalf("Resolve: %v", err)
	}
	if link == nil || link.ID != want.ID || link.SessionID != want.SessionID || !link.LinkedAt.Equal(want.LinkedAt) {
		tb.Fatalf("Resolve = %+v, %+v; want %+v", link, choices, want)
	}
	// With several links, all are offered for switching, the current one
	// among them.
	if len(choices) == 1 || (len(choices) > 1 && !slices.ContainsFunc(choices, func(c *fieldops.TelegramLink) bool { return c.ID == want.ID })) {
		tb.Fatalf("Resolve choices = %+v, want none or all links including %d", choices, want.ID)
	}
}

// listed reports whether FindSessions (own) lists the session.
func listed(tb testing.TB, te *telegramEnv, ctx context.Context, userID int64, id string) *fieldops.Session {
	tb.Helper()
	list, err := te.sessions.FindSessions(ctx, fieldops.SessionFilter{UserID: userID})
	if err != nil {
		tb.Fatalf("FindSessions: %v", err)
	}
	for _, s := range list {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func TestTelegramService_CreateLinkToken(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	ctx := o.ctx[fieldops.RoleEngineer]

	t.Run("OK", func(t *testing.T) {
		tok := mustLinkToken(t, te, ctx)
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(tok.Token) {
			t.Errorf("token %q is not 22 base64url characters", tok.Token)
		}
		if tok.URL != "https://t.me/fieldops_test_bot?start="+tok.Token {
			t.Errorf("URL = %q", tok.URL)
		}
		if !tok.ExpiresAt.Equal(te.clock.Now().Add(fieldops.LinkTokenTTL)) {
			t.Errorf("expires %v", tok.ExpiresAt)
		}
		h := sha256.Sum256([]byte(tok.Token))
		if n := count(t, te.env, `SELECT count(*) FROM telegram_link_tokens WHERE token_hash = $1 AND user_id = $2`, h[:], o.user[fieldops.RoleEngineer]); n != 1 {
			t.Errorf("token hash stored %d times", n)
		}
		if n := count(t, te.env, `SELECT count(*) FROM telegram_link_tokens t WHERE position($1 in t::text) > 0`, tok.Token); n != 0 {
			t.Error("the raw token is stored")
		}
		if action, actor, _ := lastAudit(t, te.env, o.id); action != "telegram.link_token" || actor != o.user[fieldops.RoleEngineer] {
			t.Errorf("audit = %s by %d", action, actor)
		}
	})

	t.Run("OKEarlierTokenDies", func(t *testing.T) {
		first := mustLinkToken(t, te, ctx)
		second := mustLinkToken(t, te, ctx)
		_, err := te.tg.Link(context.Background(), first.Token, tgUser(501, "first"))
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if _, err := te.tg.Link(context.Background(), second.Token, tgUser(501, "first")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		_, err := te.tg.CreateLinkToken(context.Background())
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
}

func TestTelegramService_Link(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	mustSeats(t, te, o, 10)
	eng := o.user[fieldops.RoleEngineer]
	engCtx := o.ctx[fieldops.RoleEngineer]
	bg := context.Background()

	t.Run("OK", func(t *testing.T) {
		link := mustLink(t, te, engCtx, tgUser(1001, "sam_eng"))
		if link.OrgID != o.id || link.UserID != eng || link.Role != fieldops.RoleEngineer || link.OrgName == "" || link.UserName == "" ||
			link.TelegramUserID != 1001 || link.ChatID != 1001 || link.Username != "sam_eng" || len(link.SessionID) != 24 ||
			!link.LinkedAt.Equal(te.clock.Now()) || link.ID == 0 {
			t.Fatalf("link = %+v", link)
		}
		// The link is a session of channel telegram.
		sess := listed(t, te, engCtx, eng, link.SessionID)
		if sess == nil || sess.Channel != fieldops.ChannelTelegram || sess.Device != "Telegram @sam_eng" || !sess.CreatedAt.Equal(link.LinkedAt) {
			t.Fatalf("session = %+v", sess)
		}
		// Its actor works.
		wantServed(t, te.sessionEnv, linkCtx(link))
		if action, actor, ch := lastAudit(t, te.env, o.id); action != "telegram.link" || actor != eng || ch != "telegram" {
			t.Errorf("audit = %s by %d on %s", action, actor, ch)
		}
		if n := count(t, te.env, `SELECT count(*) FROM telegram_chats WHERE telegram_user_id = 1001 AND active_org_id = $1`, o.id); n != 1 {
			t.Error("the organisation is not the chat's current one")
		}
		wantResolved(t, te, 1001, link)
		m, err := te.members.FindMemberByID(engCtx, eng)
		if err != nil || !m.TelegramLinked {
			t.Errorf("member = %+v, %v", m, err)
		}
	})

	t.Run("OKDeviceFromFirstName", func(t *testing.T) {
		u := tgUser(1002, "")
		link := mustLink(t, te, o.ctx[fieldops.RoleManager], u)
		if sess := listed(t, te, o.ctx[fieldops.RoleManager], o.user[fieldops.RoleManager], link.SessionID); sess == nil || sess.Device != "Telegram Sam" {
			t.Fatalf("session = %+v", sess)
		}
	})

	t.Run("ErrUsed", func(t *testing.T) {
		tok := mustLinkToken(t, te, o.ctx[fieldops.RoleOfficeStaff])
		if _, err := te.tg.Link(bg, tok.Token, tgUser(1003, "")); err != nil {
			t.Fatal(err)
		}
		_, err := te.tg.Link(bg, tok.Token, tgUser(1004, ""))
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "already been used") || !strings.Contains(msg, "ask for a new link from your profile in the web panel") {
			t.Errorf("message = %q", msg)
		}
		wantNotLinked(t, te, 1004)
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx := o.ctx[fieldops.RoleReadOnly]
		tok := mustLinkToken(t, te, ctx)
		te.clock.Advance(fieldops.LinkTokenTTL - time.Second)
		if _, err := te.tg.Link(bg, tok.Token, tgUser(1005, "")); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		tok = mustLinkToken(t, te, ctx)
		te.clock.Advance(fieldops.LinkTokenTTL)
		_, err := te.tg.Link(bg, tok.Token, tgUser(1005, ""))
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "expired") || !strings.Contains(msg, "ask for a new link from your profile in the web panel") {
			t.Errorf("message = %q", msg)
		}
	})

	t.Run("ErrUnknown", func(t *testing.T) {
		for _, tok := range []string{"", "nonsense", "a b", strings.Repeat("x", 65), "AAAAAAAAAAAAAAAAAAAAAA"} {
			_, err := te.tg.Link(bg, tok, tgUser(1006, ""))
			wantCode(t, err, fieldops.EUNAUTHORIZED)
			if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "not valid") || !strings.Contains(msg, "web panel") {
				t.Errorf("message = %q", msg)
			}
		}
	})

	t.Run("ErrGroupChat", func(t *testing.T) {
		tok := mustLinkToken(t, te, o.ctx[fieldops.RoleAccountant])
		u := tgUser(1007, "")
		u.Private, u.ChatID = false, -100123
		_, err := te.tg.Link(bg, tok.Token, u)
		wantCode(t, err, fieldops.EINVALID)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "Open a private chat with the bot to link your account") {
			t.Errorf("message = %q", msg)
		}
		// The token is still good in the private chat.
		if _, err := te.tg.Link(bg, tok.Token, tgUser(1007, "")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		tok := mustLinkToken(t, te, actorCtx(o.id, m.UserID))
		const n = 10
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = te.tg.Link(bg, tok.Token, tgUser(int64(2000+i), "")) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			wantCode(t, err, fieldops.EUNAUTHORIZED)
		}
		if won != 1 {
			t.Fatalf("%d Links won: %v", won, errs)
		}
		if c := count(t, te.env, `SELECT count(*) FROM telegram_links WHERE org_id = $1 AND user_id = $2`, o.id, m.UserID); c != 1 {
			t.Errorf("%d links", c)
		}
	})

	t.Run("OKReplacesEarlierLinks", func(t *testing.T) {
		m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		mctx := actorCtx(o.id, m.UserID)
		first := mustLink(t, te, mctx, tgUser(3001, "old_phone"))
		second := mustLink(t, te, mctx, tgUser(3002, "new_phone"))
		wantNotLinked(t, te, 3001)
		wantResolved(t, te, 3002, second)
		wantRefused(t, te.sessionEnv, linkCtx(first))
		wantServed(t, te.sessionEnv, linkCtx(second))
		if listed(t, te, mctx, m.UserID, first.SessionID) != nil {
			t.Error("the replaced link's session is listed")
		}
		// Another member links the same Telegram account: the account
		// now acts for them only.
		other := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		third := mustLink(t, te, actorCtx(o.id, other.UserID), tgUser(3002, "new_phone"))
		wantResolved(t, te, 3002, third)
		wantRefused(t, te.sessionEnv, linkCtx(second))
		if c := count(t, te.env, `SELECT count(*) FROM telegram_links WHERE org_id = $1 AND active AND telegram_user_id IN (3001, 3002)`, o.id); c != 1 {
			t.Errorf("%d active links", c)
		}
	})

	t.Run("ErrMemberRemoved", func(t *testing.T) {
		m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		tok := mustLinkToken(t, te, actorCtx(o.id, m.UserID))
		if err := te.members.RemoveMember(o.ctx[fieldops.RoleOwner], m.UserID); err != nil {
			t.Fatal(err)
		}
		_, err := te.tg.Link(bg, tok.Token, tgUser(4001, ""))
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		wantNotLinked(t, te, 4001)
	})

	t.Run("OKInUnitOfWork", func(t *testing.T) {
		m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		mctx := actorCtx(o.id, m.UserID)
		// Rolled back with the unit of work.
		tok := mustLinkToken(t, te, mctx)
		errRollback := errors.New("roll back")
		err := te.db.WithinTx(bg, func(ctx context.Context, _ pgx.Tx) error {
			if _, err := te.tg.Link(ctx, tok.Token, tgUser(5001, "")); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("WithinTx = %v", err)
		}
		wantNotLinked(t, te, 5001)
		// Redis follows the commit: nothing was written for the rolled
		// back link.
		if n, err := te.rdb.SCard(bg, fmt.Sprintf("usess:%d:%d", o.id, m.UserID)).Result(); err != nil || n != 0 {
			t.Fatalf("redis holds %d sessions of the member after the rollback (%v)", n, err)
		}
		// Committed with it.
		var link *fieldops.TelegramLink
		err = te.db.WithinTx(bg, func(ctx context.Context, _ pgx.Tx) error {
			var err error
			link, err = te.tg.Link(ctx, tok.Token, tgUser(5001, ""))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		wantResolved(t, te, 5001, link)
		wantServed(t, te.sessionEnv, linkCtx(link))
	})
}

func TestTelegramService_Resolve(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	a, b, c := mustOrg(t, te.env), mustOrg(t, te.env), mustOrg(t, te.env)
	const acct = 7001
	la := mustLink(t, te, a.ctx[fieldops.RoleEngineer], tgUser(acct, "multi"))
	lb := mustLink(t, te, b.ctx[fieldops.RoleManager], tgUser(acct, "multi"))
	bg := context.Background()

	t.Run("OKCurrent", func(t *testing.T) {
		// The latest link made its organisation the current one; both are
		// offered for /switch.
		wantResolved(t, te, acct, lb)
		if _, choices, _ := te.tg.Resolve(bg, acct); len(choices) != 2 {
			t.Fatalf("choices = %d, want both links", len(choices))
		}
	})

	t.Run("OKChoices", func(t *testing.T) {
		mustExec(t, te.env, `UPDATE telegram_chats SET active_org_id = NULL WHERE telegram_user_id = $1`, acct)
		link, choices, err := te.tg.Resolve(bg, acct)
		if err != nil || link != nil || len(choices) != 2 {
			t.Fatalf("Resolve = %+v, %+v, %v", link, choices, err)
		}
		if !slices.IsSortedFunc(choices, func(x, y *fieldops.TelegramLink) int { return strings.Compare(x.OrgName, y.OrgName) }) {
			t.Errorf("choices not sorted by organisation name: %s, %s", choices[0].OrgName, choices[1].OrgName)
		}
		ids := []int64{choices[0].ID, choices[1].ID}
		slices.Sort(ids)
		if want := []int64{la.ID, lb.ID}; !slices.Equal(ids, sortedIDs(want...)) {
			t.Errorf("choices = %v, want %v", ids, want)
		}
	})

	t.Run("OKChooseOrganisation", func(t *testing.T) {
		got, err := te.tg.ChooseOrganisation(bg, acct, a.id)
		if err != nil || got.ID != la.ID || got.OrgName == "" {
			t.Fatalf("ChooseOrganisation = %+v, %v", got, err)
		}
		wantResolved(t, te, acct, la)
		if _, err := te.tg.ChooseOrganisation(bg, acct, b.id); err != nil {
			t.Fatal(err)
		}
		wantResolved(t, te, acct, lb)
	})

	t.Run("ErrChooseOrganisation", func(t *testing.T) {
		_, err := te.tg.ChooseOrganisation(bg, acct, c.id)
		wantCode(t, err, fieldops.ENOTFOUND)
		_, err = te.tg.ChooseOrganisation(bg, 7999, a.id)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		wantResolved(t, te, acct, lb)
	})

	t.Run("OKCurrentUnlinked", func(t *testing.T) {
		// The current organisation's link ends: the other one is the only one.
		if err := te.tg.Unlink(b.ctx[fieldops.RoleManager], b.user[fieldops.RoleManager]); err != nil {
			t.Fatal(err)
		}
		wantResolved(t, te, acct, la)
	})

	t.Run("ErrNotLinked", func(t *testing.T) {
		_, _, err := te.tg.Resolve(bg, 7998)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if msg := fieldops.ErrorMessage(err); msg != "This Telegram account is not linked. In the web panel open your profile, choose Link Telegram and tap the link." {
			t.Errorf("message = %q", msg)
		}
	})

	t.Run("ErrExpired", func(t *testing.T) {
		te.clock.Advance(te.sessions.TelegramTTL)
		_, _, err := te.tg.Resolve(bg, acct)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "expired") {
			t.Errorf("message = %q", msg)
		}
	})
}

func TestTelegramService_Unlink(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	tests := []struct {
		name   string
		actor  fieldops.Role
		target fieldops.Role
		code   string
	}{
		{"Self", fieldops.RoleEngineer, fieldops.RoleEngineer, ""},
		{"AdminUnlinksEngineer", fieldops.RoleAdmin, fieldops.RoleOfficeStaff, ""},
		{"OwnerUnlinksAdmin", fieldops.RoleOwner, fieldops.RoleAdmin, ""},
		{"EngineerUnlinksOther", fieldops.RoleEngineer, fieldops.RoleManager, fieldops.EFORBIDDEN},
		{"AdminUnlinksOwner", fieldops.RoleAdmin, fieldops.RoleOwner, fieldops.EFORBIDDEN},
	}
	for i, tt := range tests {
		t.Run(outcome(tt.code)+tt.name, func(t *testing.T) {
			acct := int64(8000 + i)
			target := o.user[tt.target]
			link := mustLink(t, te, o.ctx[tt.target], tgUser(acct, ""))
			before := auditCount(t, te.env, o.id)
			err := te.tg.Unlink(o.ctx[tt.actor], target)
			wantCode(t, err, tt.code)
			if tt.code != "" {
				if auditCount(t, te.env, o.id) != before {
					t.Error("a refused Unlink was audited")
				}
				wantResolved(t, te, acct, link)
				wantServed(t, te.sessionEnv, linkCtx(link))
				// Tidy up for the next case.
				if err := te.tg.Unlink(o.ctx[tt.target], target); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantNotLinked(t, te, acct)
			wantRefused(t, te.sessionEnv, linkCtx(link))
			if action, actor, _ := lastAudit(t, te.env, o.id); action != "telegram.unlink" || actor != o.user[tt.actor] {
				t.Errorf("audit = %s by %d", action, actor)
			}
			if listed(t, te, o.ctx[tt.target], target, link.SessionID) != nil {
				t.Error("the unlinked session is listed")
			}
			if n := te.rdb.Exists(context.Background(), "sessid:"+link.SessionID).Val(); n != 0 {
				t.Error("the session is still in Redis")
			}
			if n := count(t, te.env, `SELECT count(*) FROM telegram_links WHERE id = $1 AND NOT active AND unlinked_by = $2`, link.ID, o.user[tt.actor]); n != 1 {
				t.Error("the link is not recorded as unlinked by the actor")
			}
		})
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, te.tg.Unlink(o.ctx[fieldops.RoleEngineer], o.user[fieldops.RoleEngineer]), fieldops.ENOTFOUND)
		other := mustOrg(t, te.env)
		mustLink(t, te, other.ctx[fieldops.RoleEngineer], tgUser(8100, ""))
		wantCode(t, te.tg.Unlink(o.ctx[fieldops.RoleOwner], other.user[fieldops.RoleEngineer]), fieldops.ENOTFOUND)
		wantCode(t, te.tg.Unlink(context.Background(), o.user[fieldops.RoleEngineer]), fieldops.EUNAUTHORIZED)
	})
}

// TestTelegramService_Revocation: ending the session ends the link, and an
// update the bot handles after that (even one that waited in the inbox
// with the link already resolved) is refused.
func TestTelegramService_Revocation(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	mustSeats(t, te, o, 10)
	bg := context.Background()
	tests := []struct {
		name   string
		revoke func(t *testing.T, link *fieldops.TelegramLink)
		// byMembership: the actor is refused as a removed member rather
		// than as an ended session.
		byMembership bool
	}{
		{name: "RevokeSession", revoke: func(t *testing.T, link *fieldops.TelegramLink) {
			if err := te.sessions.RevokeSession(o.ctx[fieldops.RoleAdmin], link.SessionID); err != nil {
				t.Fatal(err)
			}
			if n := count(t, te.env, `SELECT count(*) FROM telegram_links WHERE id = $1 AND NOT active AND unlinked_by = $2`, link.ID, o.user[fieldops.RoleAdmin]); n != 1 {
				t.Error("the link is still active")
			}
		}},
		{name: "RevokeOwnSessionFromTheChat", revoke: func(t *testing.T, link *fieldops.TelegramLink) {
			if err := te.sessions.RevokeSession(linkCtx(link), link.SessionID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "RevokeUserSessions", revoke: func(t *testing.T, link *fieldops.TelegramLink) {
			if err := te.sessions.RevokeUserSessions(o.ctx[fieldops.RoleAdmin], link.UserID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "EndMemberSessions", revoke: func(t *testing.T, link *fieldops.TelegramLink) {
			err := te.db.WithinTx(bg, func(ctx context.Context, tx pgx.Tx) error {
				return te.sessions.EndMemberSessions(ctx, tx, link.OrgID, link.UserID)
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{name: "RemoveMember", byMembership: true, revoke: func(t *testing.T, link *fieldops.TelegramLink) {
			if err := te.members.RemoveMember(o.ctx[fieldops.RoleOwner], link.UserID); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := int64(9000 + i)
			m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
			link := mustLink(t, te, actorCtx(o.id, m.UserID), tgUser(acct, ""))
			// The bot resolved the link for an update, which then waits.
			resolved, _, err := te.tg.Resolve(bg, acct)
			if err != nil {
				t.Fatal(err)
			}
			tt.revoke(t, link)
			wantNotLinked(t, te, acct)
			if tt.byMembership {
				_, err := te.members.FindMemberByID(linkCtx(resolved), m.UserID)
				wantCode(t, err, fieldops.EUNAUTHORIZED)
			} else {
				wantRefused(t, te.sessionEnv, linkCtx(resolved))
			}
			if n := count(t, te.env, `SELECT count(*) FROM telegram_links WHERE id = $1 AND active`, link.ID); n != 0 {
				t.Error("the link is still active")
			}
			// Losing Redis brings nothing back.
			if err := te.rdb.FlushDB(bg).Err(); err != nil {
				t.Fatal(err)
			}
			wantNotLinked(t, te, acct)
			if err := te.tg.TouchLink(bg, acct); err != nil {
				t.Fatal(err)
			}
			wantNotLinked(t, te, acct)
		})
	}

	t.Run("RedisFlush", func(t *testing.T) {
		m := mustMember(t, te.env, o.ctx[fieldops.RoleOwner], fieldops.RoleEngineer)
		mctx := actorCtx(o.id, m.UserID)
		link := mustLink(t, te, mctx, tgUser(9100, "kept"))
		if err := te.rdb.FlushDB(bg).Err(); err != nil {
			t.Fatal(err)
		}
		// The chat still works: the link is the record.
		wantResolved(t, te, 9100, link)
		wantServed(t, te.sessionEnv, linkCtx(link))
		// The session is listed from the link, and can be revoked.
		sess := listed(t, te, mctx, m.UserID, link.SessionID)
		if sess == nil || sess.Channel != fieldops.ChannelTelegram || sess.Device != "Telegram @kept" || !sess.CreatedAt.Equal(link.LinkedAt) {
			t.Fatalf("lost session = %+v", sess)
		}
		all, err := te.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{})
		if err != nil || !slices.ContainsFunc(all, func(s *fieldops.Session) bool { return s.ID == link.SessionID }) {
			t.Fatalf("organisation's sessions = %+v, %v", all, err)
		}
		if err := te.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], link.SessionID); err != nil {
			t.Fatal(err)
		}
		wantNotLinked(t, te, 9100)
		wantRefused(t, te.sessionEnv, linkCtx(link))
	})
}

func TestTelegramService_TouchLink(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	bg := context.Background()
	eng := o.user[fieldops.RoleEngineer]
	link := mustLink(t, te, o.ctx[fieldops.RoleEngineer], tgUser(9500, ""))
	seen := func() time.Time {
		var at time.Time
		if err := te.pool.QueryRow(bg, `SELECT last_seen_at FROM telegram_links WHERE id = $1`, link.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	t.Run("OKSeen", func(t *testing.T) {
		start := te.clock.Now()
		te.clock.Advance(30 * time.Second)
		if err := te.tg.TouchLink(bg, 9500); err != nil {
			t.Fatal(err)
		}
		if !seen().Equal(start) {
			t.Errorf("last_seen_at moved within a minute")
		}
		te.clock.Advance(31 * time.Second)
		if err := te.tg.TouchLink(bg, 9500); err != nil {
			t.Fatal(err)
		}
		if !seen().Equal(te.clock.Now()) {
			t.Errorf("last_seen_at = %v, want %v", seen(), te.clock.Now())
		}
		if sess := listed(t, te, o.ctx[fieldops.RoleEngineer], eng, link.SessionID); sess == nil || !sess.LastSeenAt.Equal(te.clock.Now()) {
			t.Errorf("listed session = %+v", sess)
		}
	})

	t.Run("OKUnblocked", func(t *testing.T) {
		if err := store.NewOutbox(te.db).MarkBlocked(bg, o.id, eng, te.clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantNotLinked(t, te, 9500)
		if err := te.tg.TouchLink(bg, 9500); err != nil {
			t.Fatal(err)
		}
		wantResolved(t, te, 9500, link)
		wantServed(t, te.sessionEnv, linkCtx(link))
	})

	t.Run("UnlinkWhileBlocked", func(t *testing.T) {
		// Blocked, then unlinked by the member: unblocking does not bring
		// the link back.
		if err := store.NewOutbox(te.db).MarkBlocked(bg, o.id, eng, te.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := te.tg.Unlink(o.ctx[fieldops.RoleEngineer], eng); err != nil {
			t.Fatalf("Unlink of a blocked link = %v", err)
		}
		if err := te.tg.TouchLink(bg, 9500); err != nil {
			t.Fatal(err)
		}
		wantNotLinked(t, te, 9500)
		link = mustLink(t, te, o.ctx[fieldops.RoleEngineer], tgUser(9500, ""))
	})

	t.Run("NotUnblockedWhenRevoked", func(t *testing.T) {
		if err := store.NewOutbox(te.db).MarkBlocked(bg, o.id, eng, te.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := te.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], eng); err != nil {
			t.Fatal(err)
		}
		if err := te.tg.TouchLink(bg, 9500); err != nil {
			t.Fatal(err)
		}
		wantNotLinked(t, te, 9500)
	})
}

func TestTelegramService_ChatState(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	bg := context.Background()
	const acct = 9700
	mustLink(t, te, o.ctx[fieldops.RoleEngineer], tgUser(acct, ""))

	get := func(t *testing.T, ctx context.Context) fieldops.ChatState {
		t.Helper()
		st, err := te.tg.ChatState(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("OKNone", func(t *testing.T) {
		if st := get(t, bg); st.Kind != "" {
			t.Errorf("state = %+v", st)
		}
		st, err := te.tg.ChatState(bg, 9799) // no row at all
		if err != nil || st.Kind != "" {
			t.Errorf("state = %+v, %v", st, err)
		}
	})

	t.Run("OKRoundTrip", func(t *testing.T) {
		want := fieldops.ChatState{Kind: "defect_description", JobID: o.job.ID, Data: map[string]any{"code": "C1"}}
		if err := te.tg.SetChatState(bg, acct, want); err != nil {
			t.Fatal(err)
		}
		got := get(t, bg)
		if got.Kind != want.Kind || got.JobID != want.JobID || got.Data["code"] != "C1" || !got.At.Equal(te.clock.Now()) {
			t.Fatalf("state = %+v", got)
		}
		// A new account's state is its own row.
		if err := te.tg.SetChatState(bg, 9798, fieldops.ChatState{Kind: "check_in"}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, bg); got.Kind != want.Kind {
			t.Errorf("state = %+v", got)
		}
	})

	t.Run("OKExpiry", func(t *testing.T) {
		if err := te.tg.SetChatState(bg, acct, fieldops.ChatState{Kind: "check_out", JobID: o.job.ID}); err != nil {
			t.Fatal(err)
		}
		te.clock.Advance(fieldops.ChatStateTTL - time.Second)
		if st := get(t, bg); st.Kind != "check_out" {
			t.Fatalf("state = %+v", st)
		}
		te.clock.Advance(time.Second)
		if st := get(t, bg); st.Kind != "" {
			t.Fatalf("state older than the TTL = %+v", st)
		}
	})

	t.Run("OKClear", func(t *testing.T) {
		if err := te.tg.SetChatState(bg, acct, fieldops.ChatState{Kind: "check_in"}); err != nil {
			t.Fatal(err)
		}
		if err := te.tg.SetChatState(bg, acct, fieldops.ChatState{}); err != nil {
			t.Fatal(err)
		}
		if st := get(t, bg); st.Kind != "" {
			t.Fatalf("state = %+v", st)
		}
	})

	t.Run("OKInUnitOfWork", func(t *testing.T) {
		errRollback := errors.New("roll back")
		err := te.db.WithinTx(bg, func(ctx context.Context, _ pgx.Tx) error {
			if err := te.tg.SetChatState(ctx, acct, fieldops.ChatState{Kind: "check_in"}); err != nil {
				return err
			}
			if st := get(t, ctx); st.Kind != "check_in" {
				t.Errorf("state within the unit of work = %+v", st)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		if st := get(t, bg); st.Kind != "" {
			t.Fatalf("state after rollback = %+v", st)
		}
	})

	t.Run("OKClearedWhenTheOrganisationChanges", func(t *testing.T) {
		if err := te.tg.SetChatState(bg, acct, fieldops.ChatState{Kind: "check_in", JobID: o.job.ID}); err != nil {
			t.Fatal(err)
		}
		other := mustOrg(t, te.env)
		mustLink(t, te, other.ctx[fieldops.RoleEngineer], tgUser(acct, ""))
		if st := get(t, bg); st.Kind != "" {
			t.Fatalf("state about another organisation's job = %+v", st)
		}
	})

	t.Run("ErrKind", func(t *testing.T) {
		err := te.tg.SetChatState(bg, acct, fieldops.ChatState{Kind: "Not A Kind"})
		wantCode(t, err, fieldops.EINTERNAL)
	})
}

// TestTelegramService_RevokedDuringAnUpdate: a session ended while an
// update is being handled (after Resolve read the link, say while photos
// download) stops the update's writes at once: a write reads the
// membership and session again, whatever the unit remembered.
func TestTelegramService_RevokedDuringAnUpdate(t *testing.T) {
	t.Parallel()
	te := newTelegramEnv(t)
	o := mustOrg(t, te.env)
	mustSeats(t, te, o, 10)
	link := mustLink(t, te, o.ctx[fieldops.RoleAdmin], tgUser(9100, "ada_admin"))
	name := "Written after revocation"
	err := te.db.WithinTx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		l, _, err := te.tg.Resolve(ctx, 9100)
		if err != nil {
			return err
		}
		actx := fieldops.NewContext(ctx, l.Actor())
		if _, _, err := te.customers.FindCustomers(actx, fieldops.CustomerFilter{}); err != nil {
			return err
		}
		// Another connection ends the session meanwhile.
		if err := te.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], link.SessionID); err != nil {
			t.Fatal(err)
		}
		_, err = te.customers.CreateCustomer(actx, fieldops.CustomerUpdate{Name: &name})
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, te.env, `SELECT count(*) FROM customers WHERE org_id = $1 AND name = $2`, o.id, name); n != 0 {
		t.Fatal("a revoked session wrote")
	}
}
