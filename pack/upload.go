package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// Limits on a publish request, beyond policy's pack size.
const (
	maxMetadataSize = 64 << 10
	maxFiles        = 1000
	maxFileNameLen  = 255
	// memSpool is how much of one file may stay in memory, and memBudget
	// how much of all the files of one request: small packs never touch
	// the disk, and a thousand small files cost 4 MiB, not a gigabyte.
	memSpool  = 1 << 20
	memBudget = 4 << 20
	// DefaultMaxPublishSize caps one publish request (files, metadata and
	// multipart framing) whatever the pack size policy says; the file
	// bytes beyond memBudget are what it costs on disk.
	DefaultMaxPublishSize = 1 << 30
)

// Metadata is the `metadata` part of a publish request.
type Metadata struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// upload is one `file` part, hashed and held (in memory or in the
// request's spool file) until it is pushed: the registry needs a blob's
// digest before it stores it.
type upload struct {
	name      string
	mediaType string
	digest    digest.Digest
	size      int64
	mem       []byte
	spool     *spool // holds the bytes from off, when mem does not
	off       int64
}

func (u *upload) open() (io.ReadCloser, error) {
	if u.spool == nil {
		return io.NopCloser(bytes.NewReader(u.mem)), nil
	}
	return io.NopCloser(io.NewSectionReader(u.spool.f, u.off, u.size)), nil
}

// spool is the one temporary file of a publish request, under the
// service's spool directory. It is unlinked as soon as it is created, so
// it vanishes with its descriptor on every exit path, a crash included;
// only where an open file cannot be unlinked is its path removed on Close.
type spool struct {
	dir  string
	f    *os.File
	path string // still linked: remove on Close
	size int64
	mem  int64 // file bytes of the request held in memory
}

// file returns the spool file, creating it on first use.
func (sp *spool) file() (*os.File, error) {
	if sp.f != nil {
		return sp.f, nil
	}
	f, err := os.CreateTemp(sp.dir, "packreg-publish-*")
	if err != nil {
		return nil, fmt.Errorf("publish spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		sp.path = f.Name()
	}
	sp.f = f
	return f, nil
}

// Close releases the spool's disk space.
func (sp *spool) Close() error {
	if sp == nil || sp.f == nil {
		return nil
	}
	err := sp.f.Close()
	if sp.path != "" {
		if rerr := os.Remove(sp.path); err == nil {
			err = rerr
		}
	}
	sp.f, sp.path = nil, ""
	return err
}

// readPublish reads a multipart/form-data publish request: one metadata
// part and the file parts, in any order. Files are hashed as they stream
// in, the policy's pack size caps their sum. The caller closes the spool
// that holds them; on an error it is closed already.
func (s *Service) readPublish(req *http.Request) (*Metadata, []*upload, *spool, error) {
	ct, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, nil, apierr.New(http.StatusUnsupportedMediaType, apierr.UnsupportedMediaType,
			"publish wants multipart/form-data with a metadata part and file parts")
	}
	mr := multipart.NewReader(req.Body, params["boundary"])
	var (
		md    *Metadata
		ups   []*upload
		total int64
		names = map[string]bool{}
		sp    = &spool{dir: s.spoolDir}
	)
	fail := func(err error) (*Metadata, []*upload, *spool, error) {
		sp.Close()
		return nil, nil, nil, err
	}
	for {
		part, err := mr.NextPart()
		// io.EOF itself only: NextPart wraps io.EOF when the body ends
		// before its closing delimiter, a body cut short, not ended.
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(readError(err))
		}
		switch part.FormName() {
		case "metadata":
			if md != nil {
				return fail(apierr.Bad("more than one metadata part"))
			}
			if md, err = readMetadata(part); err != nil {
				return fail(err)
			}
			// Refuse a bad name or version, and a caller without push on
			// the name, before reading the files.
			if err := md.check(); err != nil {
				return fail(err)
			}
			if err := registry.Allowed(req.Context(), md.Name, "push"); err != nil {
				return fail(err)
			}
		case "file":
			if len(ups) == maxFiles {
				return fail(apierr.Bad("a pack has at most %d files", maxFiles))
			}
			u, err := s.readFile(part, names, total, sp)
			if err != nil {
				return fail(err)
			}
			ups = append(ups, u)
			total += u.size
		default:
			return fail(apierr.Bad("unexpected part %q: want metadata and file parts", apierr.Clip(part.FormName())))
		}
	}
	if md == nil {
		return fail(apierr.Bad("no metadata part"))
	}
	if len(ups) == 0 {
		return fail(apierr.New(http.StatusBadRequest, apierr.PackEmpty, "a pack needs at least one file part"))
	}
	return md, ups, sp, nil
}

func readMetadata(part *multipart.Part) (*Metadata, error) {
	b, err := io.ReadAll(io.LimitReader(part, maxMetadataSize+1))
	if err != nil {
		return nil, readError(err)
	}
	if len(b) > maxMetadataSize {
		return nil, apierr.Bad("metadata part exceeds %d bytes", maxMetadataSize)
	}
	var md Metadata
	if err := apierr.DecodeJSON(bytes.NewReader(b), &md, maxMetadataSize); err != nil {
		return nil, apierr.Bad("metadata part: %v (want {\"name\",\"version\",\"description\",\"labels\"})", err)
	}
	return &md, nil
}

// readFile hashes one file part into an upload: in memory while the
// request's memory budget lasts, appended to the spool beyond it.
func (s *Service) readFile(part *multipart.Part, seen map[string]bool, before int64, sp *spool) (*upload, error) {
	// Part.FileName keeps only the base name; packs may hold directories.
	_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	name := params["filename"]
	if err := checkFileName(name); err != nil {
		return nil, err
	}
	if seen[name] {
		return nil, apierr.Bad("file %q appears twice", name)
	}
	seen[name] = true
	u := &upload{name: name, mediaType: oci.MediaTypePackFile}
	if ct := part.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, apierr.Bad("file %q: bad Content-Type %q", name, apierr.Clip(ct))
		}
		// application/octet-stream is what clients send when they do not
		// know: the pack's own file type says more.
		if mt != "application/octet-stream" {
			u.mediaType = mt
		}
	}
	h := digest.NewHash(digest.SHA256)
	cr := &clientReader{r: part}
	var r io.Reader = cr
	if max := s.policy.MaxPackSize; max > 0 {
		r = io.LimitReader(cr, max-before+1)
	}
	inMem := min(memSpool, memBudget-sp.mem)
	buf := &bytes.Buffer{}
	n, err := io.Copy(io.MultiWriter(buf, h), io.LimitReader(r, inMem))
	if err != nil {
		return nil, readError(err)
	}
	if n == inMem {
		// The part may go on: it continues in the spool, after the
		// buffered start (hashed already).
		f, err := sp.file()
		if err != nil {
			return nil, err
		}
		// Parts are appended one after the other: the file offset is
		// always the end, and readers use ReadAt.
		u.spool, u.off = sp, sp.size
		_, err = f.Write(buf.Bytes())
		if err == nil {
			var m int64
			m, err = io.Copy(io.MultiWriter(f, h), r)
			n += m
		}
		if err != nil {
			if cr.err != nil {
				return nil, readError(cr.err)
			}
			return nil, fmt.Errorf("spooling %s: %w", name, err) // our disk: a 500
		}
		sp.size += n
		buf = nil
	}
	if max := s.policy.MaxPackSize; max > 0 && before+n > max {
		return nil, apierr.New(http.StatusRequestEntityTooLarge, apierr.TooLarge,
			"pack files exceed %d bytes (policy max_pack_size)", max)
	}
	if buf != nil {
		u.mem = buf.Bytes()
		sp.mem += n
	}
	u.size, u.digest = n, digest.FromHash(digest.SHA256, h)
	return u, nil
}

// clientReader remembers a failure to read the request, so a copy that
// fails can say whose fault it was.
type clientReader struct {
	r   io.Reader
	err error
}

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// readError tells a body cut short by the size cap (413) from a malformed
// or broken request (400).
func readError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return apierr.Bad("reading the request: %v", err)
}

// checkFileName accepts relative, clean, slash-separated paths: what `oras
// pull` writes without --allow-path-traversal.
func checkFileName(name string) error {
	bad := func(why string) error {
		return apierr.Bad("file name %q %s", apierr.Clip(name), why)
	}
	switch {
	case name == "":
		return apierr.Bad("a file part has no filename")
	case len(name) > maxFileNameLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxFileNameLen))
	case !utf8.ValidString(name):
		return bad("is not UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl), strings.Contains(name, `\`):
		return bad("contains a control character or a backslash")
	case path.IsAbs(name), path.Clean(name) != name, name == ".", name == ".." || strings.HasPrefix(name, "../"):
		return bad("must be a clean relative path inside the pack")
	}
	return nil
}
