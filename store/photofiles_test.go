package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldops/fieldops"
	"github.com/fieldops/fieldops/store"
)

// filesUnder lists the regular files under dir, relative and with
// slashes.
func filesUnder(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestPhotoFilesPut(t *testing.T) {
	t.Parallel()
	pf := &store.PhotoFiles{Dir: t.TempDir()}
	data := []byte("\x89PNG\r\n\x1a\nconsumer unit")
	want := sha256.Sum256(data)
	h := hex.EncodeToString(want[:])

	t.Run("OK", func(t *testing.T) {
		sum, key, err := pf.Put(data)
		if err != nil {
			t.Fatal(err)
		}
		if sum != want || key != h[:2]+"/"+h[2:4]+"/"+h {
			t.Fatalf("Put = %x, %q", sum, key)
		}
		got, err := os.ReadFile(filepath.Join(pf.Dir, filepath.FromSlash(key)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("file = %q, %v", got, err)
		}
	})
	t.Run("AgainIsIdempotent", func(t *testing.T) {
		sum, key, err := pf.Put(data)
		if err != nil || sum != want || !strings.HasSuffix(key, h) {
			t.Fatalf("Put again = %x, %q, %v", sum, key, err)
		}
		if files := filesUnder(t, pf.Dir); len(files) != 1 {
			t.Fatalf("files = %v, want the one (no temporary files left)", files)
		}
	})
	t.Run("RepairsTruncatedFile", func(t *testing.T) {
		final := filepath.Join(pf.Dir, h[:2], h[2:4], h)
		if err := os.WriteFile(final, data[:3], 0o640); err != nil {
			t.Fatal(err)
		}
		if _, _, err := pf.Put(data); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(final); !bytes.Equal(got, data) {
			t.Fatalf("file = %q, want it whole again", got)
		}
	})
	t.Run("OtherContentOtherKey", func(t *testing.T) {
		_, key, err := pf.Put([]byte("another picture"))
		if err != nil || strings.HasSuffix(key, h) {
			t.Fatalf("Put = %q, %v", key, err)
		}
		if files := filesUnder(t, pf.Dir); len(files) != 2 {
			t.Fatalf("files = %v, want two", files)
		}
	})
	t.Run("NoDir/Err", func(t *testing.T) {
		if _, _, err := (&store.PhotoFiles{}).Put(data); err == nil {
			t.Fatal("Put without a directory succeeded")
		}
	})
}

func TestPhotoFilesOpen(t *testing.T) {
	t.Parallel()
	pf := &store.PhotoFiles{Dir: t.TempDir()}
	data := []byte("GIF89a board")
	_, key, err := pf.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	// A file beside Dir that a traversal would reach.
	if err := os.WriteFile(filepath.Join(filepath.Dir(pf.Dir), "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		rc, err := pf.Open(key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read = %q, %v", got, err)
		}
	})
	other := sha256.Sum256([]byte("never stored"))
	oh := hex.EncodeToString(other[:])
	for _, tt := range []struct{ name, key string }{
		{"Missing", oh[:2] + "/" + oh[2:4] + "/" + oh},
		{"Empty", ""},
		{"Traversal", "../secret"},
		{"TraversalShaped", "../../" + key},
		{"Absolute", "/etc/passwd"},
		{"Uppercase", strings.ToUpper(key)},
		{"WrongPrefix", "00/00/" + key[6:]},
		{"NoDirs", key[6:]},
		{"Short", key[:len(key)-1]},
		{"Backslashes", strings.ReplaceAll(key, "/", `\`)},
		{"TrailingNewline", key + "\n"},
	} {
		t.Run(tt.name+"/ErrNotFound", func(t *testing.T) {
			rc, err := pf.Open(tt.key)
			if err == nil {
				rc.Close()
			}
			wantCode(t, err, fieldops.ENOTFOUND)
		})
	}
}
