package pack

import (
	"bytes"
	"encoding/json"
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
)

// Limits on a publish request, beyond policy's pack size.
const (
	maxMetadataSize = 64 << 10
	maxFiles        = 1000
	maxFileNameLen  = 255
	// memSpool is how much of one file is kept in memory before it spills
	// to a temporary file: small packs never touch the disk twice.
	memSpool = 1 << 20
)

// Metadata is the `metadata` part of a publish request.
type Metadata struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// upload is one `file` part, hashed and held (in memory or in a temporary
// file) until it is pushed: the registry needs a blob's digest before it
// stores it.
type upload struct {
	name      string
	mediaType string
	digest    digest.Digest
	size      int64
	mem       []byte
	path      string // temporary file, when the part outgrew memSpool
}

func (u *upload) open() (io.ReadCloser, error) {
	if u.path == "" {
		return io.NopCloser(bytes.NewReader(u.mem)), nil
	}
	return os.Open(u.path)
}

func removeUploads(ups []*upload) {
	for _, u := range ups {
		if u.path != "" {
			os.Remove(u.path)
		}
	}
}

// readPublish reads a multipart/form-data publish request: one metadata
// part and the file parts, in any order. Files are hashed as they stream
// in; total caps their sum (0: no cap). The caller removes the uploads.
func (s *Service) readPublish(req *http.Request) (*Metadata, []*upload, error) {
	ct, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, apierr.New(http.StatusUnsupportedMediaType, apierr.UnsupportedMediaType,
			"publish wants multipart/form-data with a metadata part and file parts")
	}
	mr := multipart.NewReader(req.Body, params["boundary"])
	var (
		md    *Metadata
		ups   []*upload
		total int64
		names = map[string]bool{}
	)
	fail := func(err error) (*Metadata, []*upload, error) {
		removeUploads(ups)
		return nil, nil, err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
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
			// Refuse a bad name or version before reading the files.
			if err := md.check(); err != nil {
				return fail(err)
			}
		case "file":
			if len(ups) == maxFiles {
				return fail(apierr.Bad("a pack has at most %d files", maxFiles))
			}
			u, err := s.readFile(part, names, total)
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
	return md, ups, nil
}

func readMetadata(part *multipart.Part) (*Metadata, error) {
	b, err := io.ReadAll(io.LimitReader(part, maxMetadataSize+1))
	if err != nil {
		return nil, readError(err)
	}
	if len(b) > maxMetadataSize {
		return nil, apierr.Bad("metadata part exceeds %d bytes", maxMetadataSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var md Metadata
	if err := dec.Decode(&md); err != nil {
		return nil, apierr.Bad("metadata part: %v (want {\"name\",\"version\",\"description\",\"labels\"})", err)
	}
	if dec.More() {
		return nil, apierr.Bad("metadata part: more than one JSON value")
	}
	return &md, nil
}

// readFile hashes one file part into an upload.
func (s *Service) readFile(part *multipart.Part, seen map[string]bool, before int64) (*upload, error) {
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
	u := &upload{name: name, mediaType: FileMediaType}
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
	buf := &bytes.Buffer{}
	n, err := io.Copy(io.MultiWriter(buf, h), io.LimitReader(r, memSpool))
	if err != nil {
		return nil, readError(err)
	}
	if n == memSpool {
		f, err := os.CreateTemp(s.spoolDir, "packreg-publish-*")
		if err != nil {
			return nil, err
		}
		u.path = f.Name()
		// The buffered start is hashed already; the rest hashes on its way.
		_, err = f.Write(buf.Bytes())
		if err == nil {
			var m int64
			m, err = io.Copy(io.MultiWriter(f, h), r)
			n += m
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(u.path)
			if cr.err != nil {
				return nil, readError(cr.err)
			}
			return nil, fmt.Errorf("spooling %s: %w", name, err) // our disk: a 500
		}
		buf = nil
	}
	if max := s.policy.MaxPackSize; max > 0 && before+n > max {
		if u.path != "" {
			os.Remove(u.path)
		}
		return nil, apierr.New(http.StatusRequestEntityTooLarge, apierr.TooLarge,
			"pack files exceed %d bytes (policy max_pack_size)", max)
	}
	if buf != nil {
		u.mem = buf.Bytes()
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
