package blobtest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func readCases() []testCase {
	return []testCase{
		{"read/unknown-digest", testUnknownDigest},
		{"read/offsets", testOffsets},
		{"read/offset-outside-blob", testOffsetOutside},
		{"read/independent-readers", testIndependentReaders},
	}
}

// testUnknownDigest: absent blobs are ErrNotFound, in an empty store and
// next to a blob whose digest differs only in the last hex digit.
func testUnknownDigest(t *testing.T, s storage.BlobStore) {
	for _, d := range []digest.Digest{
		digest.FromBytes(digest.SHA256, []byte("absent")),
		digest.FromBytes(digest.SHA512, []byte("absent")),
		digest.FromBytes(digest.SHA256, nil),
	} {
		requireAbsent(t, s, d)
	}
	data := []byte("present")
	d := push(t, s, data)
	near := []byte(d)
	if near[len(near)-1] == '0' {
		near[len(near)-1] = '1'
	} else {
		near[len(near)-1] = '0'
	}
	requireAbsent(t, s, digest.Digest(near))
	// Same bytes, other algorithm: a different, absent blob.
	requireAbsent(t, s, digest.FromBytes(digest.SHA512, data))
	requireBlob(t, s, d, data)
}

func testOffsets(t *testing.T, s storage.BlobStore) {
	data := randomBytes(3*mib+17, 101)
	d := push(t, s, data)
	size := int64(len(data))
	for _, off := range []int64{0, 1, size / 2, mib, size - 1, size} {
		requireBytes(t, readBlob(t, s, d, off), data[off:])
	}
}

// testOffsetOutside: offsets outside the blob are errors, at Open or at the
// first Read, and never a silent success with data.
func testOffsetOutside(t *testing.T, s storage.BlobStore) {
	data := []byte("0123456789")
	d := push(t, s, data)
	for _, off := range []int64{-1, int64(len(data)) + 1, 1 << 40} {
		rc, err := s.Open(t.Context(), d, off)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Open(offset %d) = %v; the blob exists, so not ErrNotFound", off, err)
			}
			continue
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err == nil && len(b) > 0 {
			t.Fatalf("Open(offset %d) read %q, want an error or nothing", off, b)
		}
		if err == nil && off < 0 {
			t.Fatalf("Open(offset %d) succeeded", off)
		}
	}
	requireBlob(t, s, d, data)
}

// testIndependentReaders: two readers of one blob keep their own positions,
// and closing one leaves the other working.
func testIndependentReaders(t *testing.T, s storage.BlobStore) {
	data := randomBytes(2*mib+9, 102)
	d := push(t, s, data)
	a, err := s.Open(t.Context(), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := s.Open(t.Context(), d, mib)
	if err != nil {
		t.Fatal(err)
	}
	var gotA, gotB bytes.Buffer
	bufA, bufB := make([]byte, 4093), make([]byte, 7919)
	for i := 0; i < 50; i++ {
		n, err := io.ReadFull(a, bufA)
		gotA.Write(bufA[:n])
		if err != nil {
			t.Fatalf("reader a: %v", err)
		}
		n, err = io.ReadFull(b, bufB)
		gotB.Write(bufB[:n])
		if err != nil {
			t.Fatalf("reader b: %v", err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
	rest, err := io.ReadAll(a)
	if err != nil {
		t.Fatalf("reader a after b closed: %v", err)
	}
	gotA.Write(rest)
	requireBytes(t, gotA.Bytes(), data)
	requireBytes(t, gotB.Bytes(), data[mib:mib+gotB.Len()])
}
