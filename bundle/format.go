package bundle

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/semver"
)

// What a bundle is made of (the layout is drawn in doc.go).
const (
	// ArtifactType is the artifact type of a bundle's manifest.
	ArtifactType = "application/vnd.packreg.bundle.v1"
	// MediaTypeDocument is the one layer of the bundle's manifest: the
	// Document, as JSON.
	MediaTypeDocument = "application/vnd.packreg.bundle.v1+json"
	// RefBundle and RefSignature are the index.json names of the bundle's
	// manifest and of its signature.
	RefBundle    = "packreg-bundle"
	RefSignature = "packreg-bundle.sig"
	// AnnotationName and AnnotationVersion say which pack version an
	// index.json entry is, next to its org.opencontainers.image.ref.name.
	AnnotationName    = "vnd.packreg.bundle.name"
	AnnotationVersion = "vnd.packreg.bundle.version"
	// AnnotationRefName is the OCI image layout's name of an entry.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// FormatVersion is the Document format this package writes and reads.
	FormatVersion = 1
)

// layoutFile is the oci-layout file, byte for byte: a bundle has this one.
const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Scope selects what an export carries: the filters of a mirror (name
// globs, a semver range, lifecycle states; mirror.NewFilter reads them).
type Scope struct {
	Include  []string `json:"include,omitempty"`
	Exclude  []string `json:"exclude,omitempty"`
	Versions string   `json:"versions,omitempty"`
	States   []string `json:"states,omitempty"`
}

func (s Scope) empty() bool {
	return len(s.Include) == 0 && len(s.Exclude) == 0 && s.Versions == "" && len(s.States) == 0
}

func (s Scope) equal(o Scope) bool {
	return slices.Equal(s.Include, o.Include) && slices.Equal(s.Exclude, o.Exclude) && s.Versions == o.Versions &&
		slices.Equal(s.States, o.States)
}

// What an entry of a bundle carries of its version.
const (
	// ContentFull: the version's manifest with everything under it and
	// every referrer of it.
	ContentFull = "full"
	// ContentReferrers: referrers of the version that are new since the
	// previous bundle of the chain; the version itself came before.
	ContentReferrers = "referrers"
	// ContentState: its lifecycle state only.
	ContentState = "state"
)

// Document is what a bundle says of itself, signed with it: where it comes
// from, which chain it continues, what it holds.
type Document struct {
	Format     int           `json:"format"`
	Source     string        `json:"source"`
	ExportedAt time.Time     `json:"exportedAt"`
	Chain      string        `json:"chain"`
	Sequence   int64         `json:"sequence"`
	Previous   digest.Digest `json:"previous,omitempty"`
	// Cursor is the position in the exporting registry's audit trail this
	// bundle is complete up to: the next bundle of the chain carries what
	// changed after it.
	Cursor   int64   `json:"cursor"`
	Scope    Scope   `json:"scope"`
	Versions []Entry `json:"versions"`
	Totals   Totals  `json:"totals"`
}

// Entry is one pack version in a bundle.
type Entry struct {
	Name         string        `json:"name"`
	Version      string        `json:"version"`
	Digest       digest.Digest `json:"digest"`
	Content      string        `json:"content"`
	Status       string        `json:"status"`
	StatusReason string        `json:"statusReason,omitempty"`
	// Referrers are the referrer manifests of the version (signatures,
	// attestations, SBOMs, and theirs) the bundle carries for it.
	Referrers []Referrer `json:"referrers,omitempty"`
	// Audit is the exporting registry's audit records about the version
	// (the newest maxAuditPerVersion; in an incremental bundle, those
	// after the previous bundle's cursor).
	Audit []AuditEntry `json:"audit,omitempty"`
}

// Referrer is one referrer manifest, with the cosign tag (sha256-<hex>.sig,
// .att, .sbom) that names it when it is stored in cosign's tag schema.
type Referrer struct {
	Digest digest.Digest `json:"digest"`
	Tag    string        `json:"tag,omitempty"`
}

// AuditEntry is an audit record of the exporting registry.
type AuditEntry struct {
	ID      int64             `json:"id"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Target  string            `json:"target"`
	Digest  digest.Digest     `json:"digest,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// Totals count what the bundle carries for its versions: distinct
// manifests and blobs, and their bytes.
type Totals struct {
	Versions  int   `json:"versions"`
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
}

// maxAuditPerVersion bounds the audit records a bundle carries per
// version: the recent history, not an unbounded one.
const maxAuditPerVersion = 32

// check reads a document for what an import relies on, so that nothing
// after it meets a malformed one.
func (d *Document) check() error {
	if d.Format != FormatVersion {
		return fmt.Errorf("bundle format %d: this packreg reads format %d", d.Format, FormatVersion)
	}
	if !validChain(d.Chain) || d.Sequence < 1 || (d.Sequence == 1) != (d.Previous == "") {
		return fmt.Errorf("chain %q position %d (previous %q) is not a chain position", clip(d.Chain), d.Sequence, clip(string(d.Previous)))
	}
	if d.Previous != "" {
		if _, err := digest.Parse(string(d.Previous)); err != nil {
			return fmt.Errorf("previous: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, e := range d.Versions {
		where := e.Name + ":" + e.Version
		switch {
		case !oci.ValidName(e.Name) || !semver.Valid(e.Version):
			return fmt.Errorf("version %q is not a pack name and version", clip(where))
		case seen[where]:
			return fmt.Errorf("version %s is listed twice", where)
		case e.Content != ContentFull && e.Content != ContentReferrers && e.Content != ContentState:
			return fmt.Errorf("version %s: content %q", where, clip(e.Content))
		case e.Status != "active" && e.Status != "deprecated" && e.Status != "archived":
			return fmt.Errorf("version %s: state %q", where, clip(e.Status))
		case len(e.StatusReason) > 1024:
			return fmt.Errorf("version %s: a state reason of %d bytes", where, len(e.StatusReason))
		case e.Content == ContentReferrers && len(e.Referrers) == 0:
			return fmt.Errorf("version %s carries referrers but lists none", where)
		case e.Content == ContentState && len(e.Referrers) > 0:
			return fmt.Errorf("version %s carries its state only but lists referrers", where)
		}
		seen[where] = true
		if _, err := digest.Parse(string(e.Digest)); err != nil {
			return fmt.Errorf("version %s: %w", where, err)
		}
		for _, r := range e.Referrers {
			if _, err := digest.Parse(string(r.Digest)); err != nil {
				return fmt.Errorf("version %s: referrer: %w", where, err)
			}
			if r.Tag != "" {
				if _, _, ok := oci.ParseCosignTag(r.Tag); !ok {
					return fmt.Errorf("version %s: referrer tag %q is not a cosign tag", where, clip(r.Tag))
				}
			}
		}
	}
	return nil
}

// validChain: a chain id is what newChain makes, give or take the length.
func validChain(c string) bool {
	if len(c) < 8 || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// RefName is the name of a pack version in the layout's index.json
// (org.opencontainers.image.ref.name), a valid tag so that
// `oras cp --from-oci-layout DIR:REF` and `regctl image copy ocidir://DIR:REF`
// take it: the pack name with each "/" written "..", then "_", then the
// version. Both are characters a pack name cannot hold in those places
// and a version never holds, so the name reads back (ParseRefName). ok is
// false when the result would be longer than a tag may be; such a version
// is found by its digest.
func RefName(name, version string) (string, bool) {
	ref := strings.ReplaceAll(name, "/", "..") + "_" + version
	return ref, oci.ValidTag(ref)
}

// ParseRefName reads a RefName back.
func ParseRefName(ref string) (name, version string, ok bool) {
	i := strings.LastIndexByte(ref, '_')
	if i < 0 {
		return "", "", false
	}
	name, version = strings.ReplaceAll(ref[:i], "..", "/"), ref[i+1:]
	if !oci.ValidName(name) || !semver.Valid(version) {
		return "", "", false
	}
	if back, _ := RefName(name, version); back != ref {
		return "", "", false
	}
	return name, version, true
}

// Cursor says where a chain stands after one of its bundles: what
// `packreg export --since` continues from. It is given to people as a
// token (String).
type Cursor struct {
	Chain    string        `json:"chain"`
	Sequence int64         `json:"sequence"`
	Bundle   digest.Digest `json:"bundle"`
	Position int64         `json:"position"`
	Scope    Scope         `json:"scope"`
}

const cursorPrefix = "pbc1."

// CursorOf is the cursor after the bundle whose manifest has digest d.
func CursorOf(doc *Document, d digest.Digest) Cursor {
	return Cursor{Chain: doc.Chain, Sequence: doc.Sequence, Bundle: d, Position: doc.Cursor, Scope: doc.Scope}
}

func (c Cursor) String() string {
	b, _ := json.Marshal(c)
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ErrCursor is a --since that is not a cursor this package wrote.
var ErrCursor = errors.New("not a bundle cursor")

// ParseCursor reads a token String wrote.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	body, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok || len(body) > 64<<10 {
		return c, fmt.Errorf("%w: %q", ErrCursor, clip(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrCursor, err)
	}
	if err := decodeStrict(b, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrCursor, err)
	}
	if _, err := digest.Parse(string(c.Bundle)); err != nil || !validChain(c.Chain) || c.Sequence < 1 || c.Position < 0 {
		return c, fmt.Errorf("%w: it names no bundle of a chain", ErrCursor)
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
