package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// publishThenFail is a blob store whose next Commit publishes the blob and
// then reports a failure: what the registry sees when it dies (or its
// directory fsync fails) right after the blob became visible, before the
// metadata store recorded it.
type publishThenFail struct {
	storage.BlobStore
	armed bool
}

func (p *publishThenFail) Commit(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	err := p.BlobStore.Commit(ctx, u, d)
	if err == nil && p.armed {
		p.armed = false
		return errors.New("crashed after publishing")
	}
	return err
}

// TestClosingPutAfterPublish: a chunked upload whose closing PUT published
// the blob but did not finish (a crash, a failed fsync) is finished by the
// next closing PUT: 201 with the blob served byte-exact, never a 500. The
// session keeps every acknowledged byte until then, and a wrong digest is
// still the client's 400.
func TestClosingPutAfterPublish(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lastBody bool   // the failed PUT carried the last chunk
		alg      string // the digest algorithm of the PUT
		wrong    bool   // the retry claims another digest
		// The answer to the wrong claim: the session's own sha256 proves a
		// sha256 claim wrong; a sha512 claim can only be checked against a
		// blob, and none is published under it (the bytes are, under the
		// right sha512), so the session cannot be finished as claimed.
		status int
		code   string
	}{
		{"empty closing put", false, digest.SHA256, false, 0, ""},
		{"closing put with the last chunk", true, digest.SHA256, false, 0, ""},
		{"sha512 digest of a sha256 session", false, digest.SHA512, false, 0, ""},
		{"wrong digest on retry", false, digest.SHA256, true, http.StatusBadRequest, "DIGEST_INVALID"},
		{"wrong sha512 digest on retry", false, digest.SHA512, true, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs, meta, _ := teststores.Open(t)
			bs := &publishThenFail{BlobStore: blobs}
			h := registry.New(bs, meta)
			repo := "crash/put"
			data := bytes.Repeat([]byte("packreg!"), 40<<10)
			half := len(data) / 2
			d := digest.FromBytes(tc.alg, data)

			w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
			expect(t, w, http.StatusAccepted, "")
			loc := w.Header().Get("Location")
			expect(t, do(t, h, "PATCH", loc, data[:half], "Content-Range", fmt.Sprintf("0-%d", half-1)), http.StatusAccepted, "")
			var body []byte
			if tc.lastBody {
				body = data[half:]
			} else {
				expect(t, do(t, h, "PATCH", loc, data[half:], "Content-Range", fmt.Sprintf("%d-%d", half, len(data)-1)), http.StatusAccepted, "")
			}
			bs.armed = true
			if put := do(t, h, "PUT", loc+"?digest="+d.String(), body); put.Code < 500 {
				t.Fatalf("the failed PUT answered %d", put.Code)
			}

			// The session kept every byte the client sent.
			w = do(t, h, "GET", loc, nil)
			expect(t, w, http.StatusNoContent, "")
			if got, want := w.Header().Get("Range"), fmt.Sprintf("0-%d", len(data)-1); got != want {
				t.Fatalf("session after the failed PUT: Range %q, want %q", got, want)
			}
			if tc.wrong {
				wrong := digest.FromBytes(tc.alg, data[1:])
				expect(t, do(t, h, "PUT", loc+"?digest="+wrong.String(), nil), tc.status, tc.code)
				if _, err := blobs.Stat(t.Context(), wrong); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("blob %s after a wrong claim: %v", wrong, err)
				}
				expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
				expect(t, do(t, h, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
				return
			}
			w = do(t, h, "PUT", loc+"?digest="+d.String(), nil)
			expect(t, w, http.StatusCreated, "")
			if got := w.Header().Get("Docker-Content-Digest"); got != d.String() {
				t.Fatalf("Docker-Content-Digest %q, want %s", got, d)
			}
			w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
			expect(t, w, http.StatusOK, "")
			if !bytes.Equal(w.Body.Bytes(), data) {
				t.Fatalf("served %d bytes, want the %d pushed", w.Body.Len(), len(data))
			}
			expect(t, do(t, h, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		})
	}
}

// TestUploadDataGone: a session whose data is gone without being
// published (aborted under it by another replica, purged) answers 404
// BLOB_UPLOAD_UNKNOWN to the next chunk and to the closing PUT, never a
// 500, and the closing PUT forgets the session.
func TestUploadDataGone(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	repo := "gone/data"
	data := []byte("acknowledged, then lost")
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	loc := w.Header().Get("Location")
	expect(t, do(t, h, "PATCH", loc, data), http.StatusAccepted, "")
	u, err := meta.GetUpload(t.Context(), w.Header().Get("Docker-Upload-Uuid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Abort(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	expect(t, do(t, h, "PATCH", loc, []byte("more")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, do(t, h, "PUT", loc+"?digest="+sha(data).String(), nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, do(t, h, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha(data).String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
}
