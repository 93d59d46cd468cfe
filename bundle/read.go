package bundle

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Limits bound one import: the bytes of the archive (after gzip, when it
// is compressed) and its entries.
type Limits struct {
	MaxSize    int64
	MaxEntries int
}

// DefaultLimits: 64 GiB and 200,000 entries.
var DefaultLimits = Limits{MaxSize: 64 << 30, MaxEntries: 200_000}

// Header is the signed part of a bundle, which an import reads before it
// stages anything else: its manifest, its document, its signatures.
type Header struct {
	Digest     digest.Digest // of the bundle's manifest
	Manifest   oci.Descriptor
	Doc        *Document
	Signatures []Signed // none when the bundle is unsigned
}

// Signed is one signature of a bundle's manifest: a cosign
// simple-signing payload and the signature over it.
type Signed struct {
	Payload, Signature []byte
}

// readOptions tune readBundle.
type readOptions struct {
	Limits
	// admit is asked once the header is in, before anything else is
	// staged: whether the bundle is trusted and in order. Its error
	// refuses the bundle.
	admit func(*Header) error
}

// staged is a bundle read whole and checked: the header, the content in
// its spool, and what the content is (the graph of its entries).
type staged struct {
	hdr  *Header
	sp   *spool
	g    *graph
	refs map[string]map[digest.Digest]bool   // repository → referrers listed for it
	tags map[string]map[string]digest.Digest // repository → cosign tag → referrer
	full map[string]map[string]digest.Digest // repository → version → digest, of full entries
	// carried is every manifest the bundle carries for a repository.
	carried map[string]map[digest.Digest]bool
	items   int // entries of the archive
}

// readBundle reads a bundle archive from r (a tar, or a gzip of one) into
// sp and checks it: every entry's name and kind, every blob's bytes
// against its digest, the header first (which admit judges), then that
// the content is exactly what the document says, nothing missing and
// nothing extra, and that index.json is the one that content makes. Any
// failure is a *Problem; the caller discards sp.
func readBundle(ctx context.Context, r io.Reader, sp *spool, o readOptions) (*staged, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalid("", "", "a gzip stream that does not open: %v", err)
		}
		src = zr
	}
	rd := &reader{o: o, sp: sp, seen: map[string]bool{}, tr: newTarReader(&capped{r: src, left: o.MaxSize}),
		pending: map[digest.Digest]int64{}, want: map[digest.Digest]int64{}, expect: map[digest.Digest]bool{}}
	return rd.read(ctx)
}

// capped fails a read past its cap: a small gzip can expand without
// bound, and an archive can be endless.
type capped struct {
	r    io.Reader
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
	}
	if int64(len(p)) > c.left {
		p = p[:max(c.left, 1)]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

type reader struct {
	o    readOptions
	sp   *spool
	tr   *tarReader
	seen map[string]bool

	layout     bool
	indexBytes []byte
	bundle     oci.Descriptor
	sig        *oci.Descriptor
	// The header's objects still to come, with their sizes.
	pending  map[digest.Digest]int64
	docDesc  *oci.Descriptor
	sigDescs []oci.Descriptor
	hdr      *Header

	// Sizes of blobs known before they arrive, and manifests expected.
	want   map[digest.Digest]int64
	expect map[digest.Digest]bool
}

func (rd *reader) read(ctx context.Context) (*staged, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := rd.tr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, rd.failure("", err)
		}
		if rd.tr.entries > rd.o.MaxEntries {
			return nil, problem(errTooLarge, e.Name, "", "more than %d entries (bundles.max_import_entries)", rd.o.MaxEntries)
		}
		if err := rd.entry(ctx, e); err != nil {
			return nil, err
		}
	}
	switch {
	case !rd.layout:
		return nil, invalid("oci-layout", "", "missing: not an OCI image layout")
	case rd.indexBytes == nil:
		return nil, invalid("index.json", "", "missing: not an OCI image layout")
	case rd.hdr == nil:
		for d := range rd.pending {
			return nil, invalid(blobPath(d), d, "missing: the bundle's manifest or signature names it")
		}
	}
	return rd.verify()
}

// failure turns an error of the archive or its source into a refusal.
func (rd *reader) failure(entry string, err error) error {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return err
	case errors.Is(err, errTooLarge):
		return problem(errTooLarge, entry, "", "the bundle expands beyond %d bytes (bundles.max_import_size)", rd.o.MaxSize)
	case errors.Is(err, errTar):
		return invalid(entry, "", "%v", err)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, new(flate.CorruptInputError)):
		return invalid(entry, "", "the gzip stream is corrupt: %v", err)
	}
	return err // the connection, the disk: not the bundle's fault
}

// entry handles one entry of the archive.
func (rd *reader) entry(ctx context.Context, e *tarEntry) error {
	name, err := entryName(e)
	if err != nil {
		return invalid(clip(e.Name), "", "%v", err)
	}
	if e.Type == entryDir {
		switch name {
		case "", "blobs", "blobs/" + digest.SHA256, "blobs/" + digest.SHA512:
			return nil
		}
		return invalid(name, "", "a directory a bundle does not have")
	}
	if rd.seen[name] {
		return invalid(name, "", "appears twice in the archive")
	}
	rd.seen[name] = true
	switch {
	case name == "oci-layout":
		b, err := readAll(rd.tr, e.Size, 1024)
		if err != nil {
			return rd.failure(name, err)
		}
		if string(b) != layoutFile {
			return invalid(name, "", "is not %s", layoutFile)
		}
		rd.layout = true
		return nil
	case name == "index.json":
		b, err := readAll(rd.tr, e.Size, maxIndexJSON)
		if err != nil {
			return rd.failure(name, err)
		}
		if rd.bundle, rd.sig, err = readLayoutIndex(b); err != nil {
			return invalid(name, "", "%v", err)
		}
		rd.indexBytes = b
		rd.pending[digest.Digest(rd.bundle.Digest)] = rd.bundle.Size
		if rd.sig != nil {
			rd.pending[digest.Digest(rd.sig.Digest)] = rd.sig.Size
		}
		return nil
	case strings.HasPrefix(name, "blobs/"):
		d, err := digest.Parse(strings.Replace(strings.TrimPrefix(name, "blobs/"), "/", ":", 1))
		if err != nil {
			return invalid(name, "", "not a blob's name: %v", err)
		}
		return rd.blob(ctx, name, d, e)
	}
	return invalid(name, "", "a file a bundle does not have")
}

// entryName is the entry's path within the layout: relative, clean, with
// a leading "./" (what `tar -C dir .` writes) taken off.
func entryName(e *tarEntry) (string, error) {
	n := e.Name
	switch {
	case n == "":
		return "", errors.New("an entry without a name")
	case strings.HasPrefix(n, "/"):
		return "", errors.New("an absolute path")
	case strings.ContainsAny(n, "\\\x00"):
		return "", errors.New("a backslash or NUL in the name")
	}
	n = strings.TrimPrefix(n, "./")
	if e.Type == entryDir {
		n = strings.TrimSuffix(n, "/")
	}
	if n == "" || n == "." {
		if e.Type == entryDir {
			return "", nil
		}
		return "", errors.New("a file named like a directory")
	}
	for _, c := range strings.Split(n, "/") {
		switch c {
		case "..":
			return "", errors.New(`a ".." component`)
		case ".", "":
			return "", errors.New("an empty or \".\" component")
		}
	}
	if path.Clean(n) != n {
		return "", errors.New("not a clean path")
	}
	return n, nil
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm() + "/" + d.Hex() }

// readAll reads the rest of an entry of size bytes, at most max.
func readAll(r io.Reader, size, max int64) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d it may have", ErrInvalid, size, max)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// blob stages one blob: a part of the header while the header is
// incomplete (anything else is refused then), content afterwards.
func (rd *reader) blob(ctx context.Context, name string, d digest.Digest, e *tarEntry) error {
	if rd.indexBytes == nil {
		return invalid(name, d, "comes before index.json: packreg reads a bundle in the order packreg writes it "+
			"(export it again, or import its directory form)")
	}
	if rd.hdr == nil {
		size, ok := rd.pending[d]
		if !ok {
			return invalid(name, d, "comes before the bundle's manifest and signature, which a bundle begins with")
		}
		if _, err := rd.sp.add(d, rd.tr, size, size); err != nil {
			return rd.stageFailure(name, d, err)
		}
		delete(rd.pending, d)
		if err := rd.headerObject(d); err != nil {
			return err
		}
		if len(rd.pending) == 0 {
			return rd.finishHeader()
		}
		return nil
	}
	want, known := rd.want[d]
	if !known {
		want = -1
	}
	if _, err := rd.sp.add(d, rd.tr, want, rd.o.MaxSize); err != nil {
		return rd.stageFailure(name, d, err)
	}
	if rd.expect[d] {
		// A manifest: what it references is now known, so its blobs'
		// sizes are checked as they stream in.
		b, err := rd.sp.bytes(d, maxManifest)
		if err != nil {
			return invalid(name, d, "%v", err)
		}
		m, err := readManifest(d, b)
		if err != nil {
			return invalid(name, d, "%v", err)
		}
		for _, b := range m.blobs {
			rd.want[digest.Digest(b.Digest)] = b.Size
		}
		for _, c := range m.children {
			rd.expect[digest.Digest(c.Digest)] = true
			rd.want[digest.Digest(c.Digest)] = c.Size
		}
	}
	return nil
}

func (rd *reader) stageFailure(name string, d digest.Digest, err error) error {
	if errors.Is(err, errMismatch) {
		return invalid(name, d, "%v", err)
	}
	return rd.failure(name, err)
}

// headerObject reads one object of the header as it arrives.
func (rd *reader) headerObject(d digest.Digest) error {
	name := blobPath(d)
	switch {
	case d == digest.Digest(rd.bundle.Digest):
		m, err := rd.headerManifest(d)
		if err != nil {
			return err
		}
		if m.ArtifactType != ArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeDocument ||
			m.Config.Digest != emptyConfig().Digest || m.Config.Size != emptyConfig().Size {
			return invalid(name, d, "is not a bundle manifest (artifactType %s, the empty config, one %s layer)", ArtifactType, MediaTypeDocument)
		}
		if m.Layers[0].Size > maxDocument {
			return invalid(name, d, "its document has %d bytes, more than %d", m.Layers[0].Size, maxDocument)
		}
		l := m.Layers[0]
		rd.docDesc = &l
		return rd.needHeader(d, m.Config, l)
	case rd.sig != nil && d == digest.Digest(rd.sig.Digest):
		m, err := rd.headerManifest(d)
		if err != nil {
			return err
		}
		if m.Subject == nil || m.Subject.Digest != rd.bundle.Digest || len(m.Layers) == 0 || len(m.Layers) > 16 {
			return invalid(name, d, "is not a signature of the bundle's manifest %s", rd.bundle.Digest)
		}
		for _, l := range m.Layers {
			if l.MediaType != oci.MediaTypeCosignSimpleSigning || l.Size > 1<<20 {
				return invalid(name, d, "a signature layer of type %q (%d bytes)", clip(l.MediaType), l.Size)
			}
		}
		rd.sigDescs = m.Layers
		return rd.needHeader(d, append([]oci.Descriptor{m.Config}, m.Layers...)...)
	}
	return nil
}

func (rd *reader) headerManifest(d digest.Digest) (*oci.Manifest, error) {
	b, err := rd.sp.bytes(d, maxManifest)
	if err != nil {
		return nil, invalid(blobPath(d), d, "%v", err)
	}
	var m oci.Manifest
	if err := decodeStrict(b, &m); err != nil || m.MediaType != oci.MediaTypeImageManifest {
		return nil, invalid(blobPath(d), d, "not an OCI image manifest (%v)", err)
	}
	return &m, nil
}

// needHeader adds objects to the header's list, unless already staged.
func (rd *reader) needHeader(in digest.Digest, ds ...oci.Descriptor) error {
	for _, x := range ds {
		d, err := digest.Parse(string(x.Digest))
		if err != nil {
			return invalid(blobPath(in), in, "%v", err)
		}
		if _, ok := rd.sp.has(d); !ok {
			rd.pending[d] = x.Size
		}
	}
	return nil
}

// finishHeader reads the document and the signatures, and asks admit.
func (rd *reader) finishHeader() error {
	if rd.docDesc == nil || (rd.sig != nil && rd.sigDescs == nil) {
		return invalid("index.json", "", "the bundle's manifest or signature is missing")
	}
	dd := digest.Digest(rd.docDesc.Digest)
	b, err := rd.sp.bytes(dd, maxDocument)
	if err != nil {
		return invalid(blobPath(dd), dd, "%v", err)
	}
	doc := &Document{}
	if err := decodeStrict(b, doc); err != nil {
		return invalid(blobPath(dd), dd, "the bundle's document: %v", err)
	}
	if err := doc.check(); err != nil {
		return invalid(blobPath(dd), dd, "the bundle's document: %v", err)
	}
	h := &Header{Digest: digest.Digest(rd.bundle.Digest), Manifest: rd.bundle, Doc: doc}
	for _, l := range rd.sigDescs {
		ld := digest.Digest(l.Digest)
		payload, err := rd.sp.bytes(ld, 1<<20)
		if err != nil {
			return invalid(blobPath(ld), ld, "%v", err)
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[oci.AnnotationCosignSignature])
		if err != nil || len(sig) == 0 {
			return invalid(blobPath(ld), ld, "a signature layer without a base64 signature")
		}
		h.Signatures = append(h.Signatures, Signed{Payload: payload, Signature: sig})
	}
	rd.hdr = h
	if rd.o.admit != nil {
		if err := rd.o.admit(h); err != nil {
			return err
		}
	}
	for _, e := range doc.Versions {
		rd.expect[e.Digest] = true
		for _, r := range e.Referrers {
			rd.expect[r.Digest] = true
		}
	}
	return nil
}

// verify checks the staged content against the document, and builds
// what the import copies from.
func (rd *reader) verify() (*staged, error) {
	doc := rd.hdr.Doc
	st := &staged{hdr: rd.hdr, sp: rd.sp, items: rd.tr.entries,
		refs: map[string]map[digest.Digest]bool{}, tags: map[string]map[string]digest.Digest{}, full: map[string]map[string]digest.Digest{},
		carried: map[string]map[digest.Digest]bool{}}
	st.g = newGraph(func(d digest.Digest, want int64) (*manifestInfo, error) {
		size, ok := rd.sp.has(d)
		if !ok {
			return nil, invalid(blobPath(d), d, "missing: a manifest of the bundle")
		}
		if want >= 0 && size != want {
			return nil, invalid(blobPath(d), d, "has %d bytes, listed with %d", size, want)
		}
		b, err := rd.sp.bytes(d, maxManifest)
		if err != nil {
			return nil, invalid(blobPath(d), d, "%v", err)
		}
		m, err := readManifest(d, b)
		if err != nil {
			return nil, invalid(blobPath(d), d, "%v", err)
		}
		return m, nil
	}, func(b oci.Descriptor, in digest.Digest) error {
		d := digest.Digest(b.Digest)
		size, ok := rd.sp.has(d)
		switch {
		case !ok:
			return invalid(blobPath(d), d, "missing: a blob of manifest %s", in)
		case size != b.Size:
			return invalid(blobPath(d), d, "has %d bytes, manifest %s lists it with %d", size, in, b.Size)
		}
		return nil
	})
	for i := range doc.Versions {
		e := &doc.Versions[i]
		if err := st.g.entry(e); err != nil {
			var p *Problem
			if errors.As(err, &p) {
				p.Reason = fmt.Sprintf("version %s:%s: %s", e.Name, e.Version, p.Reason)
				return nil, p
			}
			return nil, invalid("", e.Digest, "%v", err)
		}
		st.note(e)
	}
	if got := st.g.totals(doc.Versions); got != doc.Totals {
		return nil, invalid("", rd.hdr.Digest, "the bundle holds %+v, its document says %+v", got, doc.Totals)
	}
	// index.json is made again from what was checked, not from its own
	// descriptors: a changed media type there is not the signed bundle.
	var sig *oci.Descriptor
	if rd.sig != nil {
		d := headerDescriptor(oci.ArtifactTypeCosignSignature, digest.Digest(rd.sig.Digest), rd.sig.Size)
		sig = &d
	}
	idx, fallbacks := st.g.index(headerDescriptor(ArtifactType, rd.hdr.Digest, rd.bundle.Size), sig, doc.Versions)
	if !bytes.Equal(idx.bytes(), rd.indexBytes) {
		return nil, invalid("index.json", "", "is not the index of this bundle's content: it was changed, or lists what the bundle does not hold")
	}
	// Nothing but what the document reaches, the header and the
	// fallback indexes: an extra entry is not what was signed.
	for _, d := range rd.sp.digests() {
		_, m := st.g.manifests[d]
		_, b := st.g.blobs[d]
		if m || b || rd.inHeader(d) {
			continue
		}
		fb, ok := fallbacks[d]
		if !ok {
			return nil, invalid(blobPath(d), d, "is not part of the bundle: nothing its document lists reaches it")
		}
		got, err := rd.sp.bytes(d, maxIndexJSON)
		if err != nil || !bytes.Equal(got, fb) {
			return nil, invalid(blobPath(d), d, "is not the referrers index this bundle's content makes")
		}
		delete(fallbacks, d)
	}
	for d := range fallbacks {
		return nil, invalid(blobPath(d), d, "missing: index.json lists it")
	}
	return st, nil
}

// inHeader reports whether d is the bundle's manifest, document, config
// or signature.
func (rd *reader) inHeader(d digest.Digest) bool {
	if d == digest.Digest(rd.bundle.Digest) || d == digest.Digest(emptyConfig().Digest) || d == digest.Digest(rd.docDesc.Digest) {
		return true
	}
	if rd.sig != nil && d == digest.Digest(rd.sig.Digest) {
		return true
	}
	for _, l := range rd.sigDescs {
		if d == digest.Digest(l.Digest) {
			return true
		}
	}
	return false
}

// note records what entry e carries, for the import's Source.
func (st *staged) note(e *Entry) {
	if st.refs[e.Name] == nil {
		st.refs[e.Name], st.tags[e.Name], st.full[e.Name] = map[digest.Digest]bool{}, map[string]digest.Digest{}, map[string]digest.Digest{}
		st.carried[e.Name] = map[digest.Digest]bool{}
	}
	if e.Content == ContentFull {
		st.full[e.Name][e.Version] = e.Digest
		st.g.under(e.Digest, st.carried[e.Name])
	}
	for _, r := range e.Referrers {
		st.refs[e.Name][r.Digest] = true
		st.g.under(r.Digest, st.carried[e.Name])
		if r.Tag != "" {
			st.tags[e.Name][r.Tag] = r.Digest
		}
	}
}

// headerDescriptor is index.json's descriptor of the bundle's manifest
// or of its signature.
func headerDescriptor(artifactType string, d digest.Digest, size int64) oci.Descriptor {
	desc := oci.NewDescriptor(oci.MediaTypeImageManifest, d, size)
	desc.ArtifactType = artifactType
	return desc
}
