package registry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// startUpload handles POST /v2/<name>/blobs/uploads/: a cross-repo mount, a
// single-request monolithic upload (?digest=), or a new session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	q := req.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		done, err := r.mount(w, req, rt, mount, q.Get("from"))
		if done || err != nil {
			return err
		}
		// Not mountable: answer as a plain new upload, as the spec asks.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return err
		}
		u := r.newUpload(rt.name, d.Algorithm())
		if err := r.appendBody(req, u); err != nil {
			r.blobs.Abort(ctx, u)
			return err
		}
		return r.commit(w, req, u, d, false)
	}
	u := r.newUpload(rt.name, digest.SHA256)
	if err := r.meta.CreateUpload(ctx, u); err != nil {
		return err
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mount links an existing blob into rt.name. It reports done=false when the
// blob cannot be mounted (unknown, or from a repository that lacks it).
func (r *Registry) mount(w http.ResponseWriter, req *http.Request, rt route, mount, from string) (bool, error) {
	d, err := digest.Parse(mount)
	if err != nil {
		return false, nil
	}
	if done, err := r.linkFrom(req.Context(), rt.name, d, from); !done || err != nil {
		return false, err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return true, nil
}

// linkFrom links blob d into repo when from has it (any repository when
// from is empty). It reports false when the blob cannot be mounted.
func (r *Registry) linkFrom(ctx context.Context, repo string, d digest.Digest, from string) (bool, error) {
	var (
		size int64
		err  error
	)
	switch {
	case from == "":
		// Anonymous mount: the blob is readable somewhere in this registry.
		_, size, err = r.meta.FindBlob(ctx, d)
	case oci.ValidName(from):
		size, err = r.meta.BlobSize(ctx, from, d)
	default:
		return false, nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ev := event(ctx, Event{Action: ActionBlobMount, Repo: repo, Digest: d, Size: size})
	if err := r.meta.LinkBlob(ctx, repo, d, size, ev.Record()); err != nil {
		return false, err
	}
	r.notify(ctx, ev)
	return true, nil
}

func (r *Registry) newUpload(repo, alg string) *storage.Upload {
	now := time.Now().UTC()
	return &storage.Upload{ID: newUUID(), Repo: repo, Algorithm: alg, Created: now, Updated: now}
}

// loadUpload fetches the session of rt and locks it against concurrent
// requests in this process (replicas are kept apart by the offset CAS).
func (r *Registry) loadUpload(req *http.Request, rt route) (*storage.Upload, func(), error) {
	unknown := ociErr(http.StatusNotFound, codeBlobUploadUnknown, "upload %q is unknown in repository %s", clip(rt.ref), rt.name)
	if !validUUID(rt.ref) {
		return nil, nil, unknown
	}
	h := fnv.New32a()
	h.Write([]byte(rt.ref))
	mu := &r.locks[h.Sum32()%uint32(len(r.locks))]
	mu.Lock()
	u, err := r.meta.GetUpload(req.Context(), rt.ref)
	if err == nil && u.Repo != rt.name {
		err = unknown
	}
	if errors.Is(err, storage.ErrNotFound) {
		err = unknown
	}
	if err != nil {
		mu.Unlock()
		return nil, nil, err
	}
	return u, mu.Unlock, nil
}

// patchUpload appends one chunk (PATCH), checking Content-Range when sent.
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, unlock, err := r.loadUpload(req, rt)
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkContentRange(req, u); err != nil {
		return err
	}
	prev := u.Offset
	if err := r.appendBody(req, u); err != nil {
		return err
	}
	u.Updated = time.Now().UTC()
	if err := r.meta.UpdateUpload(req.Context(), u, prev); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return rangeError(u, "upload %s was moved by a concurrent request", u.ID)
		}
		return err
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// putUpload takes an optional last chunk and commits the blob.
func (r *Registry) putUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	dg := req.URL.Query().Get("digest")
	if dg == "" {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "the final PUT of an upload needs ?digest=")
	}
	d, err := parseDigest(dg)
	if err != nil {
		return err
	}
	u, unlock, err := r.loadUpload(req, rt)
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkContentRange(req, u); err != nil {
		return err
	}
	if req.ContentLength != 0 {
		prev := u.Offset
		if err := r.appendBody(req, u); err != nil {
			return err
		}
		// Record the last chunk before Commit consumes the data: should
		// the process die after Commit, the session then says the bytes
		// are all there, and the next closing PUT finishes it.
		u.Updated = time.Now().UTC()
		if err := r.meta.UpdateUpload(req.Context(), u, prev); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return rangeError(u, "upload %s was moved by a concurrent request", u.ID)
			}
			return err
		}
	}
	return r.commit(w, req, u, d, true)
}

// commit publishes u as blob d, links it into the repository and answers 201.
// stored says whether u has a session record to delete.
//
// The blob is published (Commit) before the metadata store links it and
// drops the session (FinishUpload, one transaction). A crash in between
// leaves the session at its full offset with its data consumed; the
// BlobStore recognises that replay (storage.ProveCommitted), so the next
// closing PUT finishes the session instead of failing.
func (r *Registry) commit(w http.ResponseWriter, req *http.Request, u *storage.Upload, d digest.Digest, stored bool) error {
	ctx := req.Context()
	if err := r.blobs.Commit(ctx, u, d); err != nil {
		switch {
		case errors.Is(err, storage.ErrDigestMismatch):
			if stored {
				r.meta.DeleteUpload(ctx, u.ID)
			}
			return ociErr(http.StatusBadRequest, codeDigestInvalid, "uploaded content does not match digest %s", d)
		case stored && errors.Is(err, storage.ErrNotFound):
			// The data is gone and not published as d: nothing can finish
			// this session any more.
			r.meta.DeleteUpload(ctx, u.ID)
			return ociErr(http.StatusNotFound, codeBlobUploadUnknown,
				"upload %s has no data left: it was removed, or published as another digest than %s; start a new upload", u.ID, d)
		}
		return err
	}
	ev := event(ctx, Event{Action: ActionBlobPush, Repo: u.Repo, Digest: d, Size: u.Offset})
	if stored {
		if err := r.meta.FinishUpload(ctx, u.ID, u.Repo, d, u.Offset, ev.Record()); err != nil {
			return err
		}
	} else if err := r.meta.LinkBlob(ctx, u.Repo, d, u.Offset, ev.Record()); err != nil {
		return err
	}
	r.notify(ctx, ev)
	h := w.Header()
	h.Set("Location", "/v2/"+u.Repo+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	u, unlock, err := r.loadUpload(req, rt)
	if err != nil {
		return err
	}
	unlock()
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, unlock, err := r.loadUpload(req, rt)
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.blobs.Abort(req.Context(), u); err != nil {
		return err
	}
	if err := r.meta.DeleteUpload(req.Context(), u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func setUploadHeaders(w http.ResponseWriter, u *storage.Upload) {
	h := w.Header()
	h.Set("Location", "/v2/"+u.Repo+"/blobs/uploads/"+u.ID)
	h.Set("Docker-Upload-Uuid", u.ID)
	h.Set("Range", uploadRange(u))
	h.Set("Content-Length", "0")
}

// uploadRange is the received range, inclusive; "0-0" before any byte (as
// Distribution answers, which clients expect).
func uploadRange(u *storage.Upload) string {
	return "0-" + strconv.FormatInt(max(u.Offset-1, 0), 10)
}

func rangeError(u *storage.Upload, format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: codeBlobUploadInvalid,
		Message: fmt.Sprintf(format, args...),
		header: http.Header{
			"Location": {"/v2/" + u.Repo + "/blobs/uploads/" + u.ID},
			"Range":    {uploadRange(u)},
		}}
}

// checkContentRange validates an optional "start-end" (or "bytes
// start-end/total", total "*" or past end) Content-Range against the
// session offset and the Content-Length.
func checkContentRange(req *http.Request, u *storage.Upload) error {
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return nil
	}
	spec, total, hasTotal := strings.Cut(strings.TrimPrefix(cr, "bytes "), "/")
	a, b, ok := strings.Cut(spec, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !digits(a) || !digits(b) || err1 != nil || err2 != nil || hasTotal && total != "*" && !digits(total) {
		return ociErr(http.StatusBadRequest, codeBlobUploadInvalid, "malformed Content-Range %q", clip(cr))
	}
	if end < start {
		return rangeError(u, "Content-Range %q ends before it starts", clip(cr))
	}
	if n, err := strconv.ParseInt(total, 10, 64); err == nil && n <= end {
		return ociErr(http.StatusBadRequest, codeBlobUploadInvalid, "Content-Range %q: the total must be past the end", clip(cr))
	}
	if start != u.Offset {
		return rangeError(u, "chunk starts at %d but the upload has %d bytes", start, u.Offset)
	}
	if req.ContentLength >= 0 && req.ContentLength != end-start+1 {
		return ociErr(http.StatusBadRequest, codeSizeInvalid,
			"Content-Length %d does not match Content-Range %q", req.ContentLength, clip(cr))
	}
	return nil
}

// appendBody streams the request body into u. Body failures (the client
// hung up, a short body) are client errors; the session stays at its last
// durable offset. Crossing the size cap aborts the upload.
func (r *Registry) appendBody(req *http.Request, u *storage.Upload) error {
	ctx := req.Context()
	if r.maxBlobSize > 0 && req.ContentLength > 0 && u.Offset+req.ContentLength > r.maxBlobSize {
		r.dropUpload(req, u)
		return tooLarge(r.maxBlobSize)
	}
	body := &bodyReader{r: req.Body, left: -1}
	if r.maxBlobSize > 0 {
		body.left = r.maxBlobSize - u.Offset
	}
	err := r.blobs.Append(ctx, u, body)
	switch {
	case body.tooLarge:
		r.dropUpload(req, u)
		return tooLarge(r.maxBlobSize)
	case err != nil && body.err != nil:
		return ociErr(http.StatusBadRequest, codeBlobUploadInvalid, "request body ended early: %v", body.err)
	case errors.Is(err, storage.ErrNotFound):
		return uploadGone(u)
	}
	return err
}

// uploadGone answers for a session whose data the blob store no longer
// has: published by an earlier closing PUT that did not finish (a closing
// PUT without a body finishes it), or aborted under it.
func uploadGone(u *storage.Upload) error {
	return ociErr(http.StatusNotFound, codeBlobUploadUnknown,
		"upload %s has no data to continue: it was committed or removed (finish it with PUT ?digest=, or start a new upload)", u.ID)
}

func tooLarge(n int64) error {
	return ociErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "blob exceeds the maximum size of %d bytes", n)
}

// dropUpload deletes an upload's data and session (after a size violation).
func (r *Registry) dropUpload(req *http.Request, u *storage.Upload) {
	ctx := req.Context()
	if err := r.blobs.Abort(ctx, u); err != nil {
		r.log.WarnContext(ctx, "abort upload", "request_id", reqid.From(req.Context()), "upload", u.ID, "err", err)
	}
	r.meta.DeleteUpload(ctx, u.ID)
}

var errTooLarge = errors.New("blob too large")

// bodyReader tells body failures apart from storage failures, and enforces
// the size cap while streaming.
type bodyReader struct {
	r        io.Reader
	left     int64 // bytes still allowed; -1 is no cap
	err      error
	tooLarge bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left >= 0 && int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if b.left >= 0 {
		if int64(n) > b.left {
			b.tooLarge = true
			return 0, errTooLarge
		}
		b.left -= int64(n)
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
