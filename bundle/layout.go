package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// maxManifest is the registry's cap on a manifest, and so on one in a
// bundle.
const maxManifest = 4 << 20

// maxIndexJSON and maxDocument bound the two JSON files an import holds
// in memory whole. A document lists every version with its referrers and
// a few dozen audit records: tens of thousands of versions fit.
const (
	maxIndexJSON = 64 << 20
	maxDocument  = 64 << 20
)

// manifestInfo is what a bundle needs of a manifest, read once.
type manifestInfo struct {
	desc     oci.Descriptor // as a referrers list or index.json lists it
	subject  digest.Digest
	blobs    []oci.Descriptor // config and layers, foreign ones left out
	children []oci.Descriptor // of an index
}

// readManifest reads payload, the bytes of manifest d. A bundle carries
// manifests its source registry accepted; anything else is refused.
func readManifest(d digest.Digest, payload []byte) (*manifestInfo, error) {
	if int64(len(payload)) > maxManifest {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", d, maxManifest)
	}
	var doc oci.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("manifest %s: %v", d, err)
	}
	mt := doc.MediaType
	if mt == "" {
		// The media type lived in the Content-Type it was pushed with;
		// the body says which of the two OCI shapes it is.
		mt = oci.MediaTypeImageManifest
		if doc.Manifests != nil {
			mt = oci.MediaTypeImageIndex
		}
	}
	if !oci.IsManifest(mt) {
		return nil, fmt.Errorf("manifest %s: media type %q is not a manifest's", d, clip(mt))
	}
	m := &manifestInfo{desc: oci.NewDescriptor(mt, d, int64(len(payload)))}
	m.desc.ArtifactType = doc.ArtifactType
	if m.desc.ArtifactType == "" && doc.Config != nil {
		m.desc.ArtifactType = doc.Config.MediaType
	}
	m.desc.Annotations = doc.Annotations
	if doc.Subject != nil {
		s, err := digest.Parse(doc.Subject.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: subject: %w", d, err)
		}
		m.subject = s
	}
	for _, b := range doc.Blobs() {
		if oci.NonDistributable(b.MediaType) {
			continue
		}
		bd, err := descriptorOf(d, b)
		if err != nil {
			return nil, err
		}
		m.blobs = append(m.blobs, bd)
	}
	for _, c := range doc.Children() {
		cd, err := descriptorOf(d, c)
		if err != nil {
			return nil, err
		}
		m.children = append(m.children, cd)
	}
	return m, nil
}

func descriptorOf(in digest.Digest, dd oci.DocDescriptor) (oci.Descriptor, error) {
	if _, err := digest.Parse(dd.Digest); err != nil {
		return oci.Descriptor{}, fmt.Errorf("manifest %s: %w", in, err)
	}
	if dd.Size == nil || *dd.Size < 0 {
		return oci.Descriptor{}, fmt.Errorf("manifest %s: descriptor of %s without a size", in, dd.Digest)
	}
	return dd.Descriptor(), nil
}

// layoutIndex is the index.json of a bundle. It is a function of what the
// bundle holds: an import makes it again and compares, byte for byte, so
// a changed index.json cannot pass (it is not signed, the document is).
type layoutIndex struct {
	bundle    oci.Descriptor
	signature *oci.Descriptor
	versions  []oci.Descriptor // annotated with their names
	fallbacks []oci.Descriptor // referrers fallback indexes, tagged <alg>-<hex>
}

func (x *layoutIndex) bytes() []byte {
	named := func(d oci.Descriptor, ref string) oci.Descriptor {
		d.Annotations = map[string]string{AnnotationRefName: ref}
		return d
	}
	all := []oci.Descriptor{named(x.bundle, RefBundle)}
	if x.signature != nil {
		all = append(all, named(*x.signature, RefSignature))
	}
	all = append(all, x.versions...)
	all = append(all, x.fallbacks...)
	b, err := json.Marshal(oci.Index{Versioned: oci.ReferrersIndex(nil).Versioned, MediaType: oci.MediaTypeImageIndex, Manifests: all})
	if err != nil {
		panic(err) // descriptors always marshal
	}
	return b
}

// versionDescriptor is a full version's entry in index.json.
func versionDescriptor(e *Entry, m *manifestInfo) (oci.Descriptor, bool) {
	ref, ok := RefName(e.Name, e.Version)
	if !ok {
		return oci.Descriptor{}, false
	}
	d := oci.NewDescriptor(m.desc.MediaType, e.Digest, m.desc.Size)
	d.ArtifactType = m.desc.ArtifactType
	d.Annotations = map[string]string{AnnotationRefName: ref, AnnotationName: e.Name, AnnotationVersion: e.Version}
	return d, true
}

// fallbackIndexes are the referrers fallback indexes of what a bundle
// carries (oci.ReferrersTag names them): regctl finds the referrers of a
// manifest in a layout only there, and oras finds them there too. One per
// subject, listing every referrer with that subject, whatever pack it came
// with. It returns their descriptors for index.json and their bytes.
func fallbackIndexes(manifests map[digest.Digest]*manifestInfo) ([]oci.Descriptor, map[digest.Digest][]byte) {
	bySubject := map[digest.Digest][]oci.Descriptor{}
	for _, m := range manifests {
		if m.subject != "" {
			bySubject[m.subject] = append(bySubject[m.subject], m.desc)
		}
	}
	var descs []oci.Descriptor
	blobs := map[digest.Digest][]byte{}
	for subject, refs := range bySubject {
		slices.SortFunc(refs, func(a, b oci.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		b, err := json.Marshal(oci.ReferrersIndex(refs))
		if err != nil {
			panic(err)
		}
		d := digest.FromBytes(digest.SHA256, b)
		blobs[d] = b
		desc := oci.NewDescriptor(oci.MediaTypeImageIndex, d, int64(len(b)))
		desc.Annotations = map[string]string{AnnotationRefName: oci.ReferrersTag(subject)}
		descs = append(descs, desc)
	}
	slices.SortFunc(descs, func(a, b oci.Descriptor) int {
		return strings.Compare(a.Annotations[AnnotationRefName], b.Annotations[AnnotationRefName])
	})
	return descs, blobs
}

// readLayoutIndex reads a received index.json for what the import needs
// before anything else: the bundle's manifest and signature. Every name
// in it must be a tag, and every digest a digest.
func readLayoutIndex(b []byte) (bundle oci.Descriptor, sig *oci.Descriptor, err error) {
	var idx oci.Index
	if err := decodeStrict(b, &idx); err != nil {
		return bundle, nil, fmt.Errorf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 {
		return bundle, nil, fmt.Errorf("index.json: schemaVersion %d", idx.SchemaVersion)
	}
	found := false
	for i, m := range idx.Manifests {
		if _, err := digest.Parse(string(m.Digest)); err != nil {
			return bundle, nil, fmt.Errorf("index.json entry %d: %w", i, err)
		}
		ref, named := m.Annotations[AnnotationRefName]
		if named && !oci.ValidTag(ref) {
			return bundle, nil, fmt.Errorf("index.json entry %d (%s): name %q is not a valid tag", i, m.Digest, clip(ref))
		}
		switch ref {
		case RefBundle:
			if found {
				return bundle, nil, errors.New("index.json names two bundle manifests")
			}
			bundle, found = m, true
		case RefSignature:
			if sig != nil {
				return bundle, nil, errors.New("index.json names two bundle signatures")
			}
			s := m
			sig = &s
		}
	}
	if !found {
		return bundle, nil, fmt.Errorf("index.json names no %q: not a packreg bundle (an OCI layout of another tool?)", RefBundle)
	}
	return bundle, sig, nil
}

// decodeStrict reads exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// emptyJSON is the config of the bundle's manifest and of its signature.
var emptyJSON = []byte("{}")

func emptyConfig() oci.Descriptor {
	return oci.NewDescriptor(oci.MediaTypeEmptyJSON, digest.FromBytes(digest.SHA256, emptyJSON), int64(len(emptyJSON)))
}
