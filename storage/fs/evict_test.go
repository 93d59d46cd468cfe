package fs_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage/fs"
)

// TestManySessionsAtOnce: more chunked sessions at once than the store
// keeps files and hashes for (64): a session's Append evicts another's
// idle file and running hash while that session's next request may come
// any moment, on another goroutine. Each blob still ends up with exactly
// its bytes, and nothing is kept once they are all committed.
func TestManySessionsAtOnce(t *testing.T) {
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const sessions = 80
	// Every session appends its first chunk before any appends a second,
	// so all 80 are open and idle together at least once.
	var firsts sync.WaitGroup
	firsts.Add(sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			data := randomData(64<<10+i*7, uint64(900+i))
			u := newUpload(digest.SHA256)
			cuts := []int{0, len(data) / 3, len(data) / 2, len(data)}
			for c := 1; c < len(cuts); c++ {
				err := s.Append(t.Context(), u, bytes.NewReader(data[cuts[c-1]:cuts[c]]))
				if c == 1 {
					firsts.Done()
					firsts.Wait()
					if n, r := fs.KeptFiles(s), fs.RunningHashes(s); n > 64 || r > 64 {
						t.Errorf("with %d sessions idle: %d kept files, %d hashes; want at most 64 each", sessions, n, r)
					}
				}
				if err != nil {
					t.Errorf("session %d, chunk %d: %v", i, c, err)
					return
				}
			}
			d := digest.FromBytes(digest.SHA256, data)
			if err := s.Commit(t.Context(), u, d); err != nil {
				t.Errorf("session %d: commit: %v", i, err)
				return
			}
			requireBlobErr(t, s, d, data, i)
		})
	}
	wg.Wait()
	if n, r := fs.KeptFiles(s), fs.RunningHashes(s); n != 0 || r != 0 {
		t.Errorf("after every commit: %d kept files, %d hashes, want none", n, r)
	}
}

// requireBlobErr is requireBlob for a goroutine: it reports, never stops.
func requireBlobErr(t *testing.T, s *fs.Store, d digest.Digest, want []byte, i int) {
	rc, err := s.Open(t.Context(), d, 0)
	if err != nil {
		t.Errorf("session %d: open %s: %v", i, d, err)
		return
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Errorf("session %d: blob %s read %d bytes (%v), want its %d", i, d, got.Len(), err, len(want))
	}
}
