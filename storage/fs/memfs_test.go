package fs_test

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/storage/fs"
)

// memFS is an in-memory fs.FS that, like a real disk after power loss,
// forgets everything that was not synced: file contents not followed by
// File.Sync, and directory entries (creations, renames, removals) not
// followed by SyncDir of their directory. Crash applies that loss.
// The idea is pebble's vfs.NewStrictMem.
type memFS struct {
	mu      sync.Mutex
	gen     int                 // bumped by Crash; older open files stop working
	nodes   map[string]*memNode // the namespace now
	durable map[string]*memNode // the namespace a crash would leave
	// hook, when set, runs before every operation; an error fails the
	// operation (and, by convention, the test then calls Crash).
	hook func(op, path string) error
	// plainRename makes RenameNoReplace unsupported, as on a filesystem
	// without renameat2's flag: the store then stats and renames.
	plainRename bool
}

type memNode struct {
	dir    bool
	data   []byte // contents now
	synced []byte // contents a crash would leave
}

const memRoot = "/mem"

func newMemFS() *memFS {
	root := &memNode{dir: true}
	return &memFS{
		nodes:   map[string]*memNode{memRoot: root},
		durable: map[string]*memNode{memRoot: root},
	}
}

var errInjected = errors.New("memfs: injected failure")

func (m *memFS) before(op, name string) error {
	m.mu.Lock()
	h := m.hook
	m.mu.Unlock()
	if h != nil {
		return h(op, name)
	}
	return nil
}

func pathErr(op, name string, err error) error { return &iofs.PathError{Op: op, Path: name, Err: err} }

// parentOK reports whether name's directory exists. Callers hold mu.
func (m *memFS) parentOK(name string) bool {
	p, ok := m.nodes[filepath.Dir(name)]
	return ok && p.dir
}

// BootID is fs.Booter: a crash is a restart of the machine, so it
// changes with gen.
func (m *memFS) BootID() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("boot-%d", m.gen), nil
}

// Crash drops every unsynced change, as a power cut would.
func (m *memFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.nodes = map[string]*memNode{}
	for p, n := range m.durable {
		if m.reachable(p) {
			m.nodes[p] = n
			if !n.dir {
				n.data = slices.Clone(n.synced)
			}
		}
	}
	m.durable = maps(m.nodes)
}

// reachable: every ancestor of p is a durable directory.
func (m *memFS) reachable(p string) bool {
	for p != memRoot {
		p = filepath.Dir(p)
		if n, ok := m.durable[p]; !ok || !n.dir {
			return false
		}
	}
	return true
}

func maps(src map[string]*memNode) map[string]*memNode {
	dst := make(map[string]*memNode, len(src))
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// Files lists the regular files under dir now, with their contents.
func (m *memFS) Files(dir string) map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for p, n := range m.nodes {
		if !n.dir && strings.HasPrefix(p, dir+"/") {
			out[p] = slices.Clone(n.data)
		}
	}
	return out
}

func (m *memFS) OpenFile(name string, flag int, perm os.FileMode) (fs.File, error) {
	if err := m.before("open", name); err != nil {
		return nil, pathErr("open", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[name]
	switch {
	case ok && n.dir:
		return nil, pathErr("open", name, errors.New("is a directory"))
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, iofs.ErrExist)
	case !ok && flag&os.O_CREATE == 0, !ok && !m.parentOK(name):
		return nil, pathErr("open", name, iofs.ErrNotExist)
	case !ok:
		n = &memNode{}
		m.nodes[name] = n
	}
	if flag&os.O_TRUNC != 0 {
		n.data = nil
	}
	return &memFile{m: m, n: n, name: name, gen: m.gen, write: flag&(os.O_WRONLY|os.O_RDWR) != 0}, nil
}

func (m *memFS) Stat(name string) (iofs.FileInfo, error) {
	if err := m.before("stat", name); err != nil {
		return nil, pathErr("stat", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[name]
	if !ok {
		return nil, pathErr("stat", name, iofs.ErrNotExist)
	}
	return memInfo{name: filepath.Base(name), size: int64(len(n.data)), dir: n.dir}, nil
}

func (m *memFS) Rename(oldpath, newpath string) error {
	if err := m.before("rename", newpath); err != nil {
		return pathErr("rename", oldpath, err)
	}
	return m.rename(oldpath, newpath, false)
}

func (m *memFS) rename(oldpath, newpath string, noReplace bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.nodes[newpath]; exists && noReplace {
		return pathErr("rename", newpath, iofs.ErrExist)
	}
	n, ok := m.nodes[oldpath]
	if !ok || !m.parentOK(newpath) {
		return pathErr("rename", oldpath, iofs.ErrNotExist)
	}
	if n.dir {
		return pathErr("rename", oldpath, errors.New("memfs renames files only"))
	}
	delete(m.nodes, oldpath)
	m.nodes[newpath] = n
	return nil
}

// RenameNoReplace is fs.NoReplaceRenamer; the hook sees it as a
// "rename", refused or not.
func (m *memFS) RenameNoReplace(oldpath, newpath string) error {
	if m.plainRename {
		return errors.ErrUnsupported
	}
	if err := m.before("rename", newpath); err != nil {
		return pathErr("rename", oldpath, err)
	}
	return m.rename(oldpath, newpath, true)
}

func (m *memFS) Remove(name string) error {
	if err := m.before("remove", name); err != nil {
		return pathErr("remove", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[name]
	if !ok {
		return pathErr("remove", name, iofs.ErrNotExist)
	}
	if n.dir {
		for p := range m.nodes {
			if filepath.Dir(p) == name {
				return pathErr("remove", name, errors.New("directory not empty"))
			}
		}
	}
	delete(m.nodes, name)
	return nil
}

func (m *memFS) Mkdir(name string, perm os.FileMode) error {
	if err := m.before("mkdir", name); err != nil {
		return pathErr("mkdir", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[name]; ok {
		return pathErr("mkdir", name, iofs.ErrExist)
	}
	if !m.parentOK(name) {
		return pathErr("mkdir", name, iofs.ErrNotExist)
	}
	m.nodes[name] = &memNode{dir: true}
	return nil
}

func (m *memFS) MkdirAll(name string, perm os.FileMode) error {
	if name == memRoot || !strings.HasPrefix(name, memRoot+"/") {
		return nil
	}
	if err := m.MkdirAll(filepath.Dir(name), perm); err != nil {
		return err
	}
	if err := m.Mkdir(name, perm); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return nil
}

// SyncDir makes the current entries of name, and only those, durable.
func (m *memFS) SyncDir(name string) error {
	if err := m.before("syncdir", name); err != nil {
		return pathErr("syncdir", name, err)
	}
	if name == filepath.Dir(memRoot) {
		return nil // memRoot itself is always durable
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.nodes[name]; !ok || !n.dir {
		return pathErr("syncdir", name, iofs.ErrNotExist)
	}
	for p := range m.durable {
		if filepath.Dir(p) == name {
			delete(m.durable, p)
		}
	}
	for p, n := range m.nodes {
		if filepath.Dir(p) == name {
			m.durable[p] = n
		}
	}
	return nil
}

type memFile struct {
	m     *memFS
	n     *memNode
	name  string
	gen   int
	pos   int64
	write bool
}

var errStale = errors.New("memfs: file opened before a crash")

// lock takes the FS lock, checking the file survived no crash.
func (f *memFile) lock(op string) error {
	if err := f.m.before(op, f.name); err != nil {
		return pathErr(op, f.name, err)
	}
	f.m.mu.Lock()
	if f.gen != f.m.gen {
		f.m.mu.Unlock()
		return pathErr(op, f.name, errStale)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.lock("read"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.lock("write"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if !f.write {
		return 0, pathErr("write", f.name, errors.New("read-only file"))
	}
	if end := f.pos + int64(len(p)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.pos:], p)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	if err := f.lock("seek"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += int64(len(f.n.data))
	}
	if offset < 0 {
		return 0, pathErr("seek", f.name, errors.New("negative offset"))
	}
	f.pos = offset
	return offset, nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.lock("truncate"); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size] // cap, so later appends do not share synced
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Sync() error {
	if err := f.lock("sync"); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	f.n.synced = slices.Clone(f.n.data)
	return nil
}

func (f *memFile) Stat() (iofs.FileInfo, error) {
	if err := f.lock("fstat"); err != nil {
		return nil, err
	}
	defer f.m.mu.Unlock()
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.n.data))}, nil
}

func (f *memFile) Close() error { return nil }

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() iofs.FileMode {
	if i.dir {
		return iofs.ModeDir | 0o755
	}
	return 0o644
}
