package blobtest

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func walkCases() []testCase {
	return []testCase{
		{"walk/committed-blobs-only", testWalkBlobs},
		{"walk/stops-on-error", testWalkStops},
	}
}

// walker is s's BlobWalker; the test is skipped for a store without the
// ability (or whose test filesystem lacks what it needs).
func walker(t *testing.T, s storage.BlobStore) storage.BlobWalker {
	t.Helper()
	w, ok := s.(storage.BlobWalker)
	if !ok {
		t.Skip("the store is not a storage.BlobWalker")
	}
	if err := w.WalkBlobs(t.Context(), func(digest.Digest, int64, time.Time) error { return nil }); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("walking unsupported here: %v", err)
	}
	return w
}

// walked is what a walk of w reports, by digest.
func walked(t *testing.T, w storage.BlobWalker) map[digest.Digest]int64 {
	t.Helper()
	got := map[digest.Digest]int64{}
	err := w.WalkBlobs(t.Context(), func(d digest.Digest, size int64, written time.Time) error {
		if _, dup := got[d]; dup {
			t.Errorf("%s walked twice", d)
		}
		if written.IsZero() || time.Since(written) > time.Hour || time.Until(written) > time.Hour {
			t.Errorf("%s written at %v, not about now", d, written)
		}
		got[d] = size
		return nil
	})
	if err != nil {
		t.Fatalf("WalkBlobs: %v", err)
	}
	return got
}

// testWalkBlobs: every committed blob (both algorithms, the empty one
// included) with its size; an upload in progress and a deleted blob are
// not blobs.
func testWalkBlobs(t *testing.T, s storage.BlobStore) {
	w := walker(t, s)
	if got := walked(t, w); len(got) != 0 {
		t.Fatalf("an empty store walks %v", got)
	}
	want := map[digest.Digest]int64{}
	for i, n := range []int{0, 1, kib + 7} {
		data := randomBytes(n, uint64(900+i))
		want[push(t, s, data)] = int64(n)
	}
	ss := start(t, s, digest.SHA512)
	ss.append(randomBytes(kib, 910), nil)
	want[ss.commit(digest.SHA512)] = kib
	gone := push(t, s, randomBytes(3*kib, 911))
	if err := s.Delete(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	start(t, s, digest.SHA256).append(randomBytes(2*kib, 912), nil) // in progress
	if got := walked(t, w); !maps.Equal(got, want) {
		t.Fatalf("walked %v, want %v", got, want)
	}
}

// testWalkStops: fn's error ends the walk and is what it returns.
func testWalkStops(t *testing.T, s storage.BlobStore) {
	w := walker(t, s)
	for i := range 3 {
		push(t, s, randomBytes(10+i, uint64(920+i)))
	}
	stop := errors.New("enough")
	calls := 0
	err := w.WalkBlobs(t.Context(), func(digest.Digest, int64, time.Time) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("WalkBlobs = %v after %d calls, want fn's error after 1", err, calls)
	}
}
