package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Secret tokens (session cookies, API tokens, invitation and Telegram link
// tokens) are 256 random bits, base64url, with a short prefix that says
// what they are. Only their SHA-256 is ever stored; a token has far too
// much entropy for its hash to be guessed, so no slow hash is needed.
const (
	prefixWeb        = "fow_"
	prefixAPI        = "foa_"
	prefixTelegram   = "fot_"
	prefixInvitation = "foi_"
	prefixChallenge  = "foc_"
)

// newToken returns a fresh secret token and its hash.
func newToken(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// hashToken is the stored form of a token.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// publicID is the identifier of a session shown in lists: derived from
// the token's hash, never the token or the hash itself.
func publicID(hash []byte) string {
	h := sha256.Sum256(append([]byte("session-id:"), hash...))
	return hex.EncodeToString(h[:12])
}

// tokenHasPrefix reports whether a token is of the given kind and of the
// right length, before any lookup.
func tokenHasPrefix(token, prefix string) bool {
	return strings.HasPrefix(token, prefix) && len(token) == len(prefix)+43
}
