package store_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldops/fieldops"
)

func TestAPITokenService_CreateAPIToken(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	ro := o.user[fieldops.RoleReadOnly]
	ctx := o.ctx[fieldops.RoleReadOnly]

	var first *fieldops.Session
	t.Run("OK", func(t *testing.T) {
		// Any member may make a token for themselves, Read-Only included.
		now := se.clock.Now()
		sess, token, err := se.tokens.CreateAPIToken(ctx, "  Xero sync  ")
		if err != nil {
			t.Fatal(err)
		}
		first = sess
		if !strings.HasPrefix(token, "foa_") || len(token) != 4+43 {
			t.Errorf("token = %q", token)
		}
		if sess.UserID != ro || sess.OrgID != o.id || sess.Channel != fieldops.ChannelAPI || sess.Device != "API token “Xero sync”" ||
			!sess.CreatedAt.Equal(now) || !sess.ExpiresAt.Equal(now.Add(365*24*time.Hour)) {
			t.Errorf("session = %+v", sess)
		}
		var (
			name             string
			hash             []byte
			created, expires time.Time
		)
		if err := se.pool.QueryRow(context.Background(), `SELECT name, token_hash, created_at, expires_at FROM api_tokens WHERE org_id = $1 AND user_id = $2`, o.id, ro).
			Scan(&name, &hash, &created, &expires); err != nil {
			t.Fatal(err)
		}
		if name != "Xero sync" || !bytes.Equal(hash, tokenHash(token)) || !created.Equal(now) || !expires.Equal(sess.ExpiresAt) {
			t.Errorf("api_tokens row = %q %x %v %v", name, hash, created, expires)
		}
		if action, actor, _ := lastAudit(t, se.env, o.id); action != "api_token.create" || actor != ro {
			t.Errorf("audit = %s by %d", action, actor)
		}
		wantSignedIn(t, se, token, sess)
		if dump := redisDump(t, se); strings.Contains(dump, token) || strings.Contains(dump, token[4:]) {
			t.Error("the raw token is stored in Redis")
		}
		list, err := se.sessions.FindSessions(ctx, fieldops.SessionFilter{UserID: ro})
		if err != nil || len(list) != 1 || list[0].ID != sess.ID {
			t.Fatalf("FindSessions = %+v, %v", list, err)
		}
		// 60 characters, not bytes.
		if _, _, err := se.tokens.CreateAPIToken(ctx, strings.Repeat("é", 60)); err != nil {
			t.Errorf("60-character name: %v", err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, name := range []string{"", "   ", strings.Repeat("x", 61), "two\nlines", "nul\x00"} {
			_, _, err := se.tokens.CreateAPIToken(ctx, name)
			wantField(t, err, fieldops.EINVALID, "name")
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		before := snapshot(t, se.env, o.id)
		rows := count(t, se.env, `SELECT count(*) FROM api_tokens`)
		for _, name := range []string{"Xero sync", "XERO SYNC", " xero sync"} {
			_, _, err := se.tokens.CreateAPIToken(ctx, name)
			wantField(t, err, fieldops.ECONFLICT, "name")
		}
		if after := snapshot(t, se.env, o.id); after != before {
			t.Error("a refused token changed data")
		}
		if n := count(t, se.env, `SELECT count(*) FROM api_tokens`); n != rows {
			t.Error("a refused token left a row")
		}
		// Another member may use the same name.
		if _, _, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Xero sync"); err != nil {
			t.Fatal(err)
		}
		// Once the old token is revoked, the name is free again.
		if err := se.sessions.RevokeSession(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := se.tokens.CreateAPIToken(ctx, "Xero sync"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		_, _, err := se.tokens.CreateAPIToken(context.Background(), "CI")
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		other := mustOrg(t, se.env)
		// An actor of one organisation naming another is not a member there.
		a, _ := fieldops.ActorFrom(other.ctx[fieldops.RoleOwner])
		a.OrgID = o.id
		_, _, err = se.tokens.CreateAPIToken(fieldops.NewContext(context.Background(), a), "CI")
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
}

func TestAPITokenService_Revoke(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]
	sess, token, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Zapier")
	if err != nil {
		t.Fatal(err)
	}
	_, actor, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	if err != nil {
		t.Fatal(err)
	}
	// An Admin revokes it through the session service.
	if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleAdmin], sess.ID); err != nil {
		t.Fatal(err)
	}
	var by int64
	if err := se.pool.QueryRow(context.Background(), `SELECT revoked_by FROM api_tokens WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NOT NULL`, o.id, eng).Scan(&by); err != nil {
		t.Fatal(err)
	}
	if by != o.user[fieldops.RoleAdmin] {
		t.Errorf("revoked_by = %d", by)
	}
	wantSignedOut(t, se, token)
	wantRefused(t, se, fieldops.NewContext(context.Background(), actor))
	// Gone from Redis and Postgres alike: a flush does not bring it back.
	if err := se.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, se, token)
}

func TestAPITokenService_Expiry(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	se.sessions.APITTL = 24 * time.Hour
	o := mustOrg(t, se.env)
	sess, token, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleManager], "Short")
	if err != nil {
		t.Fatal(err)
	}
	if !sess.ExpiresAt.Equal(sess.CreatedAt.Add(24 * time.Hour)) {
		t.Fatalf("expires = %v", sess.ExpiresAt)
	}
	se.clock.Advance(24*time.Hour - time.Second)
	wantSignedIn(t, se, token, sess)
	// Postgres knows the end too: after a flush the fallback still serves
	// it until then, and not after.
	if err := se.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wantSignedIn(t, se, token, sess)
	se.clock.Advance(time.Second)
	wantSignedOut(t, se, token)
	if err := se.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, se, token)
}
