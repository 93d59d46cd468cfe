package registry

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// The one implementation of blob writes: a whole blob in one go
// (writeBlob: PushBlob, and a monolithic POST ?digest=), a session taking
// chunks (startSession, appendChunk, finishSession, cancelSession: the
// upload routes), and a mount (linkFrom). All of them end in commitBlob.

// chunk is what one upload request brings: a body of length bytes (-1:
// unknown) and an optional Content-Range.
type chunk struct {
	body         io.Reader
	length       int64
	contentRange string
}

// writeBlob streams body (length bytes, -1 when unknown) into repo as
// blob d, without a session: the blob is committed when body ends.
func (r *Registry) writeBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader, length int64) (err error) {
	ctx, repaired := r.repairing(ctx, repo, d)
	defer repaired(&err)
	if p, ok := r.blobs.(storage.BlobPutter); ok {
		return r.putBlob(ctx, p, repo, d, body, length)
	}
	u := r.newUpload(repo, d.Algorithm())
	if err := r.appendBody(ctx, u, chunk{body: body, length: length}); err != nil {
		r.blobs.Abort(ctx, u)
		return err
	}
	return r.commitBlob(ctx, u, d, false)
}

// putBlob is writeBlob on a store that takes a whole blob in one call
// (storage.BlobPutter): the same answers as appendBody and commitBlob,
// for less work on the store.
func (r *Registry) putBlob(ctx context.Context, p storage.BlobPutter, repo string, d digest.Digest, body io.Reader, length int64) error {
	if r.maxBlobSize > 0 && length > r.maxBlobSize {
		return tooLarge(r.maxBlobSize)
	}
	br := &bodyReader{r: body, left: -1, announced: length}
	if r.maxBlobSize > 0 {
		br.left = r.maxBlobSize
	}
	written := r.now() // the bytes are written from here on (confirmLinked)
	size, err := p.Put(ctx, d, br)
	switch {
	case br.tooLarge:
		return tooLarge(r.maxBlobSize)
	case err != nil && br.err != nil:
		return &causedBy{oci.Errorf(oci.ErrBlobUploadInvalid, "request body ended early: %v", br.err), br.err}
	case errors.Is(err, storage.ErrDigestMismatch):
		return oci.Errorf(oci.ErrDigestInvalid, "uploaded content does not match digest %s", d)
	case err != nil:
		return err
	}
	return r.linkWritten(ctx, repo, d, size, written)
}

func (r *Registry) newUpload(repo, alg string) *storage.Upload {
	now := time.Now().UTC()
	return &storage.Upload{ID: newUUID(), Repo: repo, Algorithm: alg, Created: now, Updated: now}
}

// startSession opens an upload session in repo.
func (r *Registry) startSession(ctx context.Context, repo string) (*storage.Upload, error) {
	u := r.newUpload(repo, digest.SHA256)
	if err := r.meta.CreateUpload(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// loadUpload fetches session id of repo and locks it against concurrent
// requests in this process (replicas are kept apart by the offset CAS).
func (r *Registry) loadUpload(ctx context.Context, repo, id string) (*storage.Upload, func(), error) {
	unknown := oci.Errorf(oci.ErrBlobUploadUnknown, "upload %q is unknown in repository %s", clip(id), repo)
	if !validUUID(id) {
		return nil, nil, unknown
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	mu := &r.locks[h.Sum32()%uint32(len(r.locks))]
	mu.Lock()
	u, err := r.meta.GetUpload(ctx, id)
	if err == nil && u.Repo != repo {
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

// appendChunk appends c to session id of repo (PATCH) and returns the
// session as it is now.
func (r *Registry) appendChunk(ctx context.Context, repo, id string, c chunk) (*storage.Upload, error) {
	u, unlock, err := r.loadUpload(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.saveChunk(ctx, u, c); err != nil {
		return nil, err
	}
	return u, nil
}

// saveChunk checks c against u, appends it and records the new offset.
func (r *Registry) saveChunk(ctx context.Context, u *storage.Upload, c chunk) error {
	if err := checkContentRange(c.contentRange, c.length, u); err != nil {
		return err
	}
	prev := u.Offset
	if err := r.appendBody(ctx, u, c); err != nil {
		return err
	}
	u.Updated = time.Now().UTC()
	if err := r.meta.UpdateUpload(ctx, u, prev); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return rangeError(u, "upload %s was moved by a concurrent request", u.ID)
		}
		return err
	}
	return nil
}

// finishSession takes an optional last chunk and commits session id of
// repo as blob d.
func (r *Registry) finishSession(ctx context.Context, repo, id string, d digest.Digest, last chunk) (err error) {
	ctx, repaired := r.repairing(ctx, repo, d)
	defer repaired(&err)
	u, unlock, err := r.loadUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	defer unlock()
	if last.length != 0 {
		// Record the last chunk before Commit consumes the data: should
		// the process die after Commit, the session then says the bytes
		// are all there, and the next closing PUT finishes it.
		if err := r.saveChunk(ctx, u, last); err != nil {
			return err
		}
	} else if err := checkContentRange(last.contentRange, last.length, u); err != nil {
		return err
	}
	return r.commitBlob(ctx, u, d, true)
}

// cancelSession drops session id of repo and its data.
func (r *Registry) cancelSession(ctx context.Context, repo, id string) error {
	u, unlock, err := r.loadUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.blobs.Abort(ctx, u); err != nil {
		return err
	}
	if err := r.meta.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

// commitBlob publishes u as blob d and links it into the repository.
// stored says whether u has a session record to delete.
//
// The blob is published (Commit) before the metadata store links it and
// drops the session (FinishUpload, one transaction). A crash in between
// leaves the session at its full offset with its data consumed; the
// BlobStore recognises that replay (storage.ProveCommitted), so the next
// closing PUT finishes the session instead of failing.
//
// The blob key is written (or found) by Commit, so the link confirms it
// as of then, as a single-request push does (confirmLinked): on a store
// that keeps ended tombstones, with no look at the bytes (a HeadObject
// on S3) when no delete could have reached them.
func (r *Registry) commitBlob(ctx context.Context, u *storage.Upload, d digest.Digest, stored bool) error {
	written := r.now()
	if err := r.blobs.Commit(ctx, u, d); err != nil {
		switch {
		case errors.Is(err, storage.ErrDigestMismatch):
			if stored {
				r.meta.DeleteUpload(ctx, u.ID)
			}
			return oci.Errorf(oci.ErrDigestInvalid, "uploaded content does not match digest %s", d)
		case stored && errors.Is(err, storage.ErrUploadLost):
			r.meta.DeleteUpload(ctx, u.ID)
			return uploadLost(u)
		case stored && errors.Is(err, storage.ErrNotFound):
			// The data is gone and not published as d: nothing can finish
			// this session any more.
			r.meta.DeleteUpload(ctx, u.ID)
			return oci.Errorf(oci.ErrBlobUploadUnknown,
				"upload %s has no data left: it was removed, or published as another digest than %s; start a new upload", u.ID, d)
		}
		return err
	}
	if !stored {
		return r.linkWritten(ctx, u.Repo, d, u.Offset, written)
	}
	ev := event(ctx, Event{Action: ActionBlobPush, Repo: u.Repo, Digest: d, Size: u.Offset})
	if err := r.meta.FinishUpload(ctx, u.ID, u.Repo, d, u.Offset, ev.Record()); err != nil {
		return err
	}
	return r.confirmPushed(ctx, ev, written)
}

// linkWritten links blob d, just published, into repo. A store whose
// writes are serial answers the tombstone questions in the link's own
// transaction (storage.LinkConfirmer), one read transaction fewer, and
// with no delete begun since the bytes were written, no look at them
// (confirmLinked). written, when not zero, is when this push began
// writing the bytes.
func (r *Registry) linkWritten(ctx context.Context, repo string, d digest.Digest, size int64, written time.Time) error {
	ev := event(ctx, Event{Action: ActionBlobPush, Repo: repo, Digest: d, Size: size})
	lc, ok := r.meta.(storage.LinkConfirmer)
	if !ok {
		if err := r.meta.LinkBlob(ctx, repo, d, size, ev.Record()); err != nil {
			return err
		}
		return r.confirmPushed(ctx, ev, written)
	}
	within, _ := r.deletesWithin(written)
	c, err := lc.LinkBlobConfirmed(ctx, repo, d, size, within, ev.Record())
	if err != nil {
		return err
	}
	if !c.Serial || c.Deleting {
		return r.confirmPushed(ctx, ev, written)
	}
	if c.Begun {
		if err := r.confirmBytes(ctx, repo, d); err != nil {
			return err
		}
	}
	r.notify(ctx, ev)
	return nil
}

// confirmPushed makes sure a collection did not take the bytes of the blob
// ev just linked, then tells the subscribers.
func (r *Registry) confirmPushed(ctx context.Context, ev Event, written time.Time) error {
	if err := r.confirmLinked(ctx, ev.Repo, ev.Digest, written); err != nil {
		return err
	}
	r.notify(ctx, ev)
	return nil
}

// linkFrom links blob d into repo when from has it (any repository when
// from is empty). It reports false when the blob cannot be mounted.
func (r *Registry) linkFrom(ctx context.Context, repo string, d digest.Digest, from string) (bool, error) {
	var (
		size int64
		err  error
	)
	switch {
	case from == "" && restricted(ctx):
		// With rights in play a mount names a source the caller may
		// read; "somewhere in this registry" could be anywhere.
		return false, nil
	case from == "":
		// Anonymous mount: the blob is readable somewhere in this registry.
		_, size, err = r.meta.FindBlob(ctx, d)
	case oci.ValidName(from) && !MayPull(ctx, from):
		// An ordinary upload, as for a source without the blob: the
		// answer never tells whether an unreadable repository has it.
		return false, nil
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
	// A mount of bytes found bad would link them and repair nothing:
	// the client uploads them instead (repair.go).
	if _, bad, err := r.meta.BlobBad(ctx, d); err != nil || bad {
		return false, err
	}
	ev := event(ctx, Event{Action: ActionBlobMount, Repo: repo, Digest: d, Size: size})
	if err := r.meta.LinkBlob(ctx, repo, d, size, ev.Record()); err != nil {
		return false, err
	}
	if err := r.confirmPushed(ctx, ev, time.Time{}); err != nil {
		return false, err
	}
	return true, nil
}

// checkContentRange validates an optional "start-end" (or "bytes
// start-end/total", total "*" or past end) Content-Range against the
// session offset and the Content-Length.
func checkContentRange(cr string, length int64, u *storage.Upload) error {
	if cr == "" {
		return nil
	}
	spec, total, hasTotal := strings.Cut(strings.TrimPrefix(cr, "bytes "), "/")
	a, b, ok := strings.Cut(spec, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !digits(a) || !digits(b) || err1 != nil || err2 != nil || hasTotal && total != "*" && !digits(total) {
		return oci.Errorf(oci.ErrBlobUploadInvalid, "malformed Content-Range %q", clip(cr))
	}
	if end < start {
		return rangeError(u, "Content-Range %q ends before it starts", clip(cr))
	}
	if n, err := strconv.ParseInt(total, 10, 64); err == nil && n <= end {
		return oci.Errorf(oci.ErrBlobUploadInvalid, "Content-Range %q: the total must be past the end", clip(cr))
	}
	if start != u.Offset {
		return rangeError(u, "chunk starts at %d but the upload has %d bytes", start, u.Offset)
	}
	if length >= 0 && length != end-start+1 {
		return oci.Errorf(oci.ErrSizeInvalid,
			"Content-Length %d does not match Content-Range %q", length, clip(cr))
	}
	return nil
}

// appendBody streams c.body into u. Body failures (the client hung up, a
// short body) are client errors; the session stays at its last durable
// offset. Crossing the size cap aborts the upload.
func (r *Registry) appendBody(ctx context.Context, u *storage.Upload, c chunk) error {
	if r.maxBlobSize > 0 && c.length > 0 && u.Offset+c.length > r.maxBlobSize {
		r.dropUpload(ctx, u)
		return tooLarge(r.maxBlobSize)
	}
	body := &bodyReader{r: c.body, left: -1, announced: c.length}
	if r.maxBlobSize > 0 {
		body.left = r.maxBlobSize - u.Offset
	}
	err := r.blobs.Append(ctx, u, body)
	switch {
	case body.tooLarge:
		r.dropUpload(ctx, u)
		return tooLarge(r.maxBlobSize)
	case err != nil && body.err != nil:
		// The cause stays in the chain: a caller of PushBlob may want to
		// know why its reader failed.
		return &causedBy{oci.Errorf(oci.ErrBlobUploadInvalid, "request body ended early: %v", body.err), body.err}
	case errors.Is(err, storage.ErrUploadLost):
		r.meta.DeleteUpload(ctx, u.ID) // its offset would claim bytes that are gone
		return uploadLost(u)
	case errors.Is(err, storage.ErrNotFound):
		return uploadGone(u)
	}
	return err
}

// causedBy is an answer to the client that keeps its cause for callers.
type causedBy struct {
	error
	cause error
}

func (e *causedBy) Unwrap() []error { return []error{e.error, e.cause} }

// uploadGone answers for a session whose data the blob store no longer
// has: published by an earlier closing PUT that did not finish (a closing
// PUT without a body finishes it), or aborted under it.
func uploadGone(u *storage.Upload) error {
	return oci.Errorf(oci.ErrBlobUploadUnknown,
		"upload %s has no data to continue: it was committed or removed (finish it with PUT ?digest=, or start a new upload)", u.ID)
}

// uploadLost answers for a session whose data a restart of the machine
// took before it was durable (storage.ErrUploadLost).
func uploadLost(u *storage.Upload) error {
	return oci.Errorf(oci.ErrBlobUploadUnknown,
		"upload %s lost data it had received when the registry's machine restarted; start a new upload", u.ID)
}

func tooLarge(n int64) error {
	return oci.Errorf(oci.ErrBlobTooLarge, "blob exceeds the maximum size of %d bytes", n)
}

// dropUpload deletes an upload's data and session (after a size violation).
func (r *Registry) dropUpload(ctx context.Context, u *storage.Upload) {
	if err := r.blobs.Abort(ctx, u); err != nil {
		r.log.WarnContext(ctx, "abort upload", "request_id", reqid.From(ctx), "upload", u.ID, "err", err)
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
	// announced is the request's Content-Length (-1 unknown) and read
	// what came so far: Remaining (storage.Remainder) lets the store send
	// a part out while it is still arriving. net/http ends the body at
	// its Content-Length, so it never gives more than announced.
	announced, read int64
}

// Remaining is storage.Remainder.
func (b *bodyReader) Remaining() int64 {
	if b.announced < 0 {
		return -1
	}
	return max(b.announced-b.read, 0)
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left >= 0 && int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
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
