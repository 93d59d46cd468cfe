package fs_test

import (
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/storage/fs"
)

// The real filesystem's calls answer as os's do: the errors the store
// tells apart (exists, missing) keep their kind, and files read and
// write through the File interface.
func TestOSFiles(t *testing.T) {
	var o fs.OS
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	f, err := o.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o640&^umask(t) {
		t.Fatalf("created file: %v, %v", fi, err)
	}
	if _, err := o.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, iofs.ErrExist) {
		t.Fatalf("exclusive create of an existing file = %v, want ErrExist", err)
	}
	if _, err := o.OpenFile(filepath.Join(dir, "missing"), os.O_RDONLY, 0); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("open of a missing file = %v, want ErrNotExist", err)
	}
	r, err := o.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Fatalf("OpenFile gave %T; net/http sends only an *os.File with sendfile", r)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "data" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if err := o.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := o.SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory = %v, want ErrNotExist", err)
	}
	if err := o.SyncDir(name); err == nil {
		t.Fatal("SyncDir of a file succeeded")
	}
}

func umask(t *testing.T) os.FileMode {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ fi.Mode().Perm()
}

// RenameNoReplace moves a file to a free name and refuses a taken one
// with ErrExist, both files left as they were.
func TestOSRenameNoReplace(t *testing.T) {
	var o fs.OS
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for name, data := range map[string]string{a: "a", b: "b"} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := o.RenameNoReplace(a, b)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("this filesystem cannot rename without replacing")
	}
	if !errors.Is(err, iofs.ErrExist) {
		t.Fatalf("rename onto an existing file = %v, want ErrExist", err)
	}
	for name, want := range map[string]string{a: "a", b: "b"} {
		if got, err := os.ReadFile(name); err != nil || string(got) != want {
			t.Fatalf("%s after the refused rename: %q, %v", name, got, err)
		}
	}
	if err := o.RenameNoReplace(a, c); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(c); err != nil || string(got) != "a" {
		t.Fatalf("renamed file: %q, %v", got, err)
	}
	if err := o.RenameNoReplace(a, c); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("rename of a missing file = %v, want ErrNotExist", err)
	}
}
