package store

// Sessions: Redis holds the live sessions, Postgres holds their
// revocation.
//
// # Redis layout
//
// Keys are plain strings; <…> marks a placeholder (not a cluster hash tag).
//
//	sess:<hex SHA-256 of the token>  HASH   id, org, user, user_name, channel, device, ip,
//	                                        two_factor ("1" or "0"), created, last_seen, expires
//	                                        (times in Unix microseconds of the service clock)
//	                                 TTL    web: min(WebIdle, time left to expires), refreshed
//	                                        whenever last_seen moves; api, telegram: time left
//	sessid:<public id>               STRING the hex hash, so a session can be found by the id
//	                                        a list shows; TTL: time left to expires
//	usess:<org>:<user>               SET    public ids of the member's sessions
//	osess:<org>                      SET    public ids of the organisation's sessions
//	                                        (TTL of both: the latest expiry of a session added)
//
// A session is written with one MULTI/EXEC. The indexes may hold ids of
// sessions that have since expired; readers skip and prune them. This
// needs Redis 7.0 or later (EXPIRE NX/GT) on a single primary (standalone
// or Sentinel): a MULTI/EXEC spans keys of several hash slots, so Redis
// Cluster would need hash tags first. The raw
// token is never stored: only its hash, and a public id derived from the
// hash (publicID), which is what lists show and revocation takes.
//
// # Timeouts
//
// Web: WebIdle (30 min) without a request, or WebMax (12 h) after sign-in,
// whichever comes first (NIST 800-63B AAL2). API tokens: APITTL (365 days),
// no idle timeout. Telegram: TelegramTTL (90 days), no idle timeout; then
// the chat must be linked again. Expiry is decided by the service clock
// (DB.Now) on every request; the Redis TTLs only clean up.
//
// # Revocation and the one-round-trip hot path
//
// Authenticate costs one Redis round trip (a Lua script that reads the
// session and, at most once a minute, moves last_seen and the idle TTL). It
// does not ask Postgres whether the session was revoked: that would double
// the cost of every request. Instead revocation is recorded in Postgres
// first (sessions_revoked for one session, user_sessions_floor for all of a
// member's) and the Redis keys are deleted after the commit; and db.load,
// which every service call runs at the start of its transaction, refuses an
// actor whose session is in either table, within the membership query it
// runs anyway. So if Redis loses the deletion (a failure after the commit,
// a restore from an old snapshot), Authenticate may still accept the token
// but every service call refuses it: a revoked session can read or change
// nothing. API tokens are the exception that survives Redis losing its
// data: their record is api_tokens, and a token Redis does not know is
// looked up there and put back.
//
// Redis errors fail closed: Authenticate returns EUNAVAILABLE, never a
// session.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
)

// touchEvery is how stale last_seen may get before a request moves it:
// at most one write per session per minute.
const touchEvery = time.Minute

// maxDevice is the longest device label kept, in runes.
const maxDevice = 100

// SessionService implements fieldops.SessionService on Redis, with the
// revocation record in Postgres.
type SessionService struct {
	db  *DB
	rdb *redis.Client

	// WebIdle ends a web session after this long without a request.
	WebIdle time.Duration
	// WebMax ends a web session this long after sign-in, however active.
	WebMax time.Duration
	// APITTL is the life of an API token.
	APITTL time.Duration
	// TelegramTTL is the life of a Telegram chat's session.
	TelegramTTL time.Duration
}

var _ fieldops.SessionService = (*SessionService)(nil)

// NewSessionService returns the session service with the default
// timeouts. Its clock is db.Now.
func NewSessionService(db *DB, rdb *redis.Client) *SessionService {
	return &SessionService{
		db: db, rdb: rdb,
		WebIdle:     30 * time.Minute,
		WebMax:      12 * time.Hour,
		APITTL:      365 * 24 * time.Hour,
		TelegramTTL: 90 * 24 * time.Hour,
	}
}

func sessKey(hash []byte) string { return "sess:" + hex.EncodeToString(hash) }
func sessIDKey(id string) string { return "sessid:" + id }
func userIndexKey(org, user int64) string {
	return "usess:" + strconv.FormatInt(org, 10) + ":" + strconv.FormatInt(user, 10)
}
func orgIndexKey(org int64) string { return "osess:" + strconv.FormatInt(org, 10) }

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// authScript is the whole of Authenticate's Redis work, one round trip:
// read the session and, when it is live and last_seen is older than
// touchEvery, move last_seen (and the IP) to now and refresh the key's TTL.
// An expired session is left as it is; the caller refuses it. The reply is
// the hash as HGETALL gives it, after the update; nil when there is none.
//
// KEYS[1] sess:<hash>; ARGV: now, web idle timeout, touchEvery (all in
// microseconds), the request's IP ("" to keep the stored one).
var authScript = redis.NewScript(`
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then return false end
local now, idle, every = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local last, expires, channel, li, ii
for i = 1, #f, 2 do
  local k = f[i]
  if k == 'last_seen' then last = tonumber(f[i+1]); li = i + 1
  elseif k == 'expires' then expires = tonumber(f[i+1])
  elseif k == 'channel' then channel = f[i+1]
  elseif k == 'ip' then ii = i + 1
  end
end
if not last or not expires or now >= expires then return f end
if channel == 'web' and now - last >= idle then return f end
if now - last < every then return f end
local ttl = expires - now
if channel == 'web' and idle < ttl then ttl = idle end
ttl = math.floor(ttl / 1000)
if ttl < 1 then ttl = 1 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
f[li] = ARGV[1]
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'ip', ARGV[4])
  if ii then f[ii] = ARGV[4] end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return f
`)

// errSignedOut is the answer for a token that is malformed, unknown or
// no longer valid: nothing says which.
func errSignedOut() error {
	return fieldops.Errorf(fieldops.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
}

// unavailable is the answer when Redis fails: fail closed.
func (s *SessionService) unavailable(err error, during string) error {
	var fe *fieldops.Error
	if errors.As(err, &fe) {
		return err
	}
	s.db.logger.Warn("session store unavailable", "during", during, "err", err)
	return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: "Sign-in is unavailable for a moment; please try again.",
		Err: fmt.Errorf("session store: %s: %w", during, err)}
}

// CreateSession starts a session for a member: a web sign-in, an API
// token or a linked Telegram chat. It needs no actor (sign-in calls it);
// the member must be active in the organisation.
func (s *SessionService) CreateSession(ctx context.Context, n fieldops.NewSession) (*fieldops.Session, string, error) {
	if err := s.validateNew(n); err != nil {
		return nil, "", err
	}
	var name string
	err := s.db.pool.QueryRow(ctx, `
		UPDATE memberships m SET last_seen_at = now() FROM users u
		WHERE u.id = m.user_id AND m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'
		RETURNING u.name`, n.OrgID, n.UserID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fieldops.Errorf(fieldops.EUNAUTHORIZED, "You are not a member of this organisation. Ask its Owner or an Admin to invite you.")
	}
	if err != nil {
		return nil, "", translate(err)
	}
	sess, token, hash := s.newSession(n, name, s.db.now())
	if err := s.write(ctx, sess, hash); err != nil {
		return nil, "", s.unavailable(err, "create session")
	}
	return sess, token, nil
}

func (s *SessionService) validateNew(n fieldops.NewSession) error {
	switch n.Channel {
	case fieldops.ChannelWeb, fieldops.ChannelAPI, fieldops.ChannelTelegram:
	default:
		return fieldops.Invalid("channel", "A session is a web sign-in, an API token or a Telegram chat; %q is none of those.", n.Channel)
	}
	if n.OrgID <= 0 || n.UserID <= 0 {
		return fieldops.Invalid("user_id", "Choose the member and the organisation to sign in to.")
	}
	if n.TTL < 0 {
		return fieldops.Invalid("ttl", "A session's lifetime cannot be negative.")
	}
	return nil
}

// lifetime is the channel's session life; a TTL can shorten it, never
// lengthen it.
func (s *SessionService) lifetime(ch fieldops.Channel, ttl time.Duration) time.Duration {
	var d time.Duration
	switch ch {
	case fieldops.ChannelWeb:
		d = s.WebMax
	case fieldops.ChannelAPI:
		d = s.APITTL
	default:
		d = s.TelegramTTL
	}
	if ttl > 0 && ttl < d {
		return ttl
	}
	return d
}

// newSession makes the session and its secret token; nothing is written.
func (s *SessionService) newSession(n fieldops.NewSession, userName string, now time.Time) (*fieldops.Session, string, []byte) {
	prefix, device := prefixWeb, ""
	switch n.Channel {
	case fieldops.ChannelWeb:
		device = deviceFromUserAgent(n.UserAgent)
	case fieldops.ChannelAPI:
		prefix, device = prefixAPI, cleanDevice(n.Device, "API token")
	case fieldops.ChannelTelegram:
		prefix, device = prefixTelegram, cleanDevice(n.Device, "Telegram")
	}
	token, hash := newToken(prefix)
	return &fieldops.Session{
		ID: publicID(hash), OrgID: n.OrgID, UserID: n.UserID, UserName: userName,
		Channel: n.Channel, Device: device, IP: sessionIP(n.IP), TwoFactor: n.TwoFactor,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.lifetime(n.Channel, n.TTL)),
	}, token, hash
}

// keyTTL is how long Redis keeps a session's hash from now: until its
// idle timeout (web) or its end, whichever is sooner.
func (s *SessionService) keyTTL(sess *fieldops.Session, now time.Time) time.Duration {
	d := sess.ExpiresAt.Sub(now)
	if sess.Channel == fieldops.ChannelWeb {
		if idle := sess.LastSeenAt.Add(s.WebIdle).Sub(now); idle < d {
			d = idle
		}
	}
	return max(d, time.Millisecond)
}

// write stores a session in one MULTI/EXEC.
func (s *SessionService) write(ctx context.Context, sess *fieldops.Session, hash []byte) error {
	now := s.db.now()
	life := max(sess.ExpiresAt.Sub(now), time.Millisecond)
	key, ukey, okey := sessKey(hash), userIndexKey(sess.OrgID, sess.UserID), orgIndexKey(sess.OrgID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, encodeSession(sess)...)
		p.PExpire(ctx, key, s.keyTTL(sess, now))
		p.Set(ctx, sessIDKey(sess.ID), hex.EncodeToString(hash), life)
		for _, ix := range []string{ukey, okey} {
			p.SAdd(ctx, ix, sess.ID)
			// The index lives as long as its longest-lived session.
			p.ExpireNX(ctx, ix, life)
			p.ExpireGT(ctx, ix, life)
		}
		return nil
	})
	return err
}

// drop deletes one session's keys in one MULTI/EXEC. hash may be nil when
// only the id is known.
func (s *SessionService) drop(ctx context.Context, sess *fieldops.Session, hash []byte) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if hash != nil {
			p.Del(ctx, sessKey(hash))
		}
		p.Del(ctx, sessIDKey(sess.ID))
		p.SRem(ctx, userIndexKey(sess.OrgID, sess.UserID), sess.ID)
		p.SRem(ctx, orgIndexKey(sess.OrgID), sess.ID)
		return nil
	})
	return err
}

// dropByID deletes a session's keys knowing only its public id and
// member (an ended Telegram link's session).
func (s *SessionService) dropByID(ctx context.Context, orgID, userID int64, id string) error {
	hexHash, err := s.rdb.Get(ctx, sessIDKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var hash []byte
	if h, err := hex.DecodeString(hexHash); err == nil && len(h) > 0 && publicID(h) == id {
		hash = h
	}
	return s.drop(ctx, &fieldops.Session{ID: id, OrgID: orgID, UserID: userID}, hash)
}

func encodeSession(sess *fieldops.Session) []any {
	tf := "0"
	if sess.TwoFactor {
		tf = "1"
	}
	return []any{
		"id", sess.ID,
		"org", strconv.FormatInt(sess.OrgID, 10),
		"user", strconv.FormatInt(sess.UserID, 10),
		"user_name", sess.UserName,
		"channel", string(sess.Channel),
		"device", sess.Device,
		"ip", sess.IP,
		"two_factor", tf,
		"created", micros(sess.CreatedAt),
		"last_seen", micros(sess.LastSeenAt),
		"expires", micros(sess.ExpiresAt),
	}
}

// decodeSession reads a session hash given as field, value, field, value.
func decodeSession(kv []string) (*fieldops.Session, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("session hash: odd reply")
	}
	sess := &fieldops.Session{}
	var err error
	num := func(v string) int64 {
		n, e := strconv.ParseInt(v, 10, 64)
		if e != nil && err == nil {
			err = e
		}
		return n
	}
	var seen int
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		switch k {
		case "id":
			sess.ID = v
		case "org":
			sess.OrgID = num(v)
		case "user":
			sess.UserID = num(v)
		case "user_name":
			sess.UserName = v
		case "channel":
			sess.Channel = fieldops.Channel(v)
		case "device":
			sess.Device = v
		case "ip":
			sess.IP = v
		case "two_factor":
			sess.TwoFactor = v == "1"
		case "created":
			sess.CreatedAt = time.UnixMicro(num(v)).UTC()
		case "last_seen":
			sess.LastSeenAt = time.UnixMicro(num(v)).UTC()
		case "expires":
			sess.ExpiresAt = time.UnixMicro(num(v)).UTC()
		default:
			continue
		}
		seen++
	}
	if err != nil {
		return nil, fmt.Errorf("session hash: %w", err)
	}
	if seen < 11 || sess.ID == "" || sess.OrgID <= 0 || sess.UserID <= 0 {
		return nil, errors.New("session hash: fields missing")
	}
	return sess, nil
}

func decodeSessionMap(m map[string]string) (*fieldops.Session, error) {
	kv := make([]string, 0, 2*len(m))
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return decodeSession(kv)
}

// Authenticate resolves a token to its live session in one Redis round
// trip. See the file comment for why it does not also ask Postgres.
func (s *SessionService) Authenticate(ctx context.Context, token string, ip netip.Addr) (*fieldops.Session, fieldops.Actor, error) {
	var ch fieldops.Channel
	switch {
	case tokenHasPrefix(token, prefixWeb):
		ch = fieldops.ChannelWeb
	case tokenHasPrefix(token, prefixAPI):
		ch = fieldops.ChannelAPI
	case tokenHasPrefix(token, prefixTelegram):
		ch = fieldops.ChannelTelegram
	default:
		return nil, fieldops.Actor{}, errSignedOut()
	}
	hash := hashToken(token)
	now := s.db.now()
	kv, err := authScript.Run(ctx, s.rdb, []string{sessKey(hash)},
		micros(now), s.WebIdle.Microseconds(), touchEvery.Microseconds(), sessionIP(ip)).StringSlice()
	var sess *fieldops.Session
	switch {
	case errors.Is(err, redis.Nil):
		if ch != fieldops.ChannelAPI {
			return nil, fieldops.Actor{}, errSignedOut()
		}
		// An API token outlives Redis losing its data: its record is
		// api_tokens.
		if sess, err = s.restoreAPIToken(ctx, hash, ip, now); err != nil {
			return nil, fieldops.Actor{}, err
		}
	case err != nil:
		return nil, fieldops.Actor{}, s.unavailable(err, "authenticate")
	default:
		if sess, err = decodeSession(kv); err != nil {
			s.db.logger.Error("session store: unreadable session", "err", err)
			return nil, fieldops.Actor{}, errSignedOut()
		}
	}
	if sess.Channel != ch || sess.ID != publicID(hash) {
		return nil, fieldops.Actor{}, errSignedOut()
	}
	if err := s.checkLive(sess, now); err != nil {
		// Tidy up now rather than wait for the TTL; the answer is the same
		// whether or not that works.
		if derr := s.drop(ctx, sess, hash); derr != nil {
			s.db.logger.Warn("session store: drop expired session", "session", sess.ID, "err", derr)
		}
		return nil, fieldops.Actor{}, err
	}
	return sess, fieldops.Actor{
		UserID: sess.UserID, OrgID: sess.OrgID, Channel: sess.Channel, IP: ip,
		SessionID: sess.ID, SessionStart: sess.CreatedAt,
	}, nil
}

// checkLive refuses a session past its end or, on the web, idle too long.
func (s *SessionService) checkLive(sess *fieldops.Session, now time.Time) error {
	if !now.Before(sess.ExpiresAt) {
		if sess.Channel == fieldops.ChannelTelegram {
			return fieldops.Errorf(fieldops.EUNAUTHORIZED, "This Telegram chat's link has expired. Link it again from your profile in the web panel.")
		}
		return fieldops.Errorf(fieldops.EUNAUTHORIZED, "Your session has expired. Please sign in again.")
	}
	if sess.Channel == fieldops.ChannelWeb && now.Sub(sess.LastSeenAt) >= s.WebIdle {
		return fieldops.Errorf(fieldops.EUNAUTHORIZED, "You were signed out after %s without activity. Please sign in again.", words(s.WebIdle))
	}
	return nil
}

// words writes a timeout as "30 minutes" or "12 hours".
func words(d time.Duration) string {
	unit, n := "minute", int64(d/time.Minute)
	if d >= 2*time.Hour && d%time.Hour == 0 {
		unit, n = "hour", int64(d/time.Hour)
	}
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

// restoreAPIToken looks an API token up in Postgres when Redis does not
// know it and, when it is live, puts its session back in Redis under the
// same public id.
func (s *SessionService) restoreAPIToken(ctx context.Context, hash []byte, ip netip.Addr, now time.Time) (*fieldops.Session, error) {
	id := publicID(hash)
	sess := &fieldops.Session{ID: id, Channel: fieldops.ChannelAPI, IP: sessionIP(ip), LastSeenAt: now}
	var (
		name    string
		expires *time.Time
	)
	err := s.db.pool.QueryRow(ctx, `
		SELECT t.org_id, t.user_id, t.name, t.created_at, t.expires_at, u.name
		FROM api_tokens t
		JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
		JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)
		  AND m.status = 'active'
		  AND NOT EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = $3)
		  AND NOT EXISTS (SELECT 1 FROM user_sessions_floor f
		                  WHERE f.user_id = t.user_id AND f.org_key IN (0, t.org_id) AND f.revoked_before > t.created_at)`,
		hash, now, id).Scan(&sess.OrgID, &sess.UserID, &name, &sess.CreatedAt, &expires, &sess.UserName)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errSignedOut()
	}
	if err != nil {
		return nil, translate(err)
	}
	sess.CreatedAt = sess.CreatedAt.UTC()
	sess.Device = apiDevice(name)
	if expires != nil {
		sess.ExpiresAt = expires.UTC()
	} else {
		sess.ExpiresAt = sess.CreatedAt.Add(s.APITTL)
	}
	if err := s.write(ctx, sess, hash); err != nil {
		// Postgres vouched for the token, so it is served; the next
		// request looks it up again.
		s.db.logger.Warn("session store: restore api token", "session", id, "err", err)
	}
	return sess, nil
}

// FindSessions lists live sessions: one's own always; the whole
// organisation's (UserID 0) or another member's with session.view_all.
// Sessions revoked in Postgres but still in Redis are left out, and API
// tokens that Redis lost are listed from api_tokens.
func (s *SessionService) FindSessions(ctx context.Context, f fieldops.SessionFilter) ([]*fieldops.Session, error) {
	var out []*fieldops.Session
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if f.UserID != acc.UserID {
			if err := acc.require(fieldops.FlagSessionViewAll); err != nil {
				return err
			}
		}
		index := orgIndexKey(acc.OrgID)
		if f.UserID != 0 {
			index = userIndexKey(acc.OrgID, f.UserID)
		}
		now := s.db.now()
		all, err := s.readIndex(ctx, index)
		if err != nil {
			return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: "The list of sessions is unavailable for a moment; please try again.", Err: err}
		}
		for _, sess := range all {
			if sess.OrgID != acc.OrgID || (f.UserID != 0 && sess.UserID != f.UserID) || s.checkLive(sess, now) != nil {
				continue
			}
			out = append(out, sess)
		}
		if out, err = s.dropRevoked(ctx, tx, acc.OrgID, out); err != nil {
			return err
		}
		if out, err = s.addLostAPITokens(ctx, tx, acc.OrgID, f.UserID, now, out); err != nil {
			return err
		}
		// Telegram sessions are recorded by their links (telegram.go).
		out, err = s.addTelegramLinks(ctx, tx, acc.OrgID, f.UserID, now, out)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *fieldops.Session) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// readIndex returns the sessions an index names, pruning ids whose
// session is gone: SMEMBERS, then one pipeline of GETs, then one of
// HGETALLs.
func (s *SessionService) readIndex(ctx context.Context, index string) ([]*fieldops.Session, error) {
	ids, err := s.rdb.SMembers(ctx, index).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	hashes, err := s.hashesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	var gone []any
	var live []string
	for i, h := range hashes {
		if h == "" {
			gone = append(gone, ids[i])
			continue
		}
		live = append(live, h)
	}
	cmds := make([]*redis.MapStringStringCmd, len(live))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range live {
			cmds[i] = p.HGetAll(ctx, "sess:"+h)
		}
		if len(gone) > 0 {
			p.SRem(ctx, index, gone...)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]*fieldops.Session, 0, len(live))
	for _, c := range cmds {
		if len(c.Val()) == 0 {
			continue // expired in Redis since the GET; pruned next time
		}
		sess, err := decodeSessionMap(c.Val())
		if err != nil {
			s.db.logger.Error("session store: unreadable session", "err", err)
			continue
		}
		out = append(out, sess)
	}
	return out, nil
}

// hashesOf returns the hex hash of each public id, "" for an id that is
// gone, in one pipeline.
func (s *SessionService) hashesOf(ctx context.Context, ids []string) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, sessIDKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, c := range cmds {
		switch v, err := c.Result(); {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, err
		default:
			out[i] = v
		}
	}
	return out, nil
}

// dropRevoked leaves out sessions that Postgres records as revoked, or
// whose member is no longer active, even if Redis still has them.
func (s *SessionService) dropRevoked(ctx context.Context, tx pgx.Tx, orgID int64, list []*fieldops.Session) ([]*fieldops.Session, error) {
	if len(list) == 0 {
		return list, nil
	}
	ids := make([]string, len(list))
	users := make([]int64, 0, len(list))
	for i, sess := range list {
		ids[i] = sess.ID
		users = append(users, sess.UserID)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	revoked := map[string]bool{}
	floors := map[int64]time.Time{}
	active := map[int64]bool{}
	rows, err := tx.Query(ctx, `
		SELECT 'r', session_id, 0, NULL::timestamptz FROM sessions_revoked WHERE session_id = ANY($2)
		UNION ALL
		SELECT 'm', '', m.user_id, (SELECT max(f.revoked_before) FROM user_sessions_floor f
		                            WHERE f.user_id = m.user_id AND f.org_key IN (0, m.org_id))
		FROM memberships m WHERE m.org_id = $1 AND m.user_id = ANY($3) AND m.status = 'active'`, orgID, ids, users)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			kind, id string
			user     int64
			floor    *time.Time
		)
		if err := rows.Scan(&kind, &id, &user, &floor); err != nil {
			rows.Close()
			return nil, err
		}
		if kind == "r" {
			revoked[id] = true
			continue
		}
		active[user] = true
		if floor != nil {
			floors[user] = *floor
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list, func(sess *fieldops.Session) bool {
		fl, ok := floors[sess.UserID]
		return revoked[sess.ID] || !active[sess.UserID] || (ok && fl.After(sess.CreatedAt))
	}), nil
}

// addLostAPITokens lists live API tokens that Redis does not have (after
// it lost its data), so they can still be seen and revoked.
func (s *SessionService) addLostAPITokens(ctx context.Context, tx pgx.Tx, orgID, userID int64, now time.Time, list []*fieldops.Session) ([]*fieldops.Session, error) {
	have := make(map[string]bool, len(list))
	for _, sess := range list {
		have[sess.ID] = true
	}
	toks, err := liveAPITokens(ctx, tx, orgID, userID, now)
	if err != nil {
		return nil, err
	}
	for _, t := range toks {
		if !have[t.sess.ID] {
			if t.sess.ExpiresAt.IsZero() {
				t.sess.ExpiresAt = t.sess.CreatedAt.Add(s.APITTL)
			}
			list = append(list, t.sess)
		}
	}
	return list, nil
}

// apiToken is a live row of api_tokens as a session.
type apiToken struct {
	sess *fieldops.Session
	hash []byte
}

// liveAPITokens returns the organisation's live API tokens (userID 0) or
// one member's. ExpiresAt is zero for a token without an end.
func liveAPITokens(ctx context.Context, tx pgx.Tx, orgID, userID int64, now time.Time) ([]apiToken, error) {
	rows, err := tx.Query(ctx, `
		SELECT t.user_id, u.name, t.name, t.token_hash, t.created_at, t.expires_at, t.last_used_at, COALESCE(host(t.last_used_ip), '')
		FROM api_tokens t
		JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id
		JOIN users u ON u.id = t.user_id
		WHERE t.org_id = $1 AND ($2 = 0 OR t.user_id = $2) AND t.revoked_at IS NULL
		  AND (t.expires_at IS NULL OR t.expires_at > $3) AND m.status = 'active'
		  AND NOT EXISTS (SELECT 1 FROM user_sessions_floor f
		                  WHERE f.user_id = t.user_id AND f.org_key IN (0, t.org_id) AND f.revoked_before > t.created_at)
		ORDER BY t.id`, orgID, userID, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apiToken
	for rows.Next() {
		var (
			t        apiToken
			name     string
			expires  *time.Time
			lastUsed *time.Time
		)
		sess := &fieldops.Session{OrgID: orgID, Channel: fieldops.ChannelAPI}
		if err := rows.Scan(&sess.UserID, &sess.UserName, &name, &t.hash, &sess.CreatedAt, &expires, &lastUsed, &sess.IP); err != nil {
			return nil, err
		}
		sess.ID = publicID(t.hash)
		sess.Device = apiDevice(name)
		sess.CreatedAt = sess.CreatedAt.UTC()
		sess.LastSeenAt = sess.CreatedAt
		if lastUsed != nil {
			sess.LastSeenAt = lastUsed.UTC()
		}
		if expires != nil {
			sess.ExpiresAt = expires.UTC()
		}
		t.sess = sess
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeSession ends one session by its public id: one's own always (sign
// out elsewhere), another member's with session.revoke_all, and an
// Owner's only by an Owner. The revocation is recorded in Postgres, with
// its audit entry, before the Redis keys are deleted: if the deletion
// fails the answer is EUNAVAILABLE, but the session is refused by every
// service call already.
func (s *SessionService) RevokeSession(ctx context.Context, id string) error {
	if _, err := fieldops.RequireActor(ctx); err != nil {
		return err
	}
	if !validPublicID(id) {
		return notFound("Session")
	}
	// Whose session it is comes from Redis; an API token Redis lost is
	// found in Postgres below.
	sess, hash, err := s.findByID(ctx, id)
	if err != nil {
		return s.unavailable(err, "revoke session")
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if sess == nil {
			toks, err := liveAPITokens(ctx, tx, acc.OrgID, 0, s.db.now())
			if err != nil {
				return err
			}
			for _, t := range toks {
				if t.sess.ID == id {
					sess, hash = t.sess, t.hash
				}
			}
		}
		if sess == nil {
			// A Telegram session Redis lost is found by its link.
			links, err := liveLinkSessions(ctx, tx, acc.OrgID, 0, id, s.db.now(), s.TelegramTTL)
			if err != nil {
				return err
			}
			if len(links) == 1 {
				sess = links[0]
			}
		}
		if sess == nil || sess.OrgID != acc.OrgID {
			return notFound("Session")
		}
		if err := requireManageSessions(ctx, tx, acc, sess.UserID); err != nil {
			return err
		}
		now := s.db.now()
		reason := "revoked"
		if sess.UserID == acc.UserID {
			reason = "signed out"
		}
		var expires *time.Time
		if !sess.ExpiresAt.IsZero() {
			expires = &sess.ExpiresAt
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO sessions_revoked (session_id, org_id, user_id, channel, revoked_at, revoked_by, reason, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (session_id) DO NOTHING`,
			sess.ID, acc.OrgID, sess.UserID, string(sess.Channel), now, acc.UserID, reason, expires)
		if err != nil {
			return err
		}
		if sess.Channel == fieldops.ChannelAPI && hash != nil {
			if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $3, revoked_by = $4
				WHERE org_id = $1 AND token_hash = $2 AND revoked_at IS NULL`, acc.OrgID, hash, now, acc.UserID); err != nil {
				return err
			}
		}
		if sess.Channel == fieldops.ChannelTelegram {
			// Revoking a Telegram session unlinks its chat.
			if _, err := endLinks(ctx, tx, linkEnd{orgID: acc.OrgID, sessionID: sess.ID}, now, &acc.UserID, reason, s.TelegramTTL); err != nil {
				return err
			}
		}
		if tag.RowsAffected() == 0 {
			return nil // revoked before; only Redis is left to tidy
		}
		return s.db.audit(ctx, tx, acc, entry{action: "session.revoke", targetType: "member", targetID: sess.UserID,
			changes: map[string]any{"channel": string(sess.Channel), "device": sess.Device, "session_id": sess.ID}})
	})
	if err != nil {
		return err
	}
	if err := s.drop(ctx, sess, hash); err != nil {
		return s.revokedButUntidy(err)
	}
	return nil
}

// revokedButUntidy is the answer when a revocation is committed but Redis
// could not be told.
func (s *SessionService) revokedButUntidy(err error) error {
	s.db.logger.Warn("session store: revoked in postgres, redis not updated", "err", err)
	return &fieldops.Error{Code: fieldops.EUNAVAILABLE,
		Message: "The sign-out is recorded and already in force, but the session list could not be updated; please try again in a minute.",
		Err:     fmt.Errorf("session store: %w", err)}
}

// findByID reads a session from Redis by its public id: nil when Redis
// does not have it.
func (s *SessionService) findByID(ctx context.Context, id string) (*fieldops.Session, []byte, error) {
	hexHash, err := s.rdb.Get(ctx, sessIDKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	hash, err := hex.DecodeString(hexHash)
	if err != nil || publicID(hash) != id {
		return nil, nil, nil
	}
	m, err := s.rdb.HGetAll(ctx, "sess:"+hexHash).Result()
	if err != nil || len(m) == 0 {
		return nil, nil, err
	}
	sess, err := decodeSessionMap(m)
	if err != nil {
		s.db.logger.Error("session store: unreadable session", "session", id, "err", err)
		return nil, nil, nil
	}
	return sess, hash, nil
}

// validPublicID reports whether id has the form of publicID's output.
func validPublicID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// requireManageSessions allows the actor to end a member's sessions (or
// Telegram link): their own always; another member's with
// session.revoke_all, and an Owner's only by an Owner.
func requireManageSessions(ctx context.Context, tx pgx.Tx, acc *access, userID int64) error {
	if userID == acc.UserID {
		return nil
	}
	if err := acc.require(fieldops.FlagSessionRevokeAll); err != nil {
		return err
	}
	role, err := memberRole(ctx, tx, acc.OrgID, userID)
	if err != nil {
		return err
	}
	return fieldops.CheckManageMember(acc.Role, role)
}

// memberRole returns a member's role, whether active or removed.
func memberRole(ctx context.Context, tx pgx.Tx, orgID, userID int64) (fieldops.Role, error) {
	var role string
	err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return fieldops.RoleNone, notFound("Team member")
	}
	if err != nil {
		return fieldops.RoleNone, err
	}
	return fieldops.ParseRole(role)
}

// RevokeUserSessions ends every session of a member in the actor's
// organisation, their API tokens included: one's own always, another
// member's with session.revoke_all (an Owner's only by an Owner). A floor
// in user_sessions_floor refuses every session begun before now; then the
// member's Redis sessions are deleted.
func (s *SessionService) RevokeUserSessions(ctx context.Context, userID int64) error {
	if userID <= 0 {
		return fieldops.Invalid("user_id", "Choose the member whose sessions to end.")
	}
	var orgID int64
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		orgID = acc.OrgID
		if err := requireManageSessions(ctx, tx, acc, userID); err != nil {
			return err
		}
		now := s.db.now()
		if err := upsertFloor(ctx, tx, acc.OrgID, userID, now); err != nil {
			return err
		}
		n, err := revokeAPITokens(ctx, tx, acc.OrgID, userID, now, &acc.UserID)
		if err != nil {
			return err
		}
		// The member's Telegram chat is unlinked too (telegram.go).
		links, err := endLinks(ctx, tx, linkEnd{orgID: acc.OrgID, userID: userID}, now, &acc.UserID, "revoked", s.TelegramTTL)
		if err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "session.revoke_all", targetType: "member", targetID: userID,
			changes: map[string]any{"revoked_before": now.Format(time.RFC3339Nano), "api_tokens_revoked": n,
				"telegram_unlinked": len(links) > 0}})
	})
	if err != nil {
		return err
	}
	if err := s.purge(ctx, orgID, userID); err != nil {
		return s.revokedButUntidy(err)
	}
	return nil
}

// EndMemberSessions records, in the caller's transaction, that every
// session of the member in the organisation begun before now has ended,
// and revokes their API tokens. It writes no audit entry (the caller's
// change, such as removing the member, is the entry). After the commit,
// call PurgeRedis.
func (s *SessionService) EndMemberSessions(ctx context.Context, tx pgx.Tx, orgID, userID int64) error {
	now := s.db.now()
	if err := upsertFloor(ctx, tx, orgID, userID, now); err != nil {
		return err
	}
	if _, err := revokeAPITokens(ctx, tx, orgID, userID, now, nil); err != nil {
		return err
	}
	// And the member's Telegram chat is unlinked (telegram.go).
	_, err := endLinks(ctx, tx, linkEnd{orgID: orgID, userID: userID}, now, nil, "ended", s.TelegramTTL)
	return err
}

// PurgeRedis deletes every Redis session of the member in the
// organisation. Postgres must already refuse them (EndMemberSessions or
// RevokeUserSessions): this only makes Authenticate refuse them too. An
// error is EUNAVAILABLE.
func (s *SessionService) PurgeRedis(ctx context.Context, orgID, userID int64) error {
	if err := s.purge(ctx, orgID, userID); err != nil {
		return s.revokedButUntidy(err)
	}
	return nil
}

// purge: SMEMBERS of the member's index, one pipeline of GETs for the
// hashes, and one MULTI/EXEC that deletes everything.
func (s *SessionService) purge(ctx context.Context, orgID, userID int64) error {
	ukey, okey := userIndexKey(orgID, userID), orgIndexKey(orgID)
	ids, err := s.rdb.SMembers(ctx, ukey).Result()
	if err != nil || len(ids) == 0 {
		return err
	}
	hashes, err := s.hashesOf(ctx, ids)
	if err != nil {
		return err
	}
	members := make([]any, len(ids))
	keys := make([]string, 0, 2*len(ids))
	for i, id := range ids {
		members[i] = id
		keys = append(keys, sessIDKey(id))
		if hashes[i] != "" {
			keys = append(keys, "sess:"+hashes[i])
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		// SREM, not DEL: a session begun during the purge stays listed.
		p.SRem(ctx, ukey, members...)
		p.SRem(ctx, okey, members...)
		return nil
	})
	return err
}

// upsertFloor refuses every session of the member in the organisation
// begun before at.
func upsertFloor(ctx context.Context, tx pgx.Tx, orgID, userID int64, at time.Time) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO user_sessions_floor (user_id, org_id, revoked_before, updated_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (user_id, org_key) DO UPDATE
		SET revoked_before = GREATEST(user_sessions_floor.revoked_before, EXCLUDED.revoked_before), updated_at = EXCLUDED.updated_at`,
		userID, orgID, at)
	return err
}

// revokeAPITokens revokes a member's live API tokens; by is nil for the
// system.
func revokeAPITokens(ctx context.Context, tx pgx.Tx, orgID, userID int64, at time.Time, by *int64) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $3, revoked_by = $4
		WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`, orgID, userID, at, by)
	return tag.RowsAffected(), err
}

// sessionIP is how an IP is stored and shown.
func sessionIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.WithZone("").Unmap().String()
}

func apiDevice(name string) string { return "API token “" + name + "”" }

// cleanDevice keeps a caller's device label printable and short.
func cleanDevice(s, fallback string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if utf8.RuneCountInString(s) > maxDevice {
		s = string([]rune(s)[:maxDevice])
	}
	if s == "" {
		return fallback
	}
	return s
}

// deviceFromUserAgent names a browser and form factor from a User-Agent:
// "Firefox on desktop", "Safari on mobile". Order matters: Edge and Opera
// also say Chrome, and Chrome also says Safari.
func deviceFromUserAgent(ua string) string {
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(ua, sub) {
				return true
			}
		}
		return false
	}
	browser := "Web browser"
	switch {
	case has("Edg/", "Edge/", "EdgA/", "EdgiOS/"):
		browser = "Edge"
	case has("OPR/", "Opera", "OPT/"):
		browser = "Opera"
	case has("Firefox/", "FxiOS/"):
		browser = "Firefox"
	case has("SamsungBrowser/", "YaBrowser/", "UCBrowser/"):
		// Chromium-based, but not Chrome: leave as "Web browser".
	case has("Chrome/", "CriOS/", "Chromium/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	}
	form := "desktop"
	if has("Mobi", "Android", "iPhone", "iPad", "iPod") {
		form = "mobile"
	}
	return browser + " on " + form
}
