package fs

import (
	"io"
	iofs "io/fs"
	"os"
	"strings"
)

// FS is the part of the filesystem the store uses. The default is the real
// one; tests substitute an implementation that can lose everything not yet
// synced, to prove crash safety rather than assume it.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Stat(name string) (iofs.FileInfo, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Mkdir(name string, perm os.FileMode) error
	MkdirAll(name string, perm os.FileMode) error
	// SyncDir makes the entries of directory name (creations, renames,
	// removals) durable.
	SyncDir(name string) error
}

// File is an open file of an FS; *os.File implements it.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	Stat() (iofs.FileInfo, error)
	Truncate(size int64) error
	// Sync makes the file's contents durable.
	Sync() error
}

// Booter is an optional FS ability: the identity of the running kernel,
// which changes when the machine restarts. Bytes written but not synced
// survive a crash of the process (they are in the kernel's page cache) and
// are lost, or worse, only by a restart of the kernel; with a boot
// identity the store can tell the two apart (see Append). Without one it
// syncs every Append.
type Booter interface {
	BootID() (string, error)
}

// NoReplaceRenamer is an optional FS ability: rename oldpath to newpath
// unless newpath exists, in one call. It fails with an error that is
// iofs.ErrExist when newpath exists (both names stay), and with
// errors.ErrUnsupported when the filesystem cannot; the store then stats
// newpath first and renames (FS.Rename replaces).
type NoReplaceRenamer interface {
	RenameNoReplace(oldpath, newpath string) error
}

// SameFiler is an optional FS ability: whether two FileInfos describe one
// file (os.SameFile). Only on such an FS does an Append keep its upload's
// data file open for the next one (kept.go), since reusing it needs that
// check.
type SameFiler interface {
	SameFile(a, b iofs.FileInfo) bool
}

// OS is the real filesystem.
type OS struct{}

// BootID is Linux's random identity of this boot.
func (OS) BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b)), err
}

func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return openFile(name, flag, perm)
}

func (OS) SameFile(a, b iofs.FileInfo) bool { return os.SameFile(a, b) }

func (OS) Stat(name string) (iofs.FileInfo, error)      { return os.Stat(name) }
func (OS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (OS) Remove(name string) error                     { return os.Remove(name) }
func (OS) Mkdir(name string, perm os.FileMode) error    { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }

func (OS) SyncDir(name string) error { return syncDir(name) }

// RenameNoReplace is NoReplaceRenamer (Linux renameat2).
func (OS) RenameNoReplace(oldpath, newpath string) error { return renameNoReplace(oldpath, newpath) }
