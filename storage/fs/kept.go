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
// soon.
const (
	keptMax  = 64
	keptIdle = time.Minute
)

type keptFile struct {
	f    File
	used time.Time
}

// keptFiles maps upload IDs to their open data files. An entry is removed
// while in use, so no two Appends ever share a descriptor.
type keptFiles struct {
	mu sync.Mutex
	m  map[string]keptFile
}

// take removes and returns id's kept file, or nil.
func (k *keptFiles) take(id string) File {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[id]
	if !ok {
		return nil
	}
	delete(k.m, id)
	return e.f
}

// keep holds f open for id's next Append or Commit.
func (k *keptFiles) keep(id string, f File) {
	now := time.Now()
	var closing []File
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]keptFile)
	}
	if old, ok := k.m[id]; ok {
		closing = append(closing, old.f) // a concurrent Append of the same session kept one first
	}
	oldest := ""
	for oid, e := range k.m {
		switch {
		case oid == id:
		case now.Sub(e.used) > keptIdle:
			closing = append(closing, e.f)
			delete(k.m, oid)
		case oldest == "" || e.used.Before(k.m[oldest].used):
			oldest = oid
		}
	}
	if _, ok := k.m[id]; !ok && len(k.m) >= keptMax {
		closing = append(closing, k.m[oldest].f)
		delete(k.m, oldest)
	}
	k.m[id] = keptFile{f: f, used: now}
	k.mu.Unlock()
	for _, f := range closing {
		f.Close()
	}
}

// drop closes id's kept file, if any.
func (k *keptFiles) drop(id string) {
	if f := k.take(id); f != nil {
		f.Close()
	}
}

func (k *keptFiles) len() int {
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
