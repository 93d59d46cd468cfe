package blobtest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func lifecycleCases() []testCase {
	return []testCase{
		{"abort/discards-data", testAbortDiscards},
		{"abort/unknown-upload", testAbortUnknown},
		{"abort/leaves-other-uploads", testAbortIsolated},
		{"delete/then-absent", testDelete},
		{"delete/missing", testDeleteMissing},
		{"delete/then-push-again", testDeleteRepush},
		{"upload/not-visible-before-commit", testNotVisibleBeforeCommit},
	}
}

// testAbortDiscards: after Abort the data is gone: Commit and Append fail,
// and nothing is published.
func testAbortDiscards(t *testing.T, s storage.BlobStore) {
	data := randomBytes(mib+9, 600)
	ss := start(t, s, digest.SHA256)
	ss.append(data, nil)
	if err := s.Abort(t.Context(), ss.u); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(t.Context(), clone(ss.u), d); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	requireAbsent(t, s, d)
	if err := s.Append(t.Context(), clone(ss.u), bytes.NewReader([]byte("more"))); err == nil {
		t.Fatal("Append after Abort succeeded")
	}
	if err := s.Abort(t.Context(), ss.u); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	requireAbsent(t, s, d)
}

// testAbortUnknown: aborting what the store never saw is not an error.
func testAbortUnknown(t *testing.T, s storage.BlobStore) {
	for _, u := range []*storage.Upload{
		newUpload(digest.SHA256),
		{ID: newID(), Repo: "blobtest/repo", Algorithm: digest.SHA256, Offset: 123, HashState: []byte("junk")},
	} {
		if err := s.Abort(t.Context(), u); err != nil {
			t.Fatalf("Abort of an unknown upload: %v", err)
		}
	}
	// A store whose Abort succeeds because it is broken would also let the
	// next push fail: check the store still works.
	requireBlob(t, s, push(t, s, []byte("{}")), []byte("{}"))
}

// testAbortIsolated: aborting one upload leaves another intact.
func testAbortIsolated(t *testing.T, s storage.BlobStore) {
	keep, drop := start(t, s, digest.SHA256), start(t, s, digest.SHA256)
	keep.append([]byte("keep me"), nil)
	drop.append([]byte("drop me"), nil)
	if err := s.Abort(t.Context(), drop.u); err != nil {
		t.Fatal(err)
	}
	keep.append([]byte(", please"), nil)
	requireBlob(t, s, keep.commit(digest.SHA256), []byte("keep me, please"))
}

func testDelete(t *testing.T, s storage.BlobStore) {
	a, b := randomBytes(mib, 601), []byte("other")
	da, db := push(t, s, a), push(t, s, b)
	if err := s.Delete(t.Context(), da); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	requireAbsent(t, s, da)
	if err := s.Delete(t.Context(), da); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	requireBlob(t, s, db, b)
}

func testDeleteMissing(t *testing.T, s storage.BlobStore) {
	for _, d := range []digest.Digest{
		digest.FromBytes(digest.SHA256, []byte("never pushed")),
		digest.FromBytes(digest.SHA512, []byte("never pushed")),
	} {
		if err := s.Delete(t.Context(), d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Delete(%s) = %v, want ErrNotFound", d, err)
		}
	}
	// The sha512 twin of a sha256 blob is another blob.
	data := []byte("pushed as sha256")
	d := push(t, s, data)
	if err := s.Delete(t.Context(), digest.FromBytes(digest.SHA512, data)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Delete of the sha512 twin = %v, want ErrNotFound", err)
	}
	requireBlob(t, s, d, data)
}

// testDeleteRepush: a deleted blob can be pushed again (GC races with pushes).
func testDeleteRepush(t *testing.T, s storage.BlobStore) {
	data := randomBytes(300*kib, 602)
	d := push(t, s, data)
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if again := push(t, s, data); again != d {
		t.Fatalf("re-push committed %s, want %s", again, d)
	}
	requireBlob(t, s, d, data)
}

// testNotVisibleBeforeCommit: all the bytes are in, but until Commit the
// blob does not exist.
func testNotVisibleBeforeCommit(t *testing.T, s storage.BlobStore) {
	data := randomBytes(2*mib, 603)
	ss := start(t, s, digest.SHA256)
	ss.append(data[:mib], nil)
	ss.append(data[mib:], nil)
	d := digest.FromBytes(digest.SHA256, data)
	requireAbsent(t, s, d)
	requireAbsent(t, s, digest.FromBytes(digest.SHA256, data[:mib]))
	ss.commit(digest.SHA256)
	requireBlob(t, s, d, data)
}
