package registry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// remainingSeen records what the body handed to Append announces
// (storage.Remainder) before and after it is read.
type remainingSeen struct {
	storage.BlobStore
	before, after []int64
}

func (s *remainingSeen) Append(ctx context.Context, u *storage.Upload, r io.Reader) error {
	s.before = append(s.before, storage.Remaining(r))
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.after = append(s.after, storage.Remaining(r))
	return s.BlobStore.Append(ctx, u, bytes.NewReader(b))
}

// TestAppendBodyAnnouncesLength: the body a PATCH or a
// monolithic POST hands to the blob store says how many bytes are still
// to come (its Content-Length), so a store may send them on before they
// are all in (storage/s3 stream.go); a body of unknown length says -1.
func TestAppendBodyAnnouncesLength(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	seen := &remainingSeen{BlobStore: blobs}
	h := registry.New(seen, meta)
	const repo = "announce/blob"
	first, second := bytes.Repeat([]byte("a"), 1000), []byte("the rest")
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, http.StatusAccepted, "")
	loc := w.Header().Get("Location")
	expect(t, do(t, h, "PATCH", loc, first), http.StatusAccepted, "")

	// A chunked request body: no Content-Length.
	req := httptest.NewRequest("PATCH", loc, io.MultiReader(bytes.NewReader(second)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	expect(t, rec, http.StatusAccepted, "")

	whole := append(bytes.Clone(first), second...)
	expect(t, do(t, h, "PUT", loc+"?digest="+sha(whole).String(), nil), http.StatusCreated, "")
	mono := []byte("a monolithic blob")
	expect(t, do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(mono).String(), mono), http.StatusCreated, "")

	wantBefore, wantAfter := []int64{1000, -1, int64(len(mono))}, []int64{0, -1, 0}
	if !slices.Equal(seen.before, wantBefore) || !slices.Equal(seen.after, wantAfter) {
		t.Fatalf("Append saw Remaining %v before and %v after reading, want %v and %v", seen.before, seen.after, wantBefore, wantAfter)
	}
}
