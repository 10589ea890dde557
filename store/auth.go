package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/fieldops/fieldops"
)

// Windows of the sign-in flow. The throttle window is in the message a
// locked-out user reads, so it is not a knob.
const (
	throttleWindow = 15 * time.Minute
	challengeTTL   = 5 * time.Minute
	enrolmentTTL   = 15 * time.Minute
)

// The answers of the sign-in flow. An unknown e-mail address and a wrong
// password get the same code and the same words, and so do a locked
// account and a locked address (PRODUCT.md §4: no telling an attacker
// which accounts exist).
const (
	msgBadCredentials = "That e-mail and password don't match. Check them and try again."
	msgThrottled      = "Too many attempts. Wait 15 minutes, or ask your Owner or Admin to help."
	msgChallengeGone  = "Your sign-in timed out. Please start again."
	msgBadCode        = "That code didn't work. Wait for a new code and try again."
	msgCodeThrottled  = "Too many wrong codes. Wait 15 minutes, then sign in again, or ask your Owner or Admin to help."
	msgEnrolled       = "Two-factor sign-in is already on."
	msgEnrolCode      = "That code didn't match. Check your phone's clock and try the newest code."
	msgEnrolExpired   = "The set-up code has expired. Start again to get a new QR code."
	msgUnavailable    = "Signing in is not possible just now; please try again in a minute."
)

func errBadCredentials() error {
	return fieldops.Errorf(fieldops.EUNAUTHORIZED, msgBadCredentials)
}
func errThrottled() error { return fieldops.Errorf(fieldops.ELIMIT, msgThrottled) }
func errChallengeGone() error {
	return fieldops.Errorf(fieldops.EUNAUTHORIZED, msgChallengeGone)
}
func errBadCode() error {
	return &fieldops.Error{Code: fieldops.EUNAUTHORIZED, Field: "code", Message: msgBadCode}
}
func errCodeThrottled() error { return fieldops.Errorf(fieldops.ELIMIT, msgCodeThrottled) }

// unavailable is the answer when Redis cannot be reached: sign-in fails
// closed, never without its throttle.
func unavailable(err error) error {
	return &fieldops.Error{Code: fieldops.EUNAVAILABLE, Message: msgUnavailable, Err: err}
}

// AuthService implements fieldops.AuthService on Postgres (users,
// recovery codes, the audit log) and Redis (throttle counters, sign-in
// challenges, pending enrolments).
//
// Redis keys:
//
//	throttle:acct:{hex sha256(e-mail)}     failed passwords of an address, 15 min
//	throttle:ip:{ip or IPv6 /64}           failed passwords from a client, 15 min
//	throttle:refused:{hex sha256(e-mail)}  the first refusal of a lock was audited, 15 min
//	throttle:code:{user id}                second-factor attempts of a user, 15 min
//	challenge:{hex sha256(token)}          {"user_id","org_id"} of a passed password step, 5 min
//	enrol:{user id}                        the sealed TOTP secret awaiting its first code, 15 min
type AuthService struct {
	db       *DB
	rdb      *redis.Client
	sessions fieldops.SessionService
	sealer   *sealer

	// Knobs. Set them before the first call.

	// MaxConcurrentHashes bounds the argon2id verifications running at
	// once (each holds 19 MiB and a core for tens of milliseconds);
	// further sign-ins wait their turn, or give up when their context ends.
	// The default is the number of CPUs, at most 4: more hashes than cores
	// only share the cores and finish later.
	MaxConcurrentHashes int
	// MaxAccountFailures is the number of failed passwords an e-mail
	// address may have in 15 minutes; the next attempt is refused, even
	// with the right password.
	MaxAccountFailures int
	// MaxIPFailures is the same for one client address (IPv6: one /64).
	MaxIPFailures int
	// MaxCodeFailures is the number of second-factor attempts a user may
	// make in 15 minutes; the one that reaches it ends the challenge.
	MaxCodeFailures int
	// Issuer names the service in authenticator apps.
	Issuer string
	// Now is the clock of the TOTP steps; tests replace it.
	Now func() time.Time

	semOnce sync.Once
	sem     chan struct{}
}

var _ fieldops.AuthService = (*AuthService)(nil)

// NewAuthService returns the sign-in service. totpKey is the 32-byte
// AES-256-GCM key that TOTP secrets are sealed with; keep it outside the
// database.
func NewAuthService(db *DB, rdb *redis.Client, sessions fieldops.SessionService, totpKey []byte) (*AuthService, error) {
	sl, err := newSealer(totpKey)
	if err != nil {
		return nil, err
	}
	if db == nil || rdb == nil || sessions == nil {
		return nil, errors.New("auth service: db, redis and sessions are required")
	}
	return &AuthService{
		db: db, rdb: rdb, sessions: sessions, sealer: sl,
		MaxConcurrentHashes: min(4, runtime.NumCPU()),
		MaxAccountFailures:  5,
		MaxIPFailures:       30,
		MaxCodeFailures:     5,
		Issuer:              "fieldops",
		Now:                 func() time.Time { return db.Now() },
	}, nil
}

// dummyHash is verified against when there is no account (or no
// password), so that an unknown address costs the same argon2id work as
// a known one.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword(rand.Text())
	if err != nil {
		panic(err) // rand.Text is 26 characters: always a valid password
	}
	return h
})

// ---------------------------------------------------------------------
// Password step

// signInUser is what the password step needs of an account and of the
// membership it signs in to (orgID 0: no active membership).
type signInUser struct {
	id           int64
	name         string
	passwordHash string
	totpEnabled  bool
	orgID        int64
	require2FA   bool
}

// SignIn checks an e-mail address and password. Failures are counted
// before the password is checked (INCR first, so that concurrent attempts
// cannot get past the limit), and given back on success.
func (s *AuthService) SignIn(ctx context.Context, in fieldops.SignIn) (*fieldops.SignInResult, error) {
	email := normaliseSignInEmail(in.Email)
	acctKey := "throttle:acct:" + authHash(email)
	ipKey := "throttle:ip:" + ipBucket(in.IP)
	n, err := s.count(ctx, acctKey, ipKey)
	if err != nil {
		return nil, unavailable(err)
	}
	throttled := n[0] > int64(s.MaxAccountFailures) || n[1] > int64(s.MaxIPFailures)

	u, found, err := s.findSignInUser(ctx, email, in.OrgID)
	if err != nil {
		s.uncount(ctx, acctKey, ipKey) // no password was tried
		return nil, translate(err)
	}
	if throttled {
		s.failed(ctx, u, found, in.IP, email, "throttled")
		return nil, errThrottled()
	}

	hash := dummyHash()
	if found && u.passwordHash != "" {
		hash = u.passwordHash
	}
	ok, err := s.verifyPassword(ctx, hash, in.Password)
	if err != nil {
		s.uncount(ctx, acctKey, ipKey) // gave up waiting: no password was tried
		return nil, translate(err)
	}
	if !ok || !found || u.passwordHash == "" || u.orgID == 0 {
		s.failed(ctx, u, found, in.IP, email, "wrong_password")
		return nil, errBadCredentials()
	}

	// The password is right: it was not a failure.
	if err := s.rdb.Del(ctx, acctKey).Err(); err != nil {
		s.db.logger.Warn("sign-in: reset account throttle", "user_id", u.id, "err", err)
	}
	s.uncount(ctx, ipKey)

	if u.totpEnabled {
		token, th := newToken(prefixChallenge)
		val, _ := json.Marshal(signInChallenge{UserID: u.id, OrgID: u.orgID})
		if err := s.rdb.Set(ctx, challengeKey(th), val, challengeTTL).Err(); err != nil {
			return nil, unavailable(err)
		}
		if err := s.auditSignIn(ctx, u.orgID, u.id, u.name, in.IP, "auth.sign_in",
			map[string]any{"method": "password", "two_factor": "pending"}); err != nil {
			s.rdb.Del(ctx, challengeKey(th))
			return nil, err
		}
		return &fieldops.SignInResult{Challenge: token}, nil
	}
	sess, token, err := s.startSession(ctx, u.orgID, u.id, u.name, in, false, map[string]any{"method": "password", "two_factor": "none"})
	if err != nil {
		return nil, err
	}
	return &fieldops.SignInResult{Session: sess, Token: token, MustEnrol: u.require2FA}, nil
}

// findSignInUser loads the account of an address and picks the
// organisation: the one asked for if the user is an active member there,
// else their first (lowest id) active membership.
func (s *AuthService) findSignInUser(ctx context.Context, email string, orgID int64) (signInUser, bool, error) {
	var (
		u  signInUser
		tf twoFactorInputs
	)
	err := s.db.pool.QueryRow(ctx, `
		SELECT u.id, u.name, COALESCE(u.password_hash, ''), u.totp_enabled_at IS NOT NULL,
		       COALESCE(m.org_id, 0), COALESCE(m.role, ''), COALESCE(m.overrides, '{}'), COALESCE(o.plan, 'starter'),
		       COALESCE(o.require_2fa_roles, '{}')
		FROM users u
		LEFT JOIN LATERAL (
			SELECT org_id, role, overrides FROM memberships
			WHERE user_id = u.id AND status = 'active'
			ORDER BY org_id = $2 DESC, org_id
			LIMIT 1) m ON true
		LEFT JOIN organisations o ON o.id = m.org_id
		WHERE u.email = $1`, email, orgID).
		Scan(&u.id, &u.name, &u.passwordHash, &u.totpEnabled, &u.orgID, &tf.role, &tf.overrides, &tf.plan, &tf.policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, err
	}
	if u.orgID != 0 {
		if u.require2FA, err = tf.required(); err != nil {
			return u, false, err
		}
	}
	return u, true, nil
}

// verifyPassword runs argon2id under the semaphore, giving up when ctx
// ends while waiting for a slot.
func (s *AuthService) verifyPassword(ctx context.Context, hash, password string) (bool, error) {
	s.semOnce.Do(func() { s.sem = make(chan struct{}, max(1, s.MaxConcurrentHashes)) })
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.sem }()
	return VerifyPassword(hash, password), nil
}

// failed records a failed password step: in the audit log of the
// organisation the user would have signed in to, or, for an address
// without an account or a membership, in the service log under a hash of
// the address. A failure to write the audit entry is logged, not
// returned, so that the answer stays the same for every address.
func (s *AuthService) failed(ctx context.Context, u signInUser, found bool, ip netip.Addr, email, reason string) {
	if !found || u.orgID == 0 {
		switch {
		case reason == "throttled":
		case !found:
			reason = "unknown_email"
		default:
			reason = "no_membership"
		}
		s.db.logger.Info("sign-in failed", "reason", reason, "email_sha256", authHash(email)[:16], "ip", logIP(ip))
		return
	}
	if reason == "throttled" && !s.firstRefusal(ctx, email) {
		// Refusals cost no password check, so nothing bounds them: only
		// the first of each window goes to the append-only audit log, and
		// the rest to the service log, so that hammering a locked account
		// cannot grow its organisation's log or hold its lock.
		s.db.logger.Info("sign-in failed", "reason", reason, "user_id", u.id, "org_id", u.orgID, "ip", logIP(ip))
		return
	}
	if err := s.auditSignIn(ctx, u.orgID, u.id, u.name, ip, "auth.sign_in_failed", map[string]any{"reason": reason}); err != nil {
		s.db.logger.Error("sign-in failed: audit", "user_id", u.id, "org_id", u.orgID, "reason", reason, "err", err)
	}
}

// firstRefusal reports whether this is the first throttled attempt on the
// address in the window (throttle:refused:{hex sha256(e-mail)}, SET NX).
// When Redis cannot say, it answers true: better an entry too many.
func (s *AuthService) firstRefusal(ctx context.Context, email string) bool {
	ok, err := s.rdb.SetNX(ctx, "throttle:refused:"+authHash(email), 1, throttleWindow).Result()
	return ok || err != nil
}

// ---------------------------------------------------------------------
// Second factor

// signInChallenge is what a passed password step leaves in Redis for the
// second one.
type signInChallenge struct {
	UserID int64 `json:"user_id"`
	OrgID  int64 `json:"org_id"`
}

func challengeKey(tokenHash []byte) string { return "challenge:" + hex.EncodeToString(tokenHash) }

func codeThrottleKey(userID int64) string {
	return "throttle:code:" + strconv.FormatInt(userID, 10)
}

// VerifySecondFactor completes a sign-in with a TOTP code (six digits;
// the current or the previous 30 s step, each step accepted once) or a
// recovery code (xxxx-xxxx-xxxx, any case, dashes optional; each once).
//
// Every attempt counts against the user's code throttle before the code
// is checked. The wrong code that reaches MaxCodeFailures ends the
// challenge; attempts past the limit are refused unchecked until the
// window ends, and a new password step does not reset the count.
func (s *AuthService) VerifySecondFactor(ctx context.Context, token, code string, in fieldops.SignIn) (*fieldops.SignInResult, error) {
	if !tokenHasPrefix(token, prefixChallenge) {
		return nil, errChallengeGone()
	}
	key := challengeKey(hashToken(token))
	raw, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errChallengeGone()
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var ch signInChallenge
	if err := json.Unmarshal(raw, &ch); err != nil || ch.UserID == 0 || ch.OrgID == 0 {
		return nil, fieldops.Internal(fmt.Errorf("challenge %q: %v", raw, err), "second factor")
	}

	codeKey := codeThrottleKey(ch.UserID)
	n, err := s.count(ctx, codeKey)
	if err != nil {
		return nil, unavailable(err)
	}

	var (
		name    string
		sealed  []byte
		enabled bool
	)
	err = s.db.pool.QueryRow(ctx, `
		SELECT u.name, u.totp_secret_enc, u.totp_enabled_at IS NOT NULL
		FROM users u
		JOIN memberships m ON m.user_id = u.id AND m.org_id = $2 AND m.status = 'active'
		WHERE u.id = $1`, ch.UserID, ch.OrgID).Scan(&name, &sealed, &enabled)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (!enabled || sealed == nil)) {
		// Removed from the organisation, or two-factor reset, since the
		// password step: start again.
		s.uncount(ctx, codeKey)
		s.rdb.Del(ctx, key)
		return nil, errChallengeGone()
	}
	if err != nil {
		s.uncount(ctx, codeKey)
		return nil, translate(err)
	}
	fail := func(reason string) {
		if err := s.auditSignIn(ctx, ch.OrgID, ch.UserID, name, in.IP, "auth.sign_in_failed", map[string]any{"reason": reason}); err != nil {
			s.db.logger.Error("second factor failed: audit", "user_id", ch.UserID, "org_id", ch.OrgID, "reason", reason, "err", err)
		}
	}
	if n[0] > int64(s.MaxCodeFailures) {
		fail("code_throttled")
		return nil, errCodeThrottled()
	}

	var method string
	ok := false
	if c := normaliseTOTPCode(code); c != "" {
		method = "totp"
		secret, err := s.sealer.open(sealed, ch.UserID)
		if err != nil {
			return nil, fieldops.Internal(err, "second factor")
		}
		step, match, err := matchTOTP(string(secret), c, s.Now())
		if err != nil {
			return nil, fieldops.Internal(err, "second factor")
		}
		if match {
			// The replay guard: a step is accepted only if it is newer than
			// the last one accepted, atomically, so that of two sign-ins
			// with one code exactly one wins.
			tag, err := s.db.pool.Exec(ctx, `UPDATE users SET totp_last_step = $2
				WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)`, ch.UserID, step)
			if err != nil {
				return nil, translate(err)
			}
			if tag.RowsAffected() == 0 {
				if err := s.auditSignIn(ctx, ch.OrgID, ch.UserID, name, in.IP, "auth.totp_reuse", map[string]any{"method": "totp"}); err != nil {
					s.db.logger.Error("totp reuse: audit", "user_id", ch.UserID, "org_id", ch.OrgID, "err", err)
				}
				// A used code is not a guess: it does not end the challenge,
				// which a concurrent sign-in with the same code may be
				// completing right now.
				return nil, errBadCode()
			}
			ok = true
		}
	} else if c := normaliseRecoveryCode(code); c != "" {
		method = "recovery_code"
		tag, err := s.db.pool.Exec(ctx, `UPDATE recovery_codes SET used_at = now()
			WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, ch.UserID, hashRecoveryCode(ch.UserID, c))
		if err != nil {
			return nil, translate(err)
		}
		ok = tag.RowsAffected() == 1
	}
	if !ok {
		if n[0] >= int64(s.MaxCodeFailures) {
			fail("code_throttled")
			s.rdb.Del(ctx, key)
			return nil, errCodeThrottled()
		}
		fail("wrong_code")
		return nil, errBadCode()
	}

	// A challenge completes one sign-in only.
	if err := s.rdb.GetDel(ctx, key).Err(); errors.Is(err, redis.Nil) {
		return nil, errChallengeGone()
	} else if err != nil {
		return nil, unavailable(err)
	}
	if err := s.rdb.Del(ctx, codeKey).Err(); err != nil {
		s.db.logger.Warn("second factor: reset code throttle", "user_id", ch.UserID, "err", err)
	}
	sess, tok, err := s.startSession(ctx, ch.OrgID, ch.UserID, name, in, true, map[string]any{"method": method, "two_factor": "passed"})
	if err != nil {
		return nil, err
	}
	return &fieldops.SignInResult{Session: sess, Token: tok}, nil
}

// startSession creates the web session of a finished sign-in and audits
// it. A session whose audit entry cannot be written is ended again.
func (s *AuthService) startSession(ctx context.Context, orgID, userID int64, name string, in fieldops.SignIn, twoFactor bool, changes map[string]any) (*fieldops.Session, string, error) {
	sess, token, err := s.sessions.CreateSession(ctx, fieldops.NewSession{
		OrgID: orgID, UserID: userID, Channel: fieldops.ChannelWeb,
		UserAgent: in.UserAgent, IP: in.IP, TwoFactor: twoFactor,
	})
	if err != nil {
		return nil, "", err
	}
	if err := s.auditSignIn(ctx, orgID, userID, name, in.IP, "auth.sign_in", changes); err != nil {
		actx := fieldops.NewContext(context.WithoutCancel(ctx), fieldops.Actor{
			UserID: userID, OrgID: orgID, Channel: fieldops.ChannelWeb, IP: in.IP, SessionID: sess.ID, SessionStart: sess.CreatedAt,
		})
		if rerr := s.sessions.RevokeSession(actx, sess.ID); rerr != nil {
			s.db.logger.Error("sign-in: end unaudited session", "user_id", userID, "org_id", orgID, "err", rerr)
		}
		return nil, "", err
	}
	return sess, token, nil
}

// auditSignIn appends an entry about a user's own sign-in to their
// organisation's log, with the user as the actor.
func (s *AuthService) auditSignIn(ctx context.Context, orgID, userID int64, name string, ip netip.Addr, action string, changes map[string]any) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		return s.db.appendAudit(ctx, tx, orgID, userID, name, fieldops.ChannelWeb, ip, entry{
			action: action, targetType: "user", targetID: userID, changes: changes,
		})
	})
}

// ---------------------------------------------------------------------
// Sign-out

// SignOut ends the session of a token. A token that is unknown, expired
// or already ended is not an error: the caller is signed out either way.
func (s *AuthService) SignOut(ctx context.Context, token string) error {
	var ip netip.Addr
	if a, ok := fieldops.ActorFrom(ctx); ok {
		ip = a.IP
	}
	sess, actor, err := s.sessions.Authenticate(ctx, token, ip)
	if fieldops.ErrorCode(err) == fieldops.EUNAUTHORIZED {
		return nil
	}
	if err != nil {
		return err
	}
	if ip.IsValid() {
		actor.IP = ip
	}
	err = s.sessions.RevokeSession(fieldops.NewContext(ctx, actor), sess.ID)
	if c := fieldops.ErrorCode(err); c == fieldops.ENOTFOUND || c == fieldops.EUNAUTHORIZED {
		return nil // ended meanwhile
	}
	return err
}

// ---------------------------------------------------------------------
// Enrolment

// BeginEnrolment makes a TOTP secret for the actor and keeps it, sealed,
// until ConfirmEnrolment sees its first code. While a secret is pending
// (15 minutes from the last call) every call shows the same one, so that
// reloading the page, or a wrong code, does not undo a QR code the member
// has already scanned.
func (s *AuthService) BeginEnrolment(ctx context.Context) (*fieldops.Enrolment, error) {
	var (
		userID  int64
		email   string
		enabled bool
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		userID = acc.UserID
		return tx.QueryRow(ctx, `SELECT email, totp_enabled_at IS NOT NULL FROM users WHERE id = $1`, userID).Scan(&email, &enabled)
	})
	if err != nil {
		return nil, err
	}
	if enabled {
		return nil, fieldops.Errorf(fieldops.ECONFLICT, msgEnrolled)
	}
	secret, err := s.pendingSecret(ctx, userID)
	if err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.Issuer, AccountName: email, Secret: secret,
		Period: totpPeriod, SecretSize: totpSecretSize, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fieldops.Internal(err, "totp secret")
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return nil, fieldops.Internal(err, "totp qr code")
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return nil, fieldops.Internal(err, "totp qr code")
	}
	return &fieldops.Enrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: qr.Bytes()}, nil
}

// pendingSecret returns the raw secret waiting at enrol:{user}, with its
// life renewed, or stores a new one (SET NX, so that two calls at once
// agree on one secret).
func (s *AuthService) pendingSecret(ctx context.Context, userID int64) ([]byte, error) {
	key := enrolKey(userID)
	fresh := make([]byte, totpSecretSize)
	rand.Read(fresh) // never fails (crypto/rand, Go 1.24+)
	// Stored as base32 text, as TOTP secrets are everywhere else.
	created, err := s.rdb.SetNX(ctx, key, s.sealer.seal([]byte(totpBase32.EncodeToString(fresh)), userID), enrolmentTTL).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if created {
		return fresh, nil
	}
	sealed, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return s.pendingSecret(ctx, userID) // expired between the two calls
	}
	if err != nil {
		return nil, unavailable(err)
	}
	text, err := s.sealer.open(sealed, userID)
	if err != nil {
		return nil, fieldops.Internal(err, "pending totp secret")
	}
	secret, err := totpBase32.DecodeString(string(text))
	if err != nil {
		return nil, fieldops.Internal(err, "pending totp secret")
	}
	if err := s.rdb.Expire(ctx, key, enrolmentTTL).Err(); err != nil {
		return nil, unavailable(err)
	}
	return secret, nil
}

func enrolKey(userID int64) string { return "enrol:" + strconv.FormatInt(userID, 10) }

// ConfirmEnrolment turns two-factor sign-in on once a code of the pending
// secret (current or previous step) comes back. The step of that code is
// recorded as used, so the same code cannot then sign in. It returns ten
// new recovery codes, replacing any earlier ones.
func (s *AuthService) ConfirmEnrolment(ctx context.Context, code string) ([]string, error) {
	actor, err := fieldops.RequireActor(ctx)
	if err != nil {
		return nil, err
	}
	sealed, err := s.rdb.Get(ctx, enrolKey(actor.UserID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fieldops.Invalid("code", msgEnrolExpired)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	secret, err := s.sealer.open(sealed, actor.UserID)
	if err != nil {
		return nil, fieldops.Internal(err, "pending totp secret")
	}
	c := normaliseTOTPCode(code)
	if c == "" {
		return nil, fieldops.Invalid("code", msgEnrolCode)
	}
	step, ok, err := matchTOTP(string(secret), c, s.Now())
	if err != nil {
		return nil, fieldops.Internal(err, "totp code")
	}
	if !ok {
		return nil, fieldops.Invalid("code", msgEnrolCode)
	}

	codes := newRecoveryCodes(recoveryCodeCount)
	hashes := make([][]byte, len(codes))
	for i, rc := range codes {
		hashes[i] = hashRecoveryCode(actor.UserID, normaliseRecoveryCode(rc))
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		now := s.db.now()
		tag, err := tx.Exec(ctx, `UPDATE users SET totp_secret_enc = $2, totp_enabled_at = $3, totp_last_step = $4, updated_at = $3
			WHERE id = $1 AND totp_enabled_at IS NULL`, acc.UserID, s.sealer.seal(secret, acc.UserID), now, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fieldops.Errorf(fieldops.ECONFLICT, msgEnrolled)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, acc.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at)
			SELECT $1, h, $3 FROM unnest($2::bytea[]) h`, acc.UserID, hashes, now); err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "auth.two_factor_enrol", targetType: "user", targetID: acc.UserID,
			changes: map[string]any{"method": "totp", "recovery_codes": len(codes)}}); err != nil {
			return err
		}
		return securityNotice(ctx, tx, acc.OrgID, acc.UserID, "security.two_factor_enrolled", map[string]any{"at": now}, now)
	})
	if err != nil {
		return nil, err
	}
	if err := s.rdb.Del(ctx, enrolKey(actor.UserID)).Err(); err != nil {
		s.db.logger.Warn("enrolment: drop pending secret", "user_id", actor.UserID, "err", err)
	}
	return codes, nil
}

// RequiresEnrolment reports whether the actor's role in their
// organisation needs two-factor sign-in (Owner and Admin always; others
// by the organisation's policy) while they have none. It reads the
// current role and policy in one query, so a changed policy applies to
// sessions that already exist.
func (s *AuthService) RequiresEnrolment(ctx context.Context) (bool, error) {
	actor, err := fieldops.RequireActor(ctx)
	if err != nil {
		return false, err
	}
	// The same revocation backstop as db.load rides along, so that a
	// session Postgres records as ended is refused here too.
	var (
		enrolled, ended bool
		tf              twoFactorInputs
	)
	err = s.db.pool.QueryRow(ctx, `
		SELECT m.role, m.overrides, o.plan, o.require_2fa_roles, u.totp_enabled_at IS NOT NULL,
		       $3 <> '' AND (
		           EXISTS (SELECT 1 FROM sessions_revoked r WHERE r.session_id = $3)
		           OR EXISTS (SELECT 1 FROM user_sessions_floor f
		                      WHERE f.user_id = m.user_id AND f.org_key IN (0, m.org_id) AND f.revoked_before > $4))
		FROM memberships m
		JOIN organisations o ON o.id = m.org_id
		JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.user_id = $2 AND m.status = 'active'`,
		actor.OrgID, actor.UserID, actor.SessionID, actor.SessionStart).Scan(&tf.role, &tf.overrides, &tf.plan, &tf.policy, &enrolled, &ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fieldops.Errorf(fieldops.EUNAUTHORIZED, "You are not a member of this organisation any more. Ask its Owner or an Admin to invite you again.")
	}
	if err != nil {
		return false, translate(err)
	}
	if ended {
		return false, fieldops.Errorf(fieldops.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
	}
	if enrolled {
		return false, nil
	}
	must, err := tf.required()
	if err != nil {
		return false, fieldops.Internal(err, "two-factor policy")
	}
	return must, nil
}

// twoFactorInputs is what decides whether a member needs two-factor
// sign-in: their role and per-user permissions, the plan (overrides only
// count on plans that have them) and the organisation's policy.
type twoFactorInputs struct {
	role, plan string
	overrides  []byte
	policy     []string
}

func (tf twoFactorInputs) required() (bool, error) {
	plan, err := fieldops.FindPlan(tf.plan)
	if err != nil {
		return false, err
	}
	role, grants, err := memberGrants(tf.role, tf.overrides, plan.Overrides)
	if err != nil {
		return false, err
	}
	policy := make([]fieldops.Role, 0, len(tf.policy))
	for _, p := range tf.policy {
		if r, err := fieldops.ParseRole(p); err == nil {
			policy = append(policy, r)
		}
	}
	return fieldops.TwoFactorRequired(role, grants, policy), nil
}

// ResetTwoFactor turns a member's two-factor sign-in off, for when they
// have lost their phone. The actor needs security.policy, and only an
// Owner resets an Owner; resetting oneself is allowed on the same terms.
// In one transaction the member's sealed TOTP secret, its enabled time
// and replay guard are cleared, their recovery codes deleted, every
// session of theirs in the organisation begun before now refused (the
// revocation floor, as RevokeUserSessions records it) and their API
// tokens revoked; then their Redis sessions are deleted. A sign-in that
// has passed its password step and waits for a code has to start again.
// If their role needs two-factor sign-in, their next sign-in lands on
// enrolment (SignInResult.MustEnrol) with a new secret.
//
// The secret and the recovery codes belong to the user, not to the
// membership: a reset changes how they sign in to every organisation.
// So that the Admin of one organisation cannot take the second factor
// off an account that protects another (any organisation can add an
// existing user by e-mail), a member who is active in another
// organisation is refused: they sign in with a recovery code instead.
// The audit entry says affects_all_organisations all the same, since a
// removed membership elsewhere can be restored.
//
// When Redis cannot be told after the commit the answer is EUNAVAILABLE,
// but the reset is done and the sessions are refused by every service
// call already.
func (s *AuthService) ResetTwoFactor(ctx context.Context, userID int64) error {
	if userID <= 0 {
		return fieldops.Invalid("user_id", "Choose the member whose two-factor sign-in to reset.")
	}
	var orgID int64
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		orgID = acc.OrgID
		if err := acc.require(fieldops.FlagSecurityPolicy); err != nil {
			return err
		}
		target, err := findMember(ctx, tx, acc.OrgID, userID)
		if err != nil {
			return err
		}
		if err := fieldops.CheckManageMember(acc.Role, target.Role); err != nil {
			return err
		}
		// Row lock on the user: a concurrent enrolment or reset of the same
		// account waits for this one.
		var enabled, elsewhere bool
		err = tx.QueryRow(ctx, `
			SELECT u.totp_enabled_at IS NOT NULL,
			       EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.org_id <> $2 AND m.status = 'active')
			FROM users u WHERE u.id = $1 FOR NO KEY UPDATE`, userID, acc.OrgID).Scan(&enabled, &elsewhere)
		if err != nil {
			return err
		}
		if !enabled {
			return fieldops.Errorf(fieldops.ECONFLICT, "Two-factor sign-in is already off for %s. They will be asked to set it up at their next sign-in if their role needs it.", target.Name)
		}
		if elsewhere {
			return fieldops.Errorf(fieldops.EFORBIDDEN, "%s also belongs to another organisation, and their two-factor sign-in covers all of them, so it can't be reset from here. They can sign in with one of their recovery codes instead.", target.Name)
		}
		now := s.db.now()
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_secret_enc = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $2
			WHERE id = $1`, userID, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if err := upsertFloor(ctx, tx, acc.OrgID, userID, now); err != nil {
			return err
		}
		tokens, err := revokeAPITokens(ctx, tx, acc.OrgID, userID, now, &acc.UserID)
		if err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "auth.two_factor_reset", targetType: "member", targetID: userID,
			changes: map[string]any{
				"two_factor":                change{From: "totp", To: "none"},
				"recovery_codes_deleted":    tag.RowsAffected(),
				"revoked_before":            now.Format(time.RFC3339Nano),
				"api_tokens_revoked":        tokens,
				"affects_all_organisations": true,
			}}); err != nil {
			return err
		}
		return securityNotice(ctx, tx, acc.OrgID, userID, "security.two_factor_reset", map[string]any{"by": acc.name, "at": now}, now)
	})
	if err != nil {
		return err
	}
	// A secret still pending from an old enrolment may be on the lost
	// phone: the next enrolment must make a new one.
	if err := s.rdb.Del(ctx, enrolKey(userID)).Err(); err != nil {
		s.db.logger.Warn("two-factor reset: drop pending secret", "user_id", userID, "err", err)
	}
	if p, ok := s.sessions.(interface {
		PurgeRedis(ctx context.Context, orgID, userID int64) error
	}); ok {
		return p.PurgeRedis(ctx, orgID, userID)
	}
	return nil
}

// ---------------------------------------------------------------------
// Throttle counters

// count adds one attempt to each key and returns the new counts: INCR
// and EXPIRE NX in one MULTI/EXEC, so the count and its window are set
// together and the window runs from the first attempt. (A retried EXEC
// may count an attempt twice: the safe direction for a limit.)
func (s *AuthService) count(ctx context.Context, keys ...string) ([]int64, error) {
	incrs := make([]*redis.IntCmd, len(keys))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			incrs[i] = p.Incr(ctx, k)
			p.ExpireNX(ctx, k, throttleWindow)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := make([]int64, len(keys))
	for i, c := range incrs {
		n[i] = c.Val()
	}
	return n, nil
}

// uncountScript gives back one attempt on each key that still exists (a
// key that expired meanwhile must not come back without its expiry).
var uncountScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
	if redis.call('EXISTS', k) == 1 then redis.call('DECR', k) end
end
return 0`)

// uncount gives back attempts that turned out not to be failures. An
// error leaves the count high, which only errs on the safe side.
func (s *AuthService) uncount(ctx context.Context, keys ...string) {
	if err := uncountScript.Run(context.WithoutCancel(ctx), s.rdb, keys).Err(); err != nil && !errors.Is(err, redis.Nil) {
		s.db.logger.Warn("sign-in throttle: give back attempt", "err", err)
	}
}

// normaliseSignInEmail lower-cases and trims the address as accounts are
// stored. A malformed address is kept as typed (lower-cased): it matches
// no account and takes the same path as an unknown one.
func normaliseSignInEmail(s string) string {
	if e, err := fieldops.NormaliseEmail(s); err == nil {
		return e
	}
	return strings.ToLower(strings.TrimSpace(s))
}

func authHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ipBucket is the unit of the per-address throttle: an IPv4 address, or
// the /64 of an IPv6 address (one subscriber's usual allocation).
func ipBucket(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func logIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.WithZone("").Unmap().String()
}
