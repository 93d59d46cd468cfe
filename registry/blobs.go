package registry

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// getBlob serves GET and HEAD of a blob, with single-range support.
func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	ctx := req.Context()
	size, err := r.StatBlob(ctx, rt.name, d)
	if errors.Is(err, oci.ErrBlobUnknown) {
		// Manifests are content too: clients may fetch one through the blob route.
		if m, merr := r.meta.GetManifest(ctx, rt.name, d); merr == nil {
			return serveBytes(w, req, d, "application/octet-stream", m.Payload)
		}
	}
	if req.Method == http.MethodHead && errors.Is(err, errBadBytes) {
		// Clients ask HEAD before they push: "unknown" makes them push
		// the bytes again, which repairs the blob (repair.go).
		return oci.Errorf(oci.ErrBlobUnknown, "blob %s of %s has bad stored bytes; push it again", d, rt.name)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")

	start, end, partial, err := parseRange(req.Header.Get("Range"), size)
	if err != nil {
		return err
	}
	if req.Method == http.MethodGet && !partial {
		if rd, ok := r.blobs.(storage.Redirector); ok {
			url, ok, err := rd.RedirectURL(ctx, d)
			if err != nil {
				return err
			}
			if ok {
				http.Redirect(w, req, url, http.StatusTemporaryRedirect)
				return nil
			}
		}
	}
	h.Set("Content-Type", "application/octet-stream")
	n := end - start + 1
	if size == 0 {
		n = 0
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		status = http.StatusPartialContent
	}
	if req.Method == http.MethodHead || n == 0 {
		w.WriteHeader(status)
		return nil
	}
	rc, err := r.blobs.Open(ctx, d, start)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Linked but gone from the store: a damaged registry, not a client error.
			return fmt.Errorf("blob %s linked in %s but missing from the blob store: %w", d, rt.name, err)
		}
		return err
	}
	defer rc.Close()
	w.WriteHeader(status)
	// Headers are out: a failure now can only cut the connection short, which
	// the client sees as a short body against Content-Length.
	if _, err := r.copyBlob(w, rc, n); err != nil && req.Context().Err() == nil {
		r.log.WarnContext(ctx, "blob read failed mid-response", "request_id", reqid.From(req.Context()), "digest", d, "err", err)
	}
	return nil
}

// copyBufSize is the copy buffer of a blob body that is not a file: a
// read and a write syscall per 256 KiB, where net/http's generic copy
// makes one per 32 KiB.
const copyBufSize = 256 << 10

// copyBlob sends the first n bytes of rc. A file goes to the writer's
// ReadFrom, which hands it to the kernel (sendfile): no wrapper may hide
// it; so does a storage.BlobSender (S3 over http: splice). Anything else
// (an S3 body over https) is copied through a pooled buffer, hiding
// ReadFrom, whose copy would take 32 KiB at a time.
func (r *Registry) copyBlob(w http.ResponseWriter, rc io.Reader, n int64) (int64, error) {
	if _, ok := rc.(*os.File); ok {
		return io.CopyN(w, rc, n)
	}
	var sent int64
	if s, ok := rc.(storage.BlobSender); ok {
		// An S3 body splices from its socket to w's: what it could not
		// send (none, or the rest after its connection broke) is read.
		m, err := s.SendTo(w, n)
		if err != nil || m == n {
			return m, err
		}
		sent, n = m, n-m
	}
	bp, _ := r.copyBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, copyBufSize)
		bp = &b
	}
	defer r.copyBufs.Put(bp)
	m, err := io.CopyBuffer(writerOnly{w}, io.LimitReader(rc, n), *bp)
	return sent + m, err
}

// writerOnly hides every method of a writer but Write.
type writerOnly struct{ io.Writer }

// serveBytes answers GET/HEAD with a small in-memory body.
func serveBytes(w http.ResponseWriter, req *http.Request, d digest.Digest, contentType string, b []byte) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

// parseRange handles "bytes=a-b", "bytes=a-" and "bytes=-n" (one range;
// several, or another unit, are ignored),
// as RFC 9110 writes them: the unit in any case, the numbers digits only.
// partial is false when there is no Range header; start/end are inclusive.
func parseRange(hdr string, size int64) (start, end int64, partial bool, err error) {
	if hdr == "" {
		return 0, size - 1, false, nil
	}
	unsatisfiable := &withHeader{oci.Errorf(oci.ErrRangeNotSatisfiable, "range %s not satisfiable", clip(hdr)),
		http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}}}
	unit, spec, ok := strings.Cut(hdr, "=")
	if !ok {
		return 0, 0, false, unsatisfiable
	}
	// A unit it does not know the server MUST ignore (RFC 9110 14.2), and
	// several ranges it may: both get the whole blob, which any client
	// that sent them can take; 416 would say no byte of it exists.
	if !strings.EqualFold(unit, "bytes") || strings.Contains(spec, ",") {
		return 0, size - 1, false, nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false, unsatisfiable
	}
	switch {
	case a == "": // suffix: the last b bytes
		n, ok := bytePos(b)
		if !ok || n == 0 || size == 0 {
			return 0, 0, false, unsatisfiable
		}
		start = max(size-n, 0)
		end = size - 1
	default:
		start, ok = bytePos(a)
		if !ok || start >= size {
			return 0, 0, false, unsatisfiable
		}
		end = size - 1
		if b != "" {
			last, ok := bytePos(b)
			if !ok || last < start {
				return 0, 0, false, unsatisfiable
			}
			end = min(last, size-1)
		}
	}
	return start, end, true, nil
}

// bytePos reads a position or a suffix length: digits only (strconv would
// take a sign), of any length. One past int64 is clamped: the blob is
// smaller, and "from 0 to 10^20" still means the whole blob.
func bytePos(s string) (int64, bool) {
	if !digits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // digits only: the value is out of range
		return math.MaxInt64, true
	}
	return n, true
}

// digits reports whether s is a non-empty run of ASCII digits: what HTTP
// range grammars allow where strconv would also take a sign.
func digits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// deleteBlob unlinks a blob from the repository, and deletes its bytes
// when no repository links it any more (the collector's tombstone
// handshake, gc.go): a collection would never find them, since it walks
// the links.
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	ev := event(req.Context(), Event{Action: ActionBlobDelete, Repo: rt.name, Digest: d})
	if err := r.meta.UnlinkBlob(req.Context(), rt.name, d, ev.Record()); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return oci.Errorf(oci.ErrBlobUnknown, "blob %s is not in repository %s", d, rt.name)
		}
		return err
	}
	r.notify(req.Context(), ev)
	if _, err := r.deleteBytes(req.Context(), []digest.Digest{d}); err != nil {
		// The unlink stands; the bytes wait for a blob store walk.
		r.log.WarnContext(req.Context(), "blob delete: bytes kept", "digest", d, "err", err)
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.WriteHeader(http.StatusAccepted)
	return nil
}
