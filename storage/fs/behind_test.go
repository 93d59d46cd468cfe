package fs_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
)

// The hash of a chunk runs behind Append (behind.go). These tests hold it
// (fs.HoldHashes) so that it is still running when Append returns.

// lagging is an upload of data in two Appends, cut at 1 MiB and at end,
// the second one's hash held until release: it still runs.
type lagging struct {
	data    []byte
	d       digest.Digest
	m       *memFS
	s       *fs.Store
	u       *storage.Upload
	release func()
}

func newLagging(t *testing.T, data []byte, end int) *lagging {
	t.Helper()
	l := &lagging{data: data, d: digest.FromBytes(digest.SHA256, data), m: newMemFS(), u: newUpload(digest.SHA256)}
	l.s = memStore(t, l.m)
	if err := l.s.Append(t.Context(), l.u, bytes.NewReader(data[:1<<20])); err != nil {
		t.Fatal(err)
	}
	l.release = sync.OnceFunc(fs.HoldHashes(l.s))
	t.Cleanup(l.release)
	if err := l.s.Append(t.Context(), l.u, bytes.NewReader(data[1<<20:end])); err != nil {
		t.Fatal(err)
	}
	requireLags(t, l.u, data, 1<<20)
	return l
}

// requireLags fails unless u's recorded state covers exactly the first
// n bytes of data: the chunk after them is not hashed yet.
func requireLags(t *testing.T, u *storage.Upload, data []byte, n int) {
	t.Helper()
	h, err := digest.RestoreHash(digest.SHA256, u.HashState)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digest.FromHash(digest.SHA256, h), digest.FromBytes(digest.SHA256, data[:n]); got != want {
		t.Fatalf("recorded hash state is %s, want %s (the first %d of %d bytes): Append waited for the hash", got, want, n, u.Offset)
	}
}

// TestKillWhileHashLags: a process killed right after Append returned,
// its hash still running, leaves a record another process resumes from:
// it hashes the chunk the state does not cover from the file, and the
// blob gets the right digest.
func TestKillWhileHashLags(t *testing.T) {
	l := newLagging(t, randomData(3<<20+5, 7), 2<<20)
	// The kill: a new process on the same kernel, the old one's hash never
	// finishing.
	s2 := memStore(t, l.m)
	if err := s2.Append(t.Context(), l.u, bytes.NewReader(l.data[2<<20:])); err != nil {
		t.Fatal(err)
	}
	if err := s2.Commit(t.Context(), l.u, l.d); err != nil {
		t.Fatalf("Commit after the kill: %v", err)
	}
	requireBlob(t, s2, l.d, l.data)
}

// TestCorruptTailNeverPublished: bytes of the data file the recorded state
// does not cover, changed before another process resumes, are hashed from
// the file: the blob is refused (ErrDigestMismatch), never published with
// them. Before the hash ran behind, the state covered them and Commit
// trusted it.
func TestCorruptTailNeverPublished(t *testing.T) {
	data := randomData(2<<20+3, 8)
	l := newLagging(t, data, len(data))
	writeUpload(t, l.m, l.u.ID, 1<<20+100, []byte("garbage"))
	s2 := memStore(t, l.m)
	if err := s2.Commit(t.Context(), l.u, l.d); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Fatalf("Commit of a corrupted tail = %v, want ErrDigestMismatch", err)
	}
	requireAbsent(t, s2, l.d)
}

// TestNextRequestWaitsForHash: the next Append of the session, and its
// Commit, continue the hash still running (one hasher per upload): they
// finish only once it does, and the blob is the bytes of every chunk.
func TestNextRequestWaitsForHash(t *testing.T) {
	data := randomData(2<<20+11, 9)
	d := digest.FromBytes(digest.SHA256, data)
	s := memStore(t, newMemFS())
	release := fs.HoldHashes(s)
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(data[:1<<20])); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		err := s.Append(t.Context(), u, bytes.NewReader(data[1<<20:]))
		if err == nil {
			err = s.Commit(t.Context(), u, d)
		}
		done <- err
	}()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	requireBlob(t, s, d, data)
	if n := fs.RunningHashes(s); n != 0 {
		t.Fatalf("%d hashes kept after the Commit", n)
	}
}

// TestAbortAndCloseStopHashes: Abort ends the upload's hash, Close every
// hash and kept file: nothing runs after them.
func TestAbortAndCloseStopHashes(t *testing.T) {
	s := memStore(t, newMemFS())
	release := fs.HoldHashes(s)
	var ups []*storage.Upload
	for i := range 3 {
		u := newUpload(digest.SHA256)
		if err := s.Append(t.Context(), u, bytes.NewReader(randomData(300<<10, uint64(20+i)))); err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
	}
	if n := fs.RunningHashes(s); n != 3 {
		t.Fatalf("%d hashes running behind 3 Appends, want 3", n)
	}
	release() // a held hash would hold Abort and Close up
	if err := s.Abort(t.Context(), ups[0]); err != nil {
		t.Fatal(err)
	}
	if n := fs.RunningHashes(s); n != 2 {
		t.Fatalf("%d hashes after aborting one of 3, want 2", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, k := fs.RunningHashes(s), fs.KeptFiles(s); n != 0 || k != 0 {
		t.Fatalf("after Close: %d hashes, %d kept files, want none", n, k)
	}
}

// TestMachineRestartChecksUnhashedChunk: after a restart of the machine,
// the unsynced chunk the recorded state does not cover is checked with
// its CRC: intact, the upload goes on; changed, it ends (ErrUploadLost).
func TestMachineRestartChecksUnhashedChunk(t *testing.T) {
	for _, garble := range []bool{false, true} {
		l := newLagging(t, randomData(2<<20+1, 10), 2<<20)
		// What the disk holds after the restart: the chunk, intact or not.
		content := bytes.Clone(l.data[:2<<20])
		if garble {
			content[1<<20+5] ^= 1
		}
		writeUpload(t, l.m, l.u.ID, 0, content)
		l.release()
		l.m.Crash()
		s := memStore(t, l.m)
		err := s.Append(t.Context(), l.u, bytes.NewReader(l.data[2<<20:]))
		if err == nil {
			err = s.Commit(t.Context(), l.u, l.d)
		}
		switch {
		case !garble && err != nil:
			t.Fatalf("resume of an intact chunk: %v", err)
		case garble && !errors.Is(err, storage.ErrUploadLost):
			t.Fatalf("resume of a changed chunk = %v, want ErrUploadLost", err)
		case garble:
			requireAbsent(t, s, l.d)
		default:
			requireBlob(t, s, l.d, l.data)
		}
	}
}

// TestHashBudgetSharedByRuns: the next Append of an upload, while the
// hash of the last one still runs, holds no more buffers than one Append
// would (inFlight, and the one its reader fills): the runs share one
// budget. Before, the next Append's reader queued its own inFlight
// buffers behind the lagging hash, and an upload held up to twice as many
// (peak RSS on disk +6 MiB).
func TestHashBudgetSharedByRuns(t *testing.T) {
	const buf = 256 << 10
	data := randomData(20*buf, 11)
	s := memStore(t, newMemFS())
	release := sync.OnceFunc(fs.HoldHashes(s))
	defer release()
	base := fs.ChunksInUse()
	u := newUpload(digest.SHA256)
	if err := s.Append(t.Context(), u, bytes.NewReader(data[:12*buf])); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	src := &sampling{r: bytes.NewReader(data[12*buf:]), sample: func() {
		if n := fs.ChunksInUse() - base; n > peak.Load() {
			peak.Store(n)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- s.Append(t.Context(), u, src) }()
	// The held hashes now stop the second Append at its budget (or, when
	// it has none, it returns with all its buffers queued): release them
	// then, and the Append ends either way.
	for fs.ChunksInUse()-base < fs.BuffersPerUpload+1 && len(done) == 0 {
		runtime.Gosched()
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(t.Context(), u, digest.FromBytes(digest.SHA256, data)); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > fs.BuffersPerUpload+1 {
		t.Fatalf("the upload held %d buffers at once, want at most %d", p, fs.BuffersPerUpload+1)
	}
}

// sampling is a reader that calls sample before each Read.
type sampling struct {
	r      io.Reader
	sample func()
}

func (s *sampling) Read(p []byte) (int, error) {
	s.sample()
	return s.r.Read(p)
}
