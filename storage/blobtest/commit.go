package blobtest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func commitCases() []testCase {
	cases := []testCase{
		{"commit/existing-blob", testCommitExisting},
		{"commit/mismatch-against-existing-blob", testMismatchExisting},
		{"commit/older-copy-of-upload", testCommitOlderCopy},
		{"commit/cancelled-context", testCommitCancelled},
		{"commit/upload-gone-after-commit", testUploadGoneAfterCommit},
	}
	cases = append(cases, commitReplayCases()...)
	return append(cases, mismatchCases()...)
}

// mismatchCases: a wrong digest is ErrDigestMismatch, the blob is visible
// under neither the claimed nor the real digest, and the data is discarded,
// so committing it again under the right digest fails too.
func mismatchCases() []testCase {
	table := []struct {
		name   string
		stream string
		size   int
		claim  func(data []byte) digest.Digest
	}{
		{"sha256-other-content", digest.SHA256, 2*mib + 1, func(b []byte) digest.Digest {
			return digest.FromBytes(digest.SHA256, append(bytes.Clone(b), 0))
		}},
		{"sha256-prefix", digest.SHA256, 4096, func(b []byte) digest.Digest {
			return digest.FromBytes(digest.SHA256, b[:len(b)-1])
		}},
		{"sha512-claim-on-sha256-stream", digest.SHA256, mib + 7, func(b []byte) digest.Digest {
			return digest.FromBytes(digest.SHA512, b[1:])
		}},
		{"sha512-stream", digest.SHA512, 100, func(b []byte) digest.Digest {
			return digest.FromBytes(digest.SHA512, []byte("x"))
		}},
		{"empty-upload", digest.SHA256, 0, func([]byte) digest.Digest {
			return digest.FromBytes(digest.SHA256, []byte("{}"))
		}},
	}
	var cases []testCase
	for i, tc := range table {
		cases = append(cases, testCase{"commit/mismatch/" + tc.name, func(t *testing.T, s storage.BlobStore) {
			data := randomBytes(tc.size, 200+uint64(i))
			ss := start(t, s, tc.stream)
			if tc.size > 0 {
				ss.append(data, nil)
			}
			claim := tc.claim(data)
			err := s.Commit(t.Context(), ss.u, claim)
			if !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("Commit(%s) of other data = %v, want ErrDigestMismatch", claim, err)
			}
			requireAbsent(t, s, claim)
			real256, real512 := digest.FromBytes(digest.SHA256, data), digest.FromBytes(digest.SHA512, data)
			requireAbsent(t, s, real256)
			requireAbsent(t, s, real512)
			if tc.size == 0 {
				return // nothing was stored that could be discarded
			}
			if err := s.Commit(t.Context(), ss.u, digest.FromBytes(tc.stream, data)); err == nil {
				t.Fatal("Commit with the right digest after a mismatch succeeded; the data should be discarded")
			}
			requireAbsent(t, s, real256)
			requireAbsent(t, s, real512)
		}})
	}
	return cases
}

// testCommitExisting: committing content that is already a blob succeeds and
// leaves the blob as it was, for one-shot and chunked uploads.
func testCommitExisting(t *testing.T, s storage.BlobStore) {
	data := randomBytes(mib+11, 210)
	d := push(t, s, data)
	if again := push(t, s, data); again != d {
		t.Fatalf("second push committed %s, want %s", again, d)
	}
	ss := start(t, s, digest.SHA256)
	ss.append(data[:5], nil)
	ss.append(data[5:], nil)
	ss.commit(digest.SHA256)
	requireBlob(t, s, d, data)
	// The empty blob twice, the second time without any Append.
	empty := push(t, s, nil)
	if err := s.Commit(t.Context(), newUpload(digest.SHA256), empty); err != nil {
		t.Fatalf("second commit of the empty blob: %v", err)
	}
	requireBlob(t, s, empty, nil)
}

// testMismatchExisting: a blob that exists does not excuse verification;
// otherwise a client could claim any digest it has only heard of.
func testMismatchExisting(t *testing.T, s storage.BlobStore) {
	data := randomBytes(64*kib, 211)
	d := push(t, s, data)
	ss := start(t, s, digest.SHA256)
	ss.append([]byte("not the blob"), nil)
	if err := s.Commit(t.Context(), ss.u, d); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Fatalf("Commit(%s) of other data while the blob exists = %v, want ErrDigestMismatch", d, err)
	}
	requireBlob(t, s, d, data)
	requireAbsent(t, s, digest.FromBytes(digest.SHA256, []byte("not the blob")))
}

// testCommitOlderCopy: Commit publishes exactly the first u.Offset bytes,
// even when an Append the registry never recorded wrote more.
func testCommitOlderCopy(t *testing.T, s storage.BlobStore) {
	data := randomBytes(3*mib, 212)
	ss := start(t, s, digest.SHA256)
	ss.append(data[:mib+1], nil)
	old := clone(ss.u)
	ss.append(data[mib+1:], nil)
	d := digest.FromBytes(digest.SHA256, data[:mib+1])
	if err := s.Commit(t.Context(), old, d); err != nil {
		t.Fatalf("Commit of the recorded %d bytes: %v", old.Offset, err)
	}
	requireBlob(t, s, d, data[:mib+1])
	requireAbsent(t, s, digest.FromBytes(digest.SHA256, data))
}

// testCommitCancelled: a cancelled Commit publishes nothing and keeps the
// upload, so the registry can retry it.
func testCommitCancelled(t *testing.T, s storage.BlobStore) {
	data := randomBytes(mib+5, 213)
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(cancelled(t), ss.u, d); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	requireAbsent(t, s, d)
	ss.commit(digest.SHA256)
	requireBlob(t, s, d, data)
}

// testUploadGoneAfterCommit: after Commit the upload cannot be continued,
// and aborting it does not touch the blob.
func testUploadGoneAfterCommit(t *testing.T, s storage.BlobStore) {
	data := randomBytes(100*kib, 214)
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	d := ss.commit(digest.SHA256)
	after := clone(ss.u)
	if err := s.Append(t.Context(), ss.u, bytes.NewReader([]byte("more"))); err == nil {
		t.Fatal("Append to a committed upload succeeded")
	}
	requireSameUpload(t, ss.u, after)
	if err := s.Abort(t.Context(), ss.u); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	requireBlob(t, s, d, data)
}

// commitReplayCases: the registry publishes a blob (Commit) before it records
// the blob and drops the session in the metadata store. A crash between
// the two leaves a session that still names the upload, whose data Commit
// already consumed. Finishing that session again must succeed when the
// blob provably holds the session's bytes, and fail cleanly (never publish
// anything) when it does not.
func commitReplayCases() []testCase {
	var cases []testCase
	for _, tc := range []struct {
		name   string
		size   int
		chunks int
		final  string // algorithm of the final digest; the session streams sha256
	}{
		{"small", 100, 1, digest.SHA256},
		{"chunked-across-parts", 3*mib + 7, 3, digest.SHA256},
		{"other-algorithm", 2*mib + 3, 2, digest.SHA512},
		{"other-algorithm-small", 77, 1, digest.SHA512},
	} {
		cases = append(cases, testCase{"commit/replayed-after-publish/" + tc.name, func(t *testing.T, s storage.BlobStore) {
			data := randomBytes(tc.size, 230+uint64(tc.size))
			ss := start(t, s, digest.SHA256)
			step := (len(data) + tc.chunks - 1) / tc.chunks
			for off := 0; off < len(data); off += step {
				ss.append(data[off:min(off+step, len(data))], nil)
			}
			stored := clone(ss.u) // what the metadata store still holds after the crash
			d := ss.commit(tc.final)
			if err := s.Commit(t.Context(), clone(stored), d); err != nil {
				t.Fatalf("Commit of the session again after it published %s: %v", d, err)
			}
			requireBlob(t, s, d, data)
			// Another claim for the same session is refused: its bytes are d.
			other := digest.FromBytes(tc.final, append(bytes.Clone(data), 1))
			if err := s.Commit(t.Context(), clone(stored), other); !errors.Is(err, storage.ErrDigestMismatch) && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Commit of the published session as %s = %v, want ErrDigestMismatch or ErrNotFound", other, err)
			}
			requireAbsent(t, s, other)
			requireBlob(t, s, d, data)
		}})
	}
	cases = append(cases,
		testCase{"commit/replayed-after-publish/claim-of-other-existing-blob", testReplayOtherBlob},
		testCase{"commit/data-gone-blob-absent", testDataGoneBlobAbsent},
	)
	return cases
}

// testReplayOtherBlob: a session whose data is gone cannot be finished as
// a blob that exists but holds other bytes.
func testReplayOtherBlob(t *testing.T, s storage.BlobStore) {
	data := randomBytes(64*kib, 240)
	other := push(t, s, randomBytes(64*kib, 241))
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	stored := clone(ss.u)
	ss.commit(digest.SHA256)
	for _, d := range []digest.Digest{other, digest.FromBytes(digest.SHA512, randomBytes(64*kib, 241))} {
		if d.Algorithm() == digest.SHA512 {
			ss2 := start(t, s, digest.SHA256)
			ss2.append(randomBytes(64*kib, 241), nil)
			ss2.commit(digest.SHA512)
		}
		if err := s.Commit(t.Context(), clone(stored), d); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Fatalf("Commit of a published session as existing blob %s = %v, want ErrDigestMismatch", d, err)
		}
	}
	requireBlob(t, s, other, randomBytes(64*kib, 241))
}

// testDataGoneBlobAbsent: a session whose data was aborted (not
// published) commits nothing and says the upload is gone.
func testDataGoneBlobAbsent(t *testing.T, s storage.BlobStore) {
	data := randomBytes(mib+9, 242)
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	if err := s.Abort(t.Context(), ss.u); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(t.Context(), ss.u, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Commit of an aborted upload = %v, want ErrNotFound", err)
	}
	requireAbsent(t, s, d)
}
