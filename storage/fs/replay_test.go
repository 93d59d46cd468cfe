package fs_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// A Commit replayed after a crash between publishing the blob and the
// registry's record of it, when the recorded state lags the last chunk
// (its hash ran behind the 202, and nothing is written before Commit):
// the blob's tail hashed on from the state and the chunk's CRC-32C prove
// it (behind.go, proveCommitted).

// published is a session of data in two Appends committed as d by one
// process: stored is what the metadata store still holds of it, m the
// disk the next process finds.
type published struct {
	data   []byte
	d      digest.Digest
	m      *memFS
	stored *storage.Upload
}

func publish(t *testing.T, data []byte) *published {
	t.Helper()
	p := &published{data: data, d: digest.FromBytes(digest.SHA256, data), m: newMemFS()}
	s := memStore(t, p.m)
	u := newUpload(digest.SHA256)
	for _, chunk := range [][]byte{data[:1<<20], data[1<<20:]} {
		if err := s.Append(t.Context(), u, bytes.NewReader(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.HashedUpTo(u); n != 1<<20 {
		t.Fatalf("recorded state covers %d bytes, want 1 MiB: the test needs it behind the last chunk", n)
	}
	p.stored = clone(u)
	if err := s.Commit(t.Context(), u, p.d); err != nil {
		t.Fatal(err)
	}
	return p
}

// replay is the retried closing PUT's Commit in a new process.
func (p *published) replay(t *testing.T, u *storage.Upload, d digest.Digest) error {
	t.Helper()
	return memStore(t, p.m).Commit(t.Context(), u, d)
}

// TestReplayProvesBlobBehindLaggingState: the replay finishes the session
// (201 from the registry) and the blob is the bytes sent.
func TestReplayProvesBlobBehindLaggingState(t *testing.T) {
	p := publish(t, randomData(2<<20+77, 40))
	if err := p.replay(t, clone(p.stored), p.d); err != nil {
		t.Fatalf("replayed Commit: %v", err)
	}
	requireBlob(t, memStore(t, p.m), p.d, p.data)
}

// TestReplayRefusesWhatIsNotTheSession: the replay never answers as the
// session's blob a published file whose bytes changed (tail or head), a
// record whose CRC is not the tail's, or another blob that shares the
// session's head (all that a lagging state proves by itself).
func TestReplayRefusesWhatIsNotTheSession(t *testing.T) {
	data := randomData(2<<20+77, 41)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p *published) (*storage.Upload, digest.Digest)
	}{
		{"published tail changed", func(t *testing.T, p *published) (*storage.Upload, digest.Digest) {
			writeAt(t, p.m, blobPath(p.d), 1<<20+9, []byte{^data[1<<20+9]})
			return clone(p.stored), p.d
		}},
		{"published head changed", func(t *testing.T, p *published) (*storage.Upload, digest.Digest) {
			writeAt(t, p.m, blobPath(p.d), 5, []byte{^data[5]})
			return clone(p.stored), p.d
		}},
		{"recorded CRC wrong", func(t *testing.T, p *published) (*storage.Upload, digest.Digest) {
			u := clone(p.stored)
			f := strings.Fields(string(u.Backend))
			crc, err := strconv.ParseUint(f[len(f)-1], 10, 32)
			if err != nil {
				t.Fatalf("mark %q: %v", u.Backend, err)
			}
			f[len(f)-1] = strconv.FormatUint(crc^1, 10)
			u.Backend = []byte(strings.Join(f, " "))
			return u, p.d
		}},
		{"other blob, same head", func(t *testing.T, p *published) (*storage.Upload, digest.Digest) {
			other := bytes.Clone(data)
			other[len(other)-1] ^= 1
			return clone(p.stored), pushed(t, p.m, other)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := publish(t, data)
			u, d := tc.change(t, p)
			if err := p.replay(t, u, d); !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("replayed Commit as %s = %v, want ErrDigestMismatch", d, err)
			}
		})
	}
}

// pushed commits data in one Append on m and returns its digest.
func pushed(t *testing.T, m *memFS, data []byte) digest.Digest {
	t.Helper()
	s := memStore(t, m)
	u := newUpload(digest.SHA256)
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Append(t.Context(), u, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReplayInProcessKnowsTheWholeHash: in the process that published
// the session, a replay claiming bytes that are not the session's is
// proved wrong from the session's own digest (ErrDigestMismatch, a 400),
// as a recorded state of all the bytes would; in another process, with
// no blob of that digest to read, it is ErrNotFound.
func TestReplayInProcessKnowsTheWholeHash(t *testing.T) {
	data := randomData(2<<20+5, 42)
	d := digest.FromBytes(digest.SHA256, data)
	m := newMemFS()
	s := memStore(t, m)
	u := newUpload(digest.SHA256)
	for _, chunk := range [][]byte{data[:1<<20], data[1<<20:]} {
		if err := s.Append(t.Context(), u, bytes.NewReader(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	stored := clone(u)
	if err := s.Commit(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	wrong := digest.FromBytes(digest.SHA256, data[1:])
	if err := s.Commit(t.Context(), clone(stored), wrong); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Fatalf("replay in the publishing process as %s = %v, want ErrDigestMismatch", wrong, err)
	}
	if err := memStore(t, m).Commit(t.Context(), clone(stored), wrong); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("replay in another process as %s = %v, want ErrNotFound", wrong, err)
	}
	if err := s.Commit(t.Context(), clone(stored), d); err != nil {
		t.Fatalf("replay as %s: %v", d, err)
	}
	requireAbsent(t, s, wrong)
}
