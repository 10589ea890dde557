package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"

	"github.com/fieldops/fieldops"
)

// Argon2id parameters: the OWASP minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
)

// CreateUser makes an account that belongs to no organisation yet: the
// first step of starting an organisation. It needs no actor.
func (db *DB) CreateUser(ctx context.Context, email, name, password string) (*fieldops.User, error) {
	n := fieldops.NewMember{Email: email, Name: name, Role: fieldops.RoleOwner}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var hash *string
	if password != "" {
		h, err := HashPassword(password)
		if err != nil {
			return nil, err
		}
		hash = &h
	}
	u := &fieldops.User{Email: n.Email, Name: n.Name}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id, created_at`,
			n.Email, n.Name, hash).Scan(&u.ID, &u.CreatedAt)
	})
	return u, err
}

// FindUserByEmail returns an account by e-mail address.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (*fieldops.User, error) {
	email, err := fieldops.NormaliseEmail(email)
	if err != nil {
		return nil, err
	}
	u := &fieldops.User{}
	err = db.pool.QueryRow(ctx, `SELECT id, email, name, totp_enabled_at IS NOT NULL, created_at FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.TOTPEnabled, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("Account")
	}
	if err != nil {
		return nil, translate(err)
	}
	return u, nil
}

// HashPassword returns the argon2id hash of a password in PHC form.
func HashPassword(password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a PHC hash made by
// HashPassword (with whatever parameters it records).
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// checkPassword applies the length rule (NIST 800-63B: at least 12
// characters here, at most 256; any characters).
func checkPassword(pw string) error {
	switch n := len([]rune(pw)); {
	case n < 12:
		return fieldops.Invalid("password", "Choose a password of at least 12 characters; a few random words work well.")
	case n > 256:
		return fieldops.Invalid("password", "Passwords can be at most 256 characters.")
	}
	return nil
}

// SetPassword replaces a user's password. It needs no actor: callers are
// the invitation acceptance and the operator's CLI.
func (db *DB) SetPassword(ctx context.Context, userID int64, password string) error {
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, userID, h)
		if err == nil && tag.RowsAffected() == 0 {
			return notFound("Account")
		}
		return err
	})
}
