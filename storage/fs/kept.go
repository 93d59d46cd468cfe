package fs

import (
	iofs "io/fs"
	"sync"
	"time"
)

// Upload data files kept open between Appends. A chunked push is a
// sequence of PATCHes to one session, each an Append: reopening the data
// file for each one costs an open and a close on the path between a 202
// and the next chunk's first write, where the disk waits for the next
// bytes. So an Append that
// succeeded keeps its file open here, and the next Append or the Commit of
// the same session takes it back.
//
// The session record stays the truth, so a kept file is only a shortcut
// to the same inode: before use it must still be the file at the upload's
// path (another replica on a shared filesystem may have committed the
// session, renaming the file into blobs/, or removed it), and openUpload
// checks its size against u.Offset as for a fresh open; so files are kept
// only on an FS that can tell (SameFiler: the real one, not the tests'
// crash-simulating one, which reopens every time). Commit, Abort and
// PurgeUploads close the session's kept file; files idle for
// keptIdle are closed whenever another is kept, and at most keptMax stay
// open (the least recently used goes first), so abandoned sessions cannot
// pile up descriptors, and an inode another replica removed is released
// soon. The hashes running behind Appends (behind.go) are kept the same
// way, on every FS: a stale one is told by its end offset.
const (
	keptMax  = 64
	keptIdle = time.Minute
)

// idleSet maps upload IDs to something an upload keeps between requests
// (an open data file, a running hash), evicting what sits idle. An entry
// is removed while in use, so no two requests ever share one.
type idleSet[T comparable] struct {
	end func(T) // releases an evicted or dropped entry
	mu  sync.Mutex
	m   map[string]idleEntry[T]
}

type idleEntry[T any] struct {
	v    T
	used time.Time
}

// take removes and returns id's entry, or the zero T.
func (k *idleSet[T]) take(id string) T {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.m[id]
	delete(k.m, id)
	return e.v
}

// keep holds v for id's next request.
func (k *idleSet[T]) keep(id string, v T) {
	now := time.Now()
	var ending []T
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]idleEntry[T])
	}
	if old, ok := k.m[id]; ok {
		ending = append(ending, old.v) // a concurrent request of the same session kept one first
	}
	oldest := ""
	for oid, e := range k.m {
		switch {
		case oid == id:
		case now.Sub(e.used) > keptIdle:
			ending = append(ending, e.v)
			delete(k.m, oid)
		case oldest == "" || e.used.Before(k.m[oldest].used):
			oldest = oid
		}
	}
	if _, ok := k.m[id]; !ok && len(k.m) >= keptMax {
		ending = append(ending, k.m[oldest].v)
		delete(k.m, oldest)
	}
	k.m[id] = idleEntry[T]{v: v, used: now}
	k.mu.Unlock()
	for _, v := range ending {
		k.end(v)
	}
}

// drop releases id's entry, if any.
func (k *idleSet[T]) drop(id string) {
	var zero T
	if v := k.take(id); v != zero {
		k.end(v)
	}
}

// dropAll releases every entry.
func (k *idleSet[T]) dropAll() {
	k.mu.Lock()
	m := k.m
	k.m = nil
	k.mu.Unlock()
	for _, e := range m {
		k.end(e.v)
	}
}

func (k *idleSet[T]) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// reopen takes id's kept file when it is still the file at path, with its
// FileInfo; otherwise it closes it and returns nil.
func (s *Store) reopen(id, path string) (File, iofs.FileInfo) {
	f := s.kept.take(id)
	if f == nil {
		return nil, nil
	}
	sf, _ := s.fs.(SameFiler) // keep stores files only on such an FS
	fi, err := f.Stat()
	at, aerr := s.fs.Stat(path)
	if err != nil || aerr != nil || !sf.SameFile(fi, at) {
		// Committed, removed or replaced by another replica: open the path.
		f.Close()
		return nil, nil
	}
	return f, fi
}

// keep holds f open for upload id's next Append or Commit where the FS can tell
// it is still the file at the upload's path (SameFiler), else closes it.
func (s *Store) keep(id string, f File) {
	if _, ok := s.fs.(SameFiler); !ok {
		f.Close()
		return
	}
	s.kept.keep(id, f)
}
