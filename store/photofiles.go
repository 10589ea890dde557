package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/fieldops/fieldops"
)

// PhotoFiles keeps photo files on disk under Dir, content-addressed: a
// file's key is its SHA-256 in hex, under two levels of directories taken
// from the hash ("ab/cd/abcd…"), so that no directory grows too large.
// The same bytes always have the same key, so storing a file twice, or
// again after a failed transaction, is harmless.
type PhotoFiles struct {
	Dir string
}

// photoKey is the shape of a key: two directory levels and the full hash.
var photoKey = regexp.MustCompile(`^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$`)

// keyOf is the key of a hash.
func keyOf(sum [32]byte) string {
	h := hex.EncodeToString(sum[:])
	return h[0:2] + "/" + h[2:4] + "/" + h
}

// Put stores data under its SHA-256 and returns the hash and the key. The
// bytes go to a temporary file in the final directory, which is synced
// and then renamed into place (and the directory synced), so a crash
// never leaves a partial file under the final name. A file already
// stored under the key is kept as it is.
func (p *PhotoFiles) Put(data []byte) (sum [32]byte, key string, err error) {
	if p == nil || p.Dir == "" {
		return sum, "", errors.New("photo files: no directory configured")
	}
	sum = sha256.Sum256(data)
	key = keyOf(sum)
	final := filepath.Join(p.Dir, filepath.FromSlash(key))
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(data)) {
		return sum, key, nil
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return sum, "", fmt.Errorf("photo files: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return sum, "", fmt.Errorf("photo files: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return sum, "", fmt.Errorf("photo files: write: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return sum, "", fmt.Errorf("photo files: sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return sum, "", fmt.Errorf("photo files: close: %w", err)
	}
	if err = os.Rename(tmp.Name(), final); err != nil {
		return sum, "", fmt.Errorf("photo files: rename: %w", err)
	}
	if err = syncDir(dir); err != nil {
		return sum, "", fmt.Errorf("photo files: sync directory: %w", err)
	}
	return sum, key, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open returns the file stored under key. A key that is not of the shape
// Put returns (which rules out any path outside Dir), or that names no
// file, is a "not found" error.
func (p *PhotoFiles) Open(key string) (io.ReadCloser, error) {
	m := photoKey.FindStringSubmatch(key)
	if m == nil || m[3][0:2] != m[1] || m[3][2:4] != m[2] {
		return nil, &fieldops.Error{Code: fieldops.ENOTFOUND, Message: "Photo not found. It may have been removed, or the link is wrong.",
			Err: fmt.Errorf("photo files: malformed key %q", key)}
	}
	if p == nil || p.Dir == "" {
		return nil, errors.New("photo files: no directory configured")
	}
	root, err := os.OpenRoot(p.Dir)
	if err != nil {
		return nil, fmt.Errorf("photo files: %w", err)
	}
	defer root.Close()
	f, err := root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &fieldops.Error{Code: fieldops.ENOTFOUND, Message: "Photo not found. It may have been removed, or the link is wrong.", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("photo files: %w", err)
	}
	return f, nil
}
