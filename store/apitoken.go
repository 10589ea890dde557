package store

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldops/fieldops"
)

// maxAPITokenName is the longest token name, in characters.
const maxAPITokenName = 60

// APITokenService issues personal API tokens. A token is a session of
// channel api (listed and revoked through SessionService) whose durable
// record is a row of api_tokens: it survives Redis losing its data.
type APITokenService struct {
	db       *DB
	sessions *SessionService
}

var _ fieldops.APITokenService = (*APITokenService)(nil)

// NewAPITokenService returns the API token service.
func NewAPITokenService(db *DB, sessions *SessionService) *APITokenService {
	return &APITokenService{db: db, sessions: sessions}
}

// CreateAPIToken issues a token to the actor, for themselves; any member
// may. The name must be unique among their live tokens. The token lives
// SessionService.APITTL and is returned once.
//
// The Redis session is written inside the transaction, before the commit:
// if Redis fails nothing is created, and if the commit fails the Redis
// entry is deleted again (its token was never shown, so it could not have
// been used).
func (s *APITokenService) CreateAPIToken(ctx context.Context, name string) (*fieldops.Session, string, error) {
	name, err := checkAPITokenName(name)
	if err != nil {
		return nil, "", err
	}
	var (
		sess    *fieldops.Session
		token   string
		hash    []byte
		written bool
	)
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		now := s.db.now()
		sess, token, hash = s.sessions.newSession(fieldops.NewSession{
			OrgID: acc.OrgID, UserID: acc.UserID, Channel: fieldops.ChannelAPI,
			Device: apiDevice(name), IP: acc.actor.IP, TwoFactor: false,
		}, acc.name, now)
		var id int64
		err = tx.QueryRow(ctx, `
			INSERT INTO api_tokens (org_id, user_id, name, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			acc.OrgID, acc.UserID, name, hash, now, sess.ExpiresAt).Scan(&id)
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.ConstraintName == "api_tokens_live_name" {
			return &fieldops.Error{Code: fieldops.ECONFLICT, Field: "name", Err: err,
				Message: "You already have a token called “" + name + "”. Choose another name, or revoke the old token first."}
		}
		if err != nil {
			return err
		}
		if err := s.db.audit(ctx, tx, acc, entry{action: "api_token.create", targetType: "api_token", targetID: id,
			changes: map[string]any{"name": name, "session_id": sess.ID, "expires_at": sess.ExpiresAt}}); err != nil {
			return err
		}
		if err := s.sessions.write(ctx, sess, hash); err != nil {
			return s.sessions.unavailable(err, "create api token")
		}
		written = true
		return nil
	})
	if err != nil {
		if written {
			// The commit failed after the Redis entry was written. Nobody
			// has its token, but it would be listed.
			if derr := s.sessions.drop(context.WithoutCancel(ctx), sess, hash); derr != nil {
				s.db.logger.Warn("session store: drop uncommitted api token", "session", sess.ID, "err", derr)
			}
		}
		return nil, "", err
	}
	return sess, token, nil
}

// checkAPITokenName trims a token name and checks it.
func checkAPITokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", fieldops.Invalid("name", "Give the token a name that says what uses it, such as “Xero sync”.")
	case n > maxAPITokenName:
		return "", fieldops.Invalid("name", "A token name can be at most %d characters.", maxAPITokenName)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return "", fieldops.Invalid("name", "A token name can't contain line breaks or control characters.")
	}
	return name, nil
}
