package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP as RFC 6238 recommends and every authenticator app understands:
// 30 s steps, 6 digits, HMAC-SHA-1, a 160-bit secret.
const (
	totpPeriod     = 30
	totpSecretSize = 20
)

// totpBase32 is how secrets are written: RFC 4648 base32 without padding,
// as in otpauth:// URLs.
var totpBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// totpStep is the number of the 30 s step that t falls in.
func totpStep(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - totpPeriod + 1) / totpPeriod
	}
	return s / totpPeriod
}

// matchTOTP reports the step whose code equals code, trying the current
// step of now and the one before it (one step of delay: the code was
// read just before the step ended). The next step is not accepted: a
// phone whose clock runs ahead is refused rather than widening the
// window to 90 s. When both steps match (a one-in-a-million collision) the
// newer one wins, so that a code is never matched to a step that is
// already used while a newer one is free (checklist A7, test 4).
// Both candidates are computed and compared in constant time.
func matchTOTP(secret, code string, now time.Time) (step int64, ok bool, err error) {
	cur := totpStep(now)
	var matched [2]bool
	for i, st := range [2]int64{cur, cur - 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(st*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false, fmt.Errorf("totp code: %w", err)
		}
		matched[i] = subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
	}
	switch {
	case matched[0]:
		return cur, true, nil
	case matched[1]:
		return cur - 1, true, nil
	}
	return 0, false, nil
}

// normaliseTOTPCode returns the six digits of a TOTP code as typed
// ("123 456" is fine), or "" when the input is not one.
func normaliseTOTPCode(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) != 6 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return ""
		}
	}
	return s
}

// sealer encrypts TOTP secrets with AES-256-GCM under a key held outside
// the database. The ciphertext is nonce || sealed; the user's id is the
// additional data, so a secret copied onto another user's row does not
// open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("totp key: %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func sealAD(userID int64) []byte { return strconv.AppendInt([]byte("user:"), userID, 10) }

func (s *sealer) seal(plain []byte, userID int64) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	return s.aead.Seal(nonce, nonce, plain, sealAD(userID))
}

var errSealed = errors.New("totp secret does not decrypt")

func (s *sealer) open(sealed []byte, userID int64) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errSealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], sealAD(userID))
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}

// Recovery codes: ten per enrolment, each 12 characters of lower-case
// base32 (60 random bits) shown as xxxx-xxxx-xxxx. They are single use.
const (
	recoveryCodeCount = 10
	recoveryCodeLen   = 12
)

// newRecoveryCodes returns n fresh codes in their display form.
func newRecoveryCodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		c := strings.ToLower(rand.Text()[:recoveryCodeLen]) // base32, 5 random bits a character
		out[i] = c[:4] + "-" + c[4:8] + "-" + c[8:]
	}
	return out
}

// normaliseRecoveryCode accepts a code in any case, with or without its
// dashes and spaces, and returns its 12 characters, or "" when it cannot
// be a recovery code.
func normaliseRecoveryCode(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, s)
	if len(s) != recoveryCodeLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return ""
		}
	}
	return s
}

// hashRecoveryCode is the stored form of a normalised code: SHA-256 over
// the user's id and the code. A code has 60 random bits, too many to
// guess through the sign-in throttle, so a fast hash is enough; the user
// id keeps one computation from testing a guess against every user's
// codes at once.
func hashRecoveryCode(userID int64, code string) []byte {
	h := sha256.Sum256([]byte("fieldops-recovery:" + strconv.FormatInt(userID, 10) + ":" + code))
	return h[:]
}
