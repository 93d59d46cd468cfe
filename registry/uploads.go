package registry

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// startUpload handles POST /v2/<name>/blobs/uploads/: a cross-repo mount, a
// single-request monolithic upload (?digest=), or a new session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	q := req.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		// A mount of a malformed digest, or of a blob that is not
		// there, is answered as a plain new upload, as the spec asks.
		if d, err := digest.Parse(mount); err == nil {
			done, err := r.linkFrom(ctx, rt.name, d, q.Get("from"))
			if err != nil {
				return err
			}
			if done {
				return blobCreated(w, rt.name, d)
			}
		}
	} else if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return err
		}
		if err := r.writeBlob(ctx, rt.name, d, req.Body, req.ContentLength); err != nil {
			return err
		}
		return blobCreated(w, rt.name, d)
	}
	u, err := r.startSession(ctx, rt.name)
	if err != nil {
		return err
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// blobCreated answers 201 for blob d of repo.
func blobCreated(w http.ResponseWriter, repo string, d digest.Digest) error {
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// patchUpload appends one chunk (PATCH), checking Content-Range when sent.
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, err := r.appendChunk(req.Context(), rt.name, rt.ref, chunkOf(req))
	if err != nil {
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
		return oci.Errorf(oci.ErrDigestInvalid, "the final PUT of an upload needs ?digest=")
	}
	d, err := parseDigest(dg)
	if err != nil {
		return err
	}
	if err := r.finishSession(req.Context(), rt.name, rt.ref, d, chunkOf(req)); err != nil {
		return err
	}
	return blobCreated(w, rt.name, d)
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	u, unlock, err := r.loadUpload(req.Context(), rt.name, rt.ref)
	if err != nil {
		return err
	}
	defer unlock()
	if c, ok := r.blobs.(storage.UploadChecker); ok {
		// The offset the client resumes from must be on disk: after a
		// restart of the machine the store checks the bytes it had not
		// yet made durable.
		if err := c.CheckUpload(req.Context(), u); errors.Is(err, storage.ErrUploadLost) {
			r.meta.DeleteUpload(req.Context(), u.ID)
			return uploadLost(u)
		} else if err != nil {
			return err
		}
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	if err := r.cancelSession(req.Context(), rt.name, rt.ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// chunkOf is the part of an upload request the session methods read.
func chunkOf(req *http.Request) chunk {
	return chunk{body: req.Body, length: req.ContentLength, contentRange: req.Header.Get("Content-Range")}
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

func rangeError(u *storage.Upload, format string, args ...any) error {
	return &withHeader{oci.Errorf(oci.ErrUploadRange, format, args...), http.Header{
		"Location": {"/v2/" + u.Repo + "/blobs/uploads/" + u.ID},
		"Range":    {uploadRange(u)},
	}}
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
