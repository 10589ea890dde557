package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
	"github.com/fieldops/fieldops/store/storetest"
)

// sessionEnv is an env with the session services on a Redis database of
// the test's own, a hook that counts (and can break) Redis calls, and a
// clock the test moves.
type sessionEnv struct {
	*env
	rdb      *redis.Client
	hook     *countingHook
	sessions *store.SessionService
	tokens   *store.APITokenService
	clock    *sessionClock
}

func newSessionEnv(tb testing.TB) *sessionEnv {
	tb.Helper()
	e := newEnv(tb)
	clock := &sessionClock{t: time.Now().UTC().Truncate(time.Microsecond)}
	e.db.Now = clock.Now
	rdb := storetest.MustOpenRedis(tb)
	hook := &countingHook{}
	rdb.AddHook(hook)
	sessions := store.NewSessionService(e.db, rdb)
	return &sessionEnv{env: e, rdb: rdb, hook: hook, sessions: sessions,
		tokens: store.NewAPITokenService(e.db, sessions), clock: clock}
}

// sessionClock is a clock that moves only when told; safe for concurrent use.
type sessionClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sessionClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *sessionClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingHook counts round trips to Redis (a command or a pipeline each)
// and, when failDel is set, fails every call that deletes keys, as if
// Redis went away between a revocation's commit and its clean-up.
type countingHook struct {
	calls   atomic.Int64
	failDel atomic.Bool
}

var errInjected = errors.New("injected redis failure")

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.calls.Add(1)
		if h.failDel.Load() && cmd.Name() == "del" {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.calls.Add(1)
		if h.failDel.Load() {
			for _, c := range cmds {
				if c.Name() == "del" {
					for _, c := range cmds {
						c.SetErr(errInjected)
					}
					return errInjected
				}
			}
		}
		return next(ctx, cmds)
	}
}

var clientIP = netip.MustParseAddr("203.0.113.7")

const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// mustSession starts a session for a member and returns it, its token and
// a context carrying the actor that Authenticate gives for it.
func mustSession(tb testing.TB, se *sessionEnv, orgID, userID int64, ch fieldops.Channel) (*fieldops.Session, string, context.Context) {
	tb.Helper()
	sess, token, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
		OrgID: orgID, UserID: userID, Channel: ch, UserAgent: firefoxUA, Device: "test device", IP: clientIP})
	if err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	_, actor, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return sess, token, fieldops.NewContext(context.Background(), actor)
}

// wantSignedIn checks that a token authenticates as the session.
func wantSignedIn(tb testing.TB, se *sessionEnv, token string, want *fieldops.Session) {
	tb.Helper()
	got, actor, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	if got.ID != want.ID || actor.SessionID != want.ID || actor.UserID != want.UserID || actor.OrgID != want.OrgID {
		tb.Fatalf("Authenticate = %+v, %+v; want session %s of user %d", got, actor, want.ID, want.UserID)
	}
}

// wantSignedOut checks that a token no longer authenticates.
func wantSignedOut(tb testing.TB, se *sessionEnv, token string) {
	tb.Helper()
	sess, actor, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	wantCode(tb, err, fieldops.EUNAUTHORIZED)
	if sess != nil || actor != (fieldops.Actor{}) {
		tb.Fatalf("Authenticate returned %+v, %+v with an error", sess, actor)
	}
}

// wantRefused checks that a service call with the actor of ctx is refused
// because its session ended.
func wantRefused(tb testing.TB, se *sessionEnv, ctx context.Context) {
	tb.Helper()
	a, _ := fieldops.ActorFrom(ctx)
	_, err := se.members.FindMemberByID(ctx, a.UserID)
	wantCode(tb, err, fieldops.EUNAUTHORIZED)
	if msg := fieldops.ErrorMessage(err); msg != "Your session has ended. Please sign in again." {
		tb.Fatalf("message = %q", msg)
	}
}

// wantServed checks that a service call with the actor of ctx works.
func wantServed(tb testing.TB, se *sessionEnv, ctx context.Context) {
	tb.Helper()
	a, _ := fieldops.ActorFrom(ctx)
	if _, err := se.members.FindMemberByID(ctx, a.UserID); err != nil {
		tb.Fatalf("FindMemberByID with a live session: %v", err)
	}
}

// redisDump returns every key and value of the test's Redis database as
// text, to look for secrets in.
func redisDump(tb testing.TB, se *sessionEnv) string {
	tb.Helper()
	ctx := context.Background()
	keys, err := se.rdb.Keys(ctx, "*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\n")
		switch typ := se.rdb.Type(ctx, k).Val(); typ {
		case "string":
			b.WriteString(se.rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&b, se.rdb.HGetAll(ctx, k).Val())
		case "set":
			fmt.Fprint(&b, se.rdb.SMembers(ctx, k).Val())
		default:
			tb.Fatalf("unexpected key type %s of %s", typ, k)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestSessionService_CreateSession(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]

	t.Run("OK", func(t *testing.T) {
		now := se.clock.Now()
		for _, tc := range []struct {
			ch      fieldops.Channel
			prefix  string
			device  string
			expires time.Duration
		}{
			{fieldops.ChannelWeb, "fow_", "Firefox on desktop", 12 * time.Hour},
			{fieldops.ChannelAPI, "foa_", "test device", 365 * 24 * time.Hour},
			{fieldops.ChannelTelegram, "fot_", "test device", 90 * 24 * time.Hour},
		} {
			sess, token, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
				OrgID: o.id, UserID: eng, Channel: tc.ch, UserAgent: firefoxUA, Device: "test device", IP: clientIP, TwoFactor: true})
			if err != nil {
				t.Fatalf("%s: %v", tc.ch, err)
			}
			if !strings.HasPrefix(token, tc.prefix) || len(token) != len(tc.prefix)+43 {
				t.Errorf("%s token = %q", tc.ch, token)
			}
			if sess.OrgID != o.id || sess.UserID != eng || sess.Channel != tc.ch || sess.Device != tc.device ||
				sess.IP != "203.0.113.7" || !sess.TwoFactor || sess.UserName == "" ||
				!sess.CreatedAt.Equal(now) || !sess.LastSeenAt.Equal(now) || !sess.ExpiresAt.Equal(now.Add(tc.expires)) {
				t.Errorf("%s session = %+v", tc.ch, sess)
			}
			got, actor, err := se.sessions.Authenticate(context.Background(), token, netip.MustParseAddr("198.51.100.1"))
			if err != nil {
				t.Fatalf("%s Authenticate: %v", tc.ch, err)
			}
			if !reflect.DeepEqual(got, sess) {
				t.Errorf("%s Authenticate = %+v, want %+v", tc.ch, got, sess)
			}
			want := fieldops.Actor{UserID: eng, OrgID: o.id, Channel: tc.ch, IP: netip.MustParseAddr("198.51.100.1"),
				SessionID: sess.ID, SessionStart: now}
			if actor != want {
				t.Errorf("%s actor = %+v, want %+v", tc.ch, actor, want)
			}
			wantServed(t, se, fieldops.NewContext(context.Background(), actor))
			// Nothing in Redis is the token.
			if dump := redisDump(t, se); strings.Contains(dump, token) || strings.Contains(dump, token[4:]) {
				t.Errorf("%s: the raw token is stored in Redis", tc.ch)
			}
		}
	})

	t.Run("ShorterTTL", func(t *testing.T) {
		sess, _, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
			OrgID: o.id, UserID: eng, Channel: fieldops.ChannelWeb, TTL: time.Hour})
		if err != nil || !sess.ExpiresAt.Equal(sess.CreatedAt.Add(time.Hour)) {
			t.Fatalf("CreateSession = %+v, %v", sess, err)
		}
		// A TTL cannot lengthen a web session past WebMax.
		sess, _, err = se.sessions.CreateSession(context.Background(), fieldops.NewSession{
			OrgID: o.id, UserID: eng, Channel: fieldops.ChannelWeb, TTL: 48 * time.Hour})
		if err != nil || !sess.ExpiresAt.Equal(sess.CreatedAt.Add(12*time.Hour)) {
			t.Fatalf("CreateSession = %+v, %v", sess, err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, n := range []fieldops.NewSession{
			{OrgID: o.id, UserID: eng, Channel: fieldops.ChannelSystem},
			{OrgID: o.id, UserID: eng, Channel: ""},
			{OrgID: 0, UserID: eng, Channel: fieldops.ChannelWeb},
			{OrgID: o.id, UserID: eng, Channel: fieldops.ChannelWeb, TTL: -time.Second},
		} {
			_, _, err := se.sessions.CreateSession(context.Background(), n)
			wantCode(t, err, fieldops.EINVALID)
		}
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		other := mustOrg(t, se.env)
		// A member of another organisation, and a removed member.
		_, _, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
			OrgID: o.id, UserID: other.user[fieldops.RoleEngineer], Channel: fieldops.ChannelWeb})
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		removed := o.user[fieldops.RoleAccountant]
		if err := se.members.RemoveMember(o.ctx[fieldops.RoleOwner], removed); err != nil {
			t.Fatal(err)
		}
		_, _, err = se.sessions.CreateSession(context.Background(), fieldops.NewSession{
			OrgID: o.id, UserID: removed, Channel: fieldops.ChannelWeb})
		wantCode(t, err, fieldops.EUNAUTHORIZED)
	})
}

func TestSessionService_Device(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	for _, tc := range []struct{ ua, want string }{
		{firefoxUA, "Firefox on desktop"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Chrome on desktop"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge on desktop"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera on desktop"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", "Safari on desktop"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1", "Safari on mobile"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1", "Chrome on mobile"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", "Chrome on mobile"},
		{"Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0", "Firefox on mobile"},
		{"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari on mobile"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Web browser on mobile"},
		{"curl/8.5.0", "Web browser on desktop"},
		{"", "Web browser on desktop"},
	} {
		sess, _, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
			OrgID: o.id, UserID: o.user[fieldops.RoleOwner], Channel: fieldops.ChannelWeb, UserAgent: tc.ua})
		if err != nil {
			t.Fatal(err)
		}
		if sess.Device != tc.want {
			t.Errorf("device of %q = %q, want %q", tc.ua, sess.Device, tc.want)
		}
	}
	// API and Telegram take the caller's label, cleaned.
	sess, _, err := se.sessions.CreateSession(context.Background(), fieldops.NewSession{
		OrgID: o.id, UserID: o.user[fieldops.RoleOwner], Channel: fieldops.ChannelTelegram, Device: " Telegram @sam\n\x00" + strings.Repeat("x", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Telegram @sam" + strings.Repeat("x", 87); sess.Device != want {
		t.Errorf("device = %q, want %q", sess.Device, want)
	}
}

func TestSessionService_Authenticate(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)

	t.Run("ErrUnauthorizedMalformed", func(t *testing.T) {
		valid := "fow_" + strings.Repeat("A", 43)
		for _, tok := range []string{
			"", "fow_", "fow_short", valid + "A", valid[:len(valid)-1], "foi_" + strings.Repeat("A", 43),
			"foc_" + strings.Repeat("A", 43), "FOW_" + strings.Repeat("A", 43), "xyz_" + strings.Repeat("A", 43),
		} {
			before := se.hook.calls.Load()
			wantSignedOut(t, se, tok)
			if n := se.hook.calls.Load() - before; n != 0 {
				t.Errorf("malformed token %q cost %d Redis calls, want 0", tok, n)
			}
		}
	})

	t.Run("ErrUnauthorizedUnknown", func(t *testing.T) {
		for _, p := range []string{"fow_", "foa_", "fot_"} {
			wantSignedOut(t, se, p+base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
		}
	})

	t.Run("ErrUnauthorizedWrongKind", func(t *testing.T) {
		// A web token's secret with an API prefix names no session.
		_, token, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOwner], fieldops.ChannelWeb)
		wantSignedOut(t, se, "foa_"+token[4:])
	})
}

func TestSessionService_IdleTimeout(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	sess, token, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOfficeStaff], fieldops.ChannelWeb)

	// Activity keeps a web session going: each request within 30 minutes
	// of the last moves the idle deadline.
	for range 4 {
		se.clock.Advance(29 * time.Minute)
		wantSignedIn(t, se, token, sess)
	}
	se.clock.Advance(30 * time.Minute)
	_, _, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	wantCode(t, err, fieldops.EUNAUTHORIZED)
	if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "30 minutes without activity") {
		t.Errorf("message = %q", msg)
	}
	// It is gone from Redis: coming back later does not help.
	if n := se.rdb.Exists(context.Background(), "sessid:"+sess.ID).Val(); n != 0 {
		t.Errorf("expired session still in Redis")
	}
	se.clock.Advance(-30 * time.Minute)
	wantSignedOut(t, se, token)

	// API tokens and Telegram chats have no idle timeout.
	_, api, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOfficeStaff], fieldops.ChannelAPI)
	_, tg, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOfficeStaff], fieldops.ChannelTelegram)
	se.clock.Advance(40 * 24 * time.Hour)
	for _, tok := range []string{api, tg} {
		if _, _, err := se.sessions.Authenticate(context.Background(), tok, clientIP); err != nil {
			t.Errorf("after 40 idle days: %v", err)
		}
	}
}

func TestSessionService_AbsoluteTimeout(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	sess, token, _ := mustSession(t, se, o.id, o.user[fieldops.RoleManager], fieldops.ChannelWeb)
	// Active every 20 minutes for 12 hours: still signed out at 12 h.
	for range 12*3 - 1 {
		se.clock.Advance(20 * time.Minute)
		wantSignedIn(t, se, token, sess)
	}
	se.clock.Advance(20 * time.Minute)
	_, _, err := se.sessions.Authenticate(context.Background(), token, clientIP)
	wantCode(t, err, fieldops.EUNAUTHORIZED)
	if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "expired") {
		t.Errorf("message = %q", msg)
	}

	t.Run("Telegram", func(t *testing.T) {
		_, tg, _ := mustSession(t, se, o.id, o.user[fieldops.RoleManager], fieldops.ChannelTelegram)
		se.clock.Advance(90*24*time.Hour - time.Second)
		if _, _, err := se.sessions.Authenticate(context.Background(), tg, clientIP); err != nil {
			t.Fatal(err)
		}
		se.clock.Advance(time.Second)
		_, _, err := se.sessions.Authenticate(context.Background(), tg, clientIP)
		wantCode(t, err, fieldops.EUNAUTHORIZED)
		if msg := fieldops.ErrorMessage(err); !strings.Contains(msg, "Link it again") {
			t.Errorf("message = %q", msg)
		}
	})
}

func TestSessionService_TouchOncePerMinute(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	sess, token, _ := mustSession(t, se, o.id, o.user[fieldops.RoleEngineer], fieldops.ChannelWeb)
	key := "sess:" + hex.EncodeToString(tokenHash(token))
	lastSeen := func() string { return se.rdb.HGet(context.Background(), key, "last_seen").Val() }
	created := lastSeen()
	other := netip.MustParseAddr("2001:db8::1")

	se.clock.Advance(59 * time.Second)
	got, _, err := se.sessions.Authenticate(context.Background(), token, other)
	if err != nil {
		t.Fatal(err)
	}
	if lastSeen() != created || !got.LastSeenAt.Equal(sess.CreatedAt) || got.IP != "203.0.113.7" {
		t.Fatalf("last_seen moved within the minute: %+v", got)
	}
	se.clock.Advance(time.Second)
	got, _, err = se.sessions.Authenticate(context.Background(), token, other)
	if err != nil {
		t.Fatal(err)
	}
	if lastSeen() == created || !got.LastSeenAt.Equal(se.clock.Now()) || got.IP != "2001:db8::1" {
		t.Fatalf("last_seen not moved after a minute: %+v", got)
	}
	// The idle TTL was refreshed with it.
	if ttl := se.rdb.PTTL(context.Background(), key).Val(); ttl < 29*time.Minute || ttl > 30*time.Minute {
		t.Errorf("TTL after touch = %v", ttl)
	}
	moved := lastSeen()
	se.clock.Advance(30 * time.Second)
	if _, _, err := se.sessions.Authenticate(context.Background(), token, clientIP); err != nil {
		t.Fatal(err)
	}
	if lastSeen() != moved {
		t.Errorf("last_seen moved twice within a minute")
	}
	// The list shows it.
	list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: o.user[fieldops.RoleEngineer]})
	if err != nil || len(list) != 1 || !list[0].LastSeenAt.Equal(got.LastSeenAt) {
		t.Fatalf("FindSessions = %+v, %v", list, err)
	}
}

func tokenHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestSessionService_OneRoundTrip holds the performance target: a
// signed-in request costs one Redis round trip for its session, whether
// or not it moves last_seen.
func TestSessionService_OneRoundTrip(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	_, token, _ := mustSession(t, se, o.id, o.user[fieldops.RoleEngineer], fieldops.ChannelWeb)
	// The first call after Redis starts may load the script (EVALSHA,
	// NOSCRIPT, EVAL): warm up once.
	if _, _, err := se.sessions.Authenticate(context.Background(), token, clientIP); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if i%3 == 0 {
			se.clock.Advance(time.Minute) // this one moves last_seen
		}
		before := se.hook.calls.Load()
		if _, _, err := se.sessions.Authenticate(context.Background(), token, clientIP); err != nil {
			t.Fatal(err)
		}
		if n := se.hook.calls.Load() - before; n != 1 {
			t.Fatalf("Authenticate %d cost %d Redis round trips, want 1", i, n)
		}
	}
}

func TestSessionService_ConcurrentAuthenticate(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	var tokens []string
	for _, ch := range []fieldops.Channel{fieldops.ChannelWeb, fieldops.ChannelAPI, fieldops.ChannelTelegram} {
		_, tok, _ := mustSession(t, se, o.id, o.user[fieldops.RoleEngineer], ch)
		tokens = append(tokens, tok)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if g == 0 && i%10 == 0 {
					se.clock.Advance(31 * time.Second)
				}
				tok := tokens[(g+i)%len(tokens)]
				sess, actor, err := se.sessions.Authenticate(context.Background(), tok, clientIP)
				if err != nil {
					errs <- err
					return
				}
				if actor.SessionID != sess.ID || actor.UserID != o.user[fieldops.RoleEngineer] {
					errs <- fmt.Errorf("actor %+v for session %+v", actor, sess)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSessionService_FindSessions(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	other := mustOrg(t, se.env)
	eng, office := o.user[fieldops.RoleEngineer], o.user[fieldops.RoleOfficeStaff]
	var tokens []string
	var hashes [][]byte
	add := func(orgID, userID int64, ch fieldops.Channel) *fieldops.Session {
		sess, tok, _ := mustSession(t, se, orgID, userID, ch)
		tokens = append(tokens, tok)
		hashes = append(hashes, tokenHash(tok))
		return sess
	}
	engWeb := add(o.id, eng, fieldops.ChannelWeb)
	engTG := add(o.id, eng, fieldops.ChannelTelegram)
	se.clock.Advance(2 * time.Minute)
	officeWeb := add(o.id, office, fieldops.ChannelWeb)
	add(other.id, other.user[fieldops.RoleEngineer], fieldops.ChannelWeb)
	_, apiTok, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Xero sync")
	if err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, apiTok)
	hashes = append(hashes, tokenHash(apiTok))

	ids := func(list []*fieldops.Session) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s.ID] = true
		}
		return m
	}

	t.Run("OKOwn", func(t *testing.T) {
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: eng})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || !ids(list)[engWeb.ID] || !ids(list)[engTG.ID] {
			t.Fatalf("own sessions = %+v", list)
		}
		for _, s := range list {
			if s.UserID != eng || s.OrgID != o.id {
				t.Errorf("someone else's session listed: %+v", s)
			}
		}
	})

	t.Run("ErrForbidden", func(t *testing.T) {
		for _, f := range []fieldops.SessionFilter{{UserID: 0}, {UserID: office}, {UserID: o.user[fieldops.RoleOwner]}} {
			_, err := se.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], f)
			wantCode(t, err, fieldops.EFORBIDDEN)
		}
	})

	t.Run("OKViewAll", func(t *testing.T) {
		for _, role := range []fieldops.Role{fieldops.RoleOwner, fieldops.RoleAdmin} {
			list, err := se.sessions.FindSessions(o.ctx[role], fieldops.SessionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); len(list) != 4 || !got[engWeb.ID] || !got[officeWeb.ID] {
				t.Fatalf("%s: org sessions = %+v", role, list)
			}
			for i := 1; i < len(list); i++ {
				if list[i].LastSeenAt.After(list[i-1].LastSeenAt) {
					t.Errorf("not newest first: %+v", list)
				}
			}
			list, err = se.sessions.FindSessions(o.ctx[role], fieldops.SessionFilter{UserID: office})
			if err != nil || len(list) != 1 || list[0].ID != officeWeb.ID {
				t.Fatalf("%s: office sessions = %+v, %v", role, list, err)
			}
		}
		// Another organisation's member: nothing.
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{UserID: other.user[fieldops.RoleEngineer]})
		if err != nil || len(list) != 0 {
			t.Fatalf("other org's sessions = %+v, %v", list, err)
		}
	})

	t.Run("NoSecrets", func(t *testing.T) {
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var secrets []string
		for i, tok := range tokens {
			h := hashes[i]
			secrets = append(secrets, tok, tok[4:], hex.EncodeToString(h), base64.RawURLEncoding.EncodeToString(h),
				base64.StdEncoding.EncodeToString(h), string(h))
		}
		for _, s := range list {
			v := reflect.ValueOf(*s)
			for i := range v.NumField() {
				text := fmt.Sprint(v.Field(i).Interface())
				for _, secret := range secrets {
					if text != "" && strings.Contains(text, secret) {
						t.Errorf("session field %s holds a token or its hash", v.Type().Field(i).Name)
					}
				}
			}
		}
	})

	t.Run("ExpiredLeftOut", func(t *testing.T) {
		se.clock.Advance(29 * time.Minute) // the engineer's web session is now 31 minutes idle
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: eng})
		if err != nil {
			t.Fatal(err)
		}
		if ids(list)[engWeb.ID] || len(list) != 2 {
			t.Fatalf("idle session listed: %+v", list)
		}
	})
}

func TestSessionService_RevokeSession(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]

	t.Run("OKOwn", func(t *testing.T) {
		_, tokA, ctxA := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		sessB, tokB, ctxB := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		if err := se.sessions.RevokeSession(ctxA, sessB.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tokB)
		wantRefused(t, se, ctxB)
		wantServed(t, se, ctxA)
		if action, actor, _ := lastAudit(t, se.env, o.id); action != "session.revoke" || actor != eng {
			t.Errorf("audit = %s by %d", action, actor)
		}
		var changes string
		if err := se.pool.QueryRow(context.Background(), `SELECT changes::text FROM audit_events WHERE org_id = $1 ORDER BY seq DESC LIMIT 1`, o.id).Scan(&changes); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"channel": "web"`, `"device": "Firefox on desktop"`, `"session_id": "` + sessB.ID + `"`} {
			if !strings.Contains(changes, want) {
				t.Errorf("audit changes %s lack %s", changes, want)
			}
		}
		// Signing out of the current session works too.
		sessA, _, _ := se.sessions.Authenticate(context.Background(), tokA, clientIP)
		if err := se.sessions.RevokeSession(ctxA, sessA.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tokA)
		wantRefused(t, se, ctxA)
	})

	t.Run("OKOwnerRevokesAdmin", func(t *testing.T) {
		sess, tok, ctx := mustSession(t, se, o.id, o.user[fieldops.RoleAdmin], fieldops.ChannelTelegram)
		if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], sess.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
		wantRefused(t, se, ctx)
		var by int64
		var reason string
		if err := se.pool.QueryRow(context.Background(), `SELECT revoked_by, reason FROM sessions_revoked WHERE session_id = $1`, sess.ID).Scan(&by, &reason); err != nil {
			t.Fatal(err)
		}
		if by != o.user[fieldops.RoleOwner] || reason != "revoked" {
			t.Errorf("sessions_revoked = %d, %q", by, reason)
		}
	})

	t.Run("OKAdminRevokesEngineer", func(t *testing.T) {
		sess, tok, _ := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleAdmin], sess.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
	})

	t.Run("ErrForbidden", func(t *testing.T) {
		ownerSess, ownerTok, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOwner], fieldops.ChannelWeb)
		officeSess, officeTok, _ := mustSession(t, se, o.id, o.user[fieldops.RoleOfficeStaff], fieldops.ChannelWeb)
		before := snapshot(t, se.env, o.id)
		// An Admin cannot end an Owner's session.
		err := se.sessions.RevokeSession(o.ctx[fieldops.RoleAdmin], ownerSess.ID)
		wantCode(t, err, fieldops.EFORBIDDEN)
		// Without session.revoke_all, nobody else's.
		for _, role := range []fieldops.Role{fieldops.RoleEngineer, fieldops.RoleManager, fieldops.RoleReadOnly} {
			wantCode(t, se.sessions.RevokeSession(o.ctx[role], officeSess.ID), fieldops.EFORBIDDEN)
		}
		if after := snapshot(t, se.env, o.id); after != before {
			t.Error("a refused revocation changed data")
		}
		if n := count(t, se.env, `SELECT count(*) FROM sessions_revoked WHERE session_id IN ($1, $2)`, ownerSess.ID, officeSess.ID); n != 0 {
			t.Error("a refused revocation was recorded")
		}
		wantSignedIn(t, se, ownerTok, ownerSess)
		wantSignedIn(t, se, officeTok, officeSess)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		other := mustOrg(t, se.env)
		otherSess, otherTok, _ := mustSession(t, se, other.id, other.user[fieldops.RoleEngineer], fieldops.ChannelWeb)
		for _, id := range []string{otherSess.ID, "000000000000000000000000", "nothex", "", strings.Repeat("A", 24)} {
			wantCode(t, se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], id), fieldops.ENOTFOUND)
		}
		wantSignedIn(t, se, otherTok, otherSess)
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		sess, _, _ := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		wantCode(t, se.sessions.RevokeSession(context.Background(), sess.ID), fieldops.EUNAUTHORIZED)
	})
}

func TestSessionService_RevokeUserSessions(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]

	t.Run("OK", func(t *testing.T) {
		var toks []string
		var ctxs []context.Context
		for _, ch := range []fieldops.Channel{fieldops.ChannelWeb, fieldops.ChannelWeb, fieldops.ChannelTelegram} {
			_, tok, ctx := mustSession(t, se, o.id, eng, ch)
			toks, ctxs = append(toks, tok), append(ctxs, ctx)
		}
		_, apiTok, err := se.tokens.CreateAPIToken(ctxs[0], "CI")
		if err != nil {
			t.Fatal(err)
		}
		_, apiActor, err := se.sessions.Authenticate(context.Background(), apiTok, clientIP)
		if err != nil {
			t.Fatal(err)
		}
		toks, ctxs = append(toks, apiTok), append(ctxs, fieldops.NewContext(context.Background(), apiActor))
		// Someone else's session is untouched.
		officeSess, officeTok, officeCtx := mustSession(t, se, o.id, o.user[fieldops.RoleOfficeStaff], fieldops.ChannelWeb)

		se.clock.Advance(time.Second)
		if err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], eng); err != nil {
			t.Fatal(err)
		}
		for i, tok := range toks {
			wantSignedOut(t, se, tok)
			wantRefused(t, se, ctxs[i])
		}
		wantSignedIn(t, se, officeTok, officeSess)
		wantServed(t, se, officeCtx)
		if n := count(t, se.env, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL`, eng); n != 0 {
			t.Errorf("%d API tokens still live", n)
		}
		if action, _, _ := lastAudit(t, se.env, o.id); action != "session.revoke_all" {
			t.Errorf("audit = %s", action)
		}
		if n := se.rdb.SCard(context.Background(), fmt.Sprintf("usess:%d:%d", o.id, eng)).Val(); n != 0 {
			t.Errorf("%d sessions left in the index", n)
		}
		// Signing in again afterwards works.
		se.clock.Advance(time.Second)
		sess, tok, ctx := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		wantSignedIn(t, se, tok, sess)
		wantServed(t, se, ctx)
	})

	t.Run("OKOwn", func(t *testing.T) {
		_, tok, ctx := mustSession(t, se, o.id, o.user[fieldops.RoleManager], fieldops.ChannelWeb)
		se.clock.Advance(time.Second)
		if err := se.sessions.RevokeUserSessions(ctx, o.user[fieldops.RoleManager]); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
		wantRefused(t, se, ctx)
	})

	t.Run("OKOwnerRevokesAdmin", func(t *testing.T) {
		_, tok, ctx := mustSession(t, se, o.id, o.user[fieldops.RoleAdmin], fieldops.ChannelWeb)
		se.clock.Advance(time.Second)
		if err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], o.user[fieldops.RoleAdmin]); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
		wantRefused(t, se, ctx)
	})

	t.Run("ErrForbidden", func(t *testing.T) {
		se.clock.Advance(time.Second)
		ownerSess, ownerTok, ownerCtx := mustSession(t, se, o.id, o.user[fieldops.RoleOwner], fieldops.ChannelWeb)
		before := snapshot(t, se.env, o.id)
		floors := count(t, se.env, `SELECT count(*) FROM user_sessions_floor`)
		// An Admin cannot end an Owner's sessions.
		err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleAdmin], o.user[fieldops.RoleOwner])
		wantCode(t, err, fieldops.EFORBIDDEN)
		for _, role := range []fieldops.Role{fieldops.RoleEngineer, fieldops.RoleManager, fieldops.RoleOfficeStaff} {
			wantCode(t, se.sessions.RevokeUserSessions(o.ctx[role], o.user[fieldops.RoleAccountant]), fieldops.EFORBIDDEN)
		}
		if after := snapshot(t, se.env, o.id); after != before {
			t.Error("a refused revocation changed data")
		}
		if n := count(t, se.env, `SELECT count(*) FROM user_sessions_floor`); n != floors {
			t.Error("a refused revocation set a floor")
		}
		wantSignedIn(t, se, ownerTok, ownerSess)
		wantServed(t, se, ownerCtx)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		other := mustOrg(t, se.env)
		wantCode(t, se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], other.user[fieldops.RoleEngineer]), fieldops.ENOTFOUND)
	})
}

// TestSessionService_EndMemberSessions is what removing a member does:
// the floor in the caller's transaction, then the Redis purge.
func TestSessionService_EndMemberSessions(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	user := o.user[fieldops.RoleAccountant]
	_, web, webCtx := mustSession(t, se, o.id, user, fieldops.ChannelWeb)
	_, apiTok, err := se.tokens.CreateAPIToken(webCtx, "Reports")
	if err != nil {
		t.Fatal(err)
	}
	se.clock.Advance(time.Second)
	ctx := context.Background()
	tx, err := se.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := se.sessions.EndMemberSessions(ctx, tx, o.id, user); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Postgres refuses at once, before the purge.
	wantRefused(t, se, webCtx)
	if err := se.sessions.PurgeRedis(ctx, o.id, user); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, se, web)
	wantSignedOut(t, se, apiTok)
	if n := count(t, se.env, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL`, user); n != 0 {
		t.Errorf("%d API tokens still live", n)
	}
}

// TestSessionService_SignOutEverywhere: a floor for all organisations
// (org_id NULL) refuses the member's sessions in this one too.
func TestSessionService_SignOutEverywhere(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	user := o.user[fieldops.RoleReadOnly]
	_, _, ctx := mustSession(t, se, o.id, user, fieldops.ChannelWeb)
	mustExec(t, se.env, `INSERT INTO user_sessions_floor (user_id, revoked_before) VALUES ($1, $2)`, user, se.clock.Now().Add(time.Millisecond))
	wantRefused(t, se, ctx)
}

// TestSessionService_RedisDataLoss: Postgres is the record of revocation
// and of API tokens.
func TestSessionService_RedisDataLoss(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]
	ctx := context.Background()

	webSess, webTok, webCtx := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
	apiSess, apiTok, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Sync")
	if err != nil {
		t.Fatal(err)
	}
	revokedAPI, revokedAPITok, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Old script")
	if err != nil {
		t.Fatal(err)
	}
	_, revokedActor, err := se.sessions.Authenticate(ctx, revokedAPITok, clientIP)
	if err != nil {
		t.Fatal(err)
	}
	// An old snapshot of the web session, taken before it is revoked.
	keys := []string{"sess:" + hex.EncodeToString(tokenHash(webTok)), "sessid:" + webSess.ID}
	dumps := make([]string, len(keys))
	for i, k := range keys {
		if dumps[i], err = se.rdb.Dump(ctx, k).Result(); err != nil {
			t.Fatal(err)
		}
	}
	if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], webSess.ID); err != nil {
		t.Fatal(err)
	}
	if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleEngineer], revokedAPI.ID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, se.env, `SELECT count(*) FROM api_tokens WHERE name = 'Old script' AND revoked_at IS NOT NULL`); n != 1 {
		t.Fatalf("revoking an API session did not revoke its api_tokens row")
	}

	t.Run("OldSnapshot", func(t *testing.T) {
		for i, k := range keys {
			if err := se.rdb.RestoreReplace(ctx, k, time.Hour, dumps[i]).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// Authenticate does not ask Postgres (one round trip), so the
		// resurrected session authenticates; every service call refuses it.
		_, actor, err := se.sessions.Authenticate(ctx, webTok, clientIP)
		if err != nil {
			t.Fatalf("restored session: %v", err)
		}
		wantRefused(t, se, fieldops.NewContext(ctx, actor))
		wantRefused(t, se, webCtx)
		// And it is not listed.
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{UserID: eng})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.ID == webSess.ID {
				t.Errorf("revoked session listed")
			}
		}
	})

	t.Run("Flush", func(t *testing.T) {
		if err := se.rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, webTok) // web sessions do not fall back
		wantRefused(t, se, webCtx)

		// The live API token is found in Postgres and put back in Redis.
		got, actor, err := se.sessions.Authenticate(ctx, apiTok, clientIP)
		if err != nil {
			t.Fatalf("API token after flush: %v", err)
		}
		if got.ID != apiSess.ID || !got.CreatedAt.Equal(apiSess.CreatedAt) || got.Device != "API token “Sync”" || actor.SessionID != apiSess.ID {
			t.Errorf("restored API session = %+v, want %+v", got, apiSess)
		}
		wantServed(t, se, fieldops.NewContext(ctx, actor))
		if n := se.rdb.Exists(ctx, "sessid:"+apiSess.ID).Val(); n != 1 {
			t.Errorf("API session not put back in Redis")
		}
		before := se.hook.calls.Load()
		wantSignedIn(t, se, apiTok, apiSess)
		if n := se.hook.calls.Load() - before; n != 1 {
			t.Errorf("Authenticate after restore cost %d round trips", n)
		}
		// The revoked one is not.
		wantSignedOut(t, se, revokedAPITok)
		wantRefused(t, se, fieldops.NewContext(ctx, revokedActor))
	})

	t.Run("ListAndRevokeLostAPIToken", func(t *testing.T) {
		_, tok, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Lost")
		if err != nil {
			t.Fatal(err)
		}
		if err := se.rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleEngineer], fieldops.SessionFilter{UserID: eng})
		if err != nil {
			t.Fatal(err)
		}
		var lost *fieldops.Session
		for _, s := range list {
			if s.Device == "API token “Lost”" {
				lost = s
			}
		}
		if lost == nil || len(list) != 2 {
			t.Fatalf("lost API token not listed: %+v", list)
		}
		if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], lost.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
		wantSignedIn(t, se, apiTok, apiSess)
	})
}

// closedRedis returns a client for a port where nothing listens.
func closedRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestSessionService_RedisDown(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]
	_, webTok, _ := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
	apiSess, apiTok, err := se.tokens.CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Sync")
	if err != nil {
		t.Fatal(err)
	}
	_, tgTok, _ := mustSession(t, se, o.id, eng, fieldops.ChannelTelegram)

	down := store.NewSessionService(se.db, closedRedis(t))
	for _, tok := range []string{webTok, apiTok, tgTok} {
		sess, actor, err := down.Authenticate(context.Background(), tok, clientIP)
		wantCode(t, err, fieldops.EUNAVAILABLE)
		if sess != nil || actor != (fieldops.Actor{}) {
			t.Fatalf("Authenticate with Redis down returned %+v, %+v", sess, actor)
		}
		if msg := fieldops.ErrorMessage(err); msg != "Sign-in is unavailable for a moment; please try again." {
			t.Errorf("message = %q", msg)
		}
	}
	_, _, err = down.CreateSession(context.Background(), fieldops.NewSession{OrgID: o.id, UserID: eng, Channel: fieldops.ChannelWeb})
	wantCode(t, err, fieldops.EUNAVAILABLE)
	_, err = down.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{})
	wantCode(t, err, fieldops.EUNAVAILABLE)
	wantCode(t, down.RevokeSession(o.ctx[fieldops.RoleOwner], apiSess.ID), fieldops.EUNAVAILABLE)

	// An API token cannot be issued without Redis, and nothing is left
	// behind.
	before := count(t, se.env, `SELECT count(*) FROM api_tokens`)
	_, _, err = store.NewAPITokenService(se.db, down).CreateAPIToken(o.ctx[fieldops.RoleEngineer], "Another")
	wantCode(t, err, fieldops.EUNAVAILABLE)
	if after := count(t, se.env, `SELECT count(*) FROM api_tokens`); after != before {
		t.Errorf("api_tokens rows %d → %d", before, after)
	}
}

// TestSessionService_RedisFailsAfterCommit: the revocation is committed in
// Postgres but Redis cannot delete the session. The answer is EUNAVAILABLE,
// and the session is refused by every service call all the same.
func TestSessionService_RedisFailsAfterCommit(t *testing.T) {
	t.Parallel()
	se := newSessionEnv(t)
	o := mustOrg(t, se.env)
	eng := o.user[fieldops.RoleEngineer]

	t.Run("RevokeSession", func(t *testing.T) {
		sess, tok, ctx := mustSession(t, se, o.id, eng, fieldops.ChannelWeb)
		audits := auditCount(t, se.env, o.id)
		se.hook.failDel.Store(true)
		err := se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], sess.ID)
		se.hook.failDel.Store(false)
		wantCode(t, err, fieldops.EUNAVAILABLE)
		if !strings.Contains(fieldops.ErrorMessage(err), "recorded") {
			t.Errorf("message = %q", fieldops.ErrorMessage(err))
		}
		if n := count(t, se.env, `SELECT count(*) FROM sessions_revoked WHERE session_id = $1`, sess.ID); n != 1 {
			t.Fatalf("sessions_revoked rows = %d", n)
		}
		if got := auditCount(t, se.env, o.id); got != audits+1 {
			t.Errorf("audit entries %d → %d", audits, got)
		}
		// Redis still has it; Postgres refuses it.
		_, actor, err := se.sessions.Authenticate(context.Background(), tok, clientIP)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		wantRefused(t, se, fieldops.NewContext(context.Background(), actor))
		wantRefused(t, se, ctx)
		list, err := se.sessions.FindSessions(o.ctx[fieldops.RoleOwner], fieldops.SessionFilter{UserID: eng})
		if err != nil || len(list) != 0 {
			t.Fatalf("FindSessions = %+v, %v", list, err)
		}
		// Trying again finishes the job, without a second audit entry.
		if err := se.sessions.RevokeSession(o.ctx[fieldops.RoleOwner], sess.ID); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
		if got := auditCount(t, se.env, o.id); got != audits+1 {
			t.Errorf("audit entries %d → %d after the retry", audits, got)
		}
	})

	t.Run("RevokeUserSessions", func(t *testing.T) {
		_, tok, ctx := mustSession(t, se, o.id, eng, fieldops.ChannelTelegram)
		se.clock.Advance(time.Second)
		se.hook.failDel.Store(true)
		err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], eng)
		se.hook.failDel.Store(false)
		wantCode(t, err, fieldops.EUNAVAILABLE)
		_, actor, err := se.sessions.Authenticate(context.Background(), tok, clientIP)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		wantRefused(t, se, fieldops.NewContext(context.Background(), actor))
		wantRefused(t, se, ctx)
		if err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], eng); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, se, tok)
	})
}

// BenchmarkAuthenticate is the hot path of every signed-in request: one
// Redis round trip (TestSessionService_OneRoundTrip holds that).
func BenchmarkAuthenticate(b *testing.B) {
	se := newSessionEnv(b)
	se.db.Now = time.Now
	o := mustOrg(b, se.env)
	_, tok, _ := mustSession(b, se, o.id, o.user[fieldops.RoleEngineer], fieldops.ChannelWeb)
	ctx := context.Background()
	before := se.hook.calls.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := se.sessions.Authenticate(ctx, tok, clientIP); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(se.hook.calls.Load()-before)/float64(b.N), "roundtrips/op")
}

// BenchmarkRevokeUserSessions100 ends all 100 sessions of a member: the
// Postgres transaction (floor, API tokens, audit) and the Redis purge.
func BenchmarkRevokeUserSessions100(b *testing.B) {
	se := newSessionEnv(b)
	se.db.Now = time.Now
	o := mustOrg(b, se.env)
	eng := o.user[fieldops.RoleEngineer]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for range 100 {
			if _, _, err := se.sessions.CreateSession(ctx, fieldops.NewSession{OrgID: o.id, UserID: eng, Channel: fieldops.ChannelWeb, UserAgent: firefoxUA}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := se.sessions.RevokeUserSessions(o.ctx[fieldops.RoleOwner], eng); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := se.rdb.SCard(ctx, fmt.Sprintf("usess:%d:%d", o.id, eng)).Val(); n != 0 {
		b.Fatalf("%d sessions left", n)
	}
}
