package filestamp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/filestamp"
)

func TestStamp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var s filestamp.Stamp
	if s.Current(fi) {
		t.Fatal("a stamp never read is current")
	}
	s.Read(fi, mod.Add(filestamp.RacyWindow-time.Nanosecond))
	if s.Current(fi) {
		t.Error("read within the racy window, yet current: a rewrite in the same tick would go unseen")
	}
	s.Read(fi, mod.Add(-time.Hour))
	if s.Current(fi) {
		t.Error("a modification time in the future is current")
	}
	s.Read(fi, mod.Add(filestamp.RacyWindow))
	if !s.Current(fi) {
		t.Error("read after the window, unchanged, yet not current")
	}
	if err := os.WriteFile(p, []byte("two!"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, mod, mod)
	if fi, _ := os.Stat(p); s.Current(fi) {
		t.Error("a change of size is current")
	}
	os.WriteFile(p, []byte("one"), 0o600)
	os.Chtimes(p, mod.Add(time.Second), mod.Add(time.Second))
	if fi, _ := os.Stat(p); s.Current(fi) {
		t.Error("a change of modification time is current")
	}
}

func TestReadMax(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o600)
	if b, err := filestamp.ReadMax(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("at the limit: %q %v", b, err)
	}
	if _, err := filestamp.ReadMax(p, 4); err == nil || !strings.Contains(err.Error(), "more than 4 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := filestamp.ReadMax(filepath.Join(t.TempDir(), "none"), 4); !os.IsNotExist(err) {
		t.Errorf("no file: %v", err)
	}
}
