package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// ExportRequest is what to export: a scope, and the cursor of the
// previous bundle of the chain to continue (none: a new chain, with
// every version in scope).
type ExportRequest struct {
	Scope
	Since string `json:"since,omitempty"`
}

// Export is a planned bundle, ready to be written: its manifest's digest,
// its document, the cursor after it, and the size of its archive.
type Export struct {
	Digest   digest.Digest
	Doc      *Document
	Cursor   Cursor
	Size     int64 // bytes of the archive; -1 when not known in advance
	KeyID    string
	files    []exportFile
	s        *Service
	blobRepo map[digest.Digest]string
}

// exportFile is one file of the archive: its bytes, or a blob or a
// manifest of the registry to read when it is written.
type exportFile struct {
	name     string
	data     []byte
	d        digest.Digest
	size     int64
	repo     string
	manifest bool
}

// ActionExport and ActionImport are the audit actions of bundles; an
// import also records one ActionImportVersion per version it published,
// with the source's history of it.
const (
	ActionExport        = "bundle.export"
	ActionImport        = "bundle.import"
	ActionRefuse        = "bundle.refuse"
	ActionImportVersion = "pack.import"
)

// PlanExport works out what a bundle of req holds and makes its header:
// the document, the manifest, the signature, index.json. Nothing is read
// of a blob yet (Write does).
func (s *Service) PlanExport(ctx context.Context, req ExportRequest) (*Export, error) {
	doc := &Document{Format: FormatVersion, Source: s.source, ExportedAt: s.now().Truncate(1e6), Scope: req.Scope}
	var since *Cursor
	if req.Since != "" {
		c, err := ParseCursor(req.Since)
		if err != nil {
			return nil, problem(ErrInvalid, "", "", "since: %v", err)
		}
		if !req.Scope.empty() && !req.Scope.equal(c.Scope) {
			return nil, problem(ErrInvalid, "", "", "since: a chain keeps its scope: give the scope of bundle %d of chain %s, or none", c.Sequence, c.Chain)
		}
		since, doc.Scope = &c, c.Scope
		doc.Chain, doc.Sequence, doc.Previous = c.Chain, c.Sequence+1, c.Bundle
	} else {
		doc.Chain, doc.Sequence = newChain(), 1
	}
	f, err := mirror.NewFilter(doc.Scope.Include, doc.Scope.Exclude, doc.Scope.Versions, doc.Scope.States)
	if err != nil {
		return nil, problem(ErrInvalid, "", "", "scope: %v", err)
	}
	head, err := s.store.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	doc.Cursor = head.ID
	if since != nil && since.Position > head.ID {
		return nil, problem(ErrInvalid, "", "", "since: the cursor is past this registry's audit trail (another registry's?)")
	}
	versions, err := mirror.IndexVersions(ctx, s.index, f, nil)
	if err != nil {
		return nil, err
	}
	plan := newPlanSink()
	entries, jobs, err := s.entries(ctx, versions, f, since, head.ID)
	if err != nil {
		return nil, err
	}
	eng := mirror.NewEngine(mirror.NewLocal(s.reg, ""), plan, mirror.EngineOptions{Logger: s.log})
	var failed []string
	for _, r := range eng.Run(ctx, jobs, nil) {
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s:%s: %v", r.SrcRepo, r.Ref, r.Err))
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("reading what the bundle holds: %s", strings.Join(failed[:min(len(failed), 5)], "; "))
	}
	for i := range entries {
		e := &entries[i]
		if e.Content == ContentFull {
			e.Referrers = plan.referrersOf(e.Name, e.Digest)
		}
		slices.SortFunc(e.Referrers, func(a, b Referrer) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		if e.Audit, err = s.history(ctx, e, since); err != nil {
			return nil, err
		}
	}
	doc.Versions = entries
	g := newGraph(func(d digest.Digest, want int64) (*manifestInfo, error) {
		p := plan.manifests[d]
		if p == nil {
			return nil, fmt.Errorf("manifest %s was not read", d)
		}
		return p.info, nil
	}, func(oci.Descriptor, digest.Digest) error { return nil })
	for i := range entries {
		if err := g.entry(&entries[i]); err != nil {
			return nil, err
		}
	}
	doc.Totals = g.totals(entries)
	return s.assemble(doc, g, plan)
}

// entries lists what a bundle carries of each version in scope, and the
// copy jobs that read it. A new chain carries every version in scope
// whose state the scope covers; an incremental bundle the versions
// published (or whose tag moved) since, the referrers pushed since, and
// the lifecycle changes since, archived ones included (a copy must follow
// its primary into archived, as a mirror's does).
func (s *Service) entries(ctx context.Context, versions []mirror.Version, f *mirror.Filter, since *Cursor, upto int64) ([]Entry, []mirror.Job, error) {
	var (
		entries []Entry
		jobs    []mirror.Job
		ch      *changes
		memo    = map[subjectKey]digest.Digest{}
	)
	if since != nil {
		var err error
		if ch, err = scanChanges(ctx, s.store, since.Position, upto); err != nil {
			return nil, nil, err
		}
	}
	for _, v := range versions {
		if v.Status == storage.PackDeleted || v.Digest == "" {
			continue
		}
		e := Entry{Name: v.Name, Version: v.Version, Digest: v.Digest, Status: v.Status, StatusReason: v.Reason}
		k := versionKey{v.Name, v.Version}
		switch {
		case !f.State(v.Status):
			if ch == nil || !ch.state[k] {
				continue
			}
			e.Content = ContentState
		case ch == nil || ch.content[k]:
			e.Content = ContentFull
			jobs = append(jobs, mirror.Job{SrcRepo: v.Name, DstRepo: v.Name, Ref: v.Version})
		default:
			e.Referrers = dedupReferrers(ch.newReferrers(ctx, s.reg, v.Name, v.Digest, memo))
			switch {
			case len(e.Referrers) > 0:
				e.Content = ContentReferrers
				for _, r := range e.Referrers {
					ref := r.Digest.String()
					if r.Tag != "" {
						ref = r.Tag
					}
					jobs = append(jobs, mirror.Job{SrcRepo: v.Name, DstRepo: v.Name, Ref: ref})
				}
			case ch.state[k]:
				e.Content = ContentState
			default:
				continue
			}
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return entries, jobs, nil
}

// dedupReferrers keeps each referrer once, with its cosign tag when one
// of its mentions has it; the tag last pushed wins.
func dedupReferrers(in []Referrer) []Referrer {
	by := map[digest.Digest]int{}
	var out []Referrer
	for _, r := range in {
		if i, ok := by[r.Digest]; ok {
			if r.Tag != "" {
				out[i].Tag = r.Tag
			}
			continue
		}
		by[r.Digest] = len(out)
		out = append(out, r)
	}
	return out
}

// history is the audit records about e's version (its target), the
// newest maxAuditPerVersion, only those after the cursor when there is one.
func (s *Service) history(ctx context.Context, e *Entry, since *Cursor) ([]AuditEntry, error) {
	target := e.Name + ":" + e.Version
	recs, err := s.store.ListAudit(ctx, storage.AuditQuery{TargetPrefix: target, Limit: 4 * maxAuditPerVersion})
	if err != nil {
		return nil, err
	}
	var out []AuditEntry
	for _, r := range recs {
		if r.Target != target || (since != nil && r.ID <= since.Position) {
			continue // a longer version with this prefix (1.0.0-rc.1), or carried before
		}
		out = append(out, AuditEntry{ID: r.ID, At: r.At, Actor: r.Actor, Action: r.Action, Target: r.Target, Digest: r.Digest, Details: r.Details})
		if len(out) == maxAuditPerVersion {
			break
		}
	}
	slices.Reverse(out) // oldest first, as history reads
	return out, nil
}

// assemble makes the header (document, manifest, signature, index.json)
// and the list of files of the archive.
func (s *Service) assemble(doc *Document, g *graph, plan *planSink) (*Export, error) {
	docBytes, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	docDesc := oci.NewDescriptor(MediaTypeDocument, digest.FromBytes(digest.SHA256, docBytes), int64(len(docBytes)))
	docDesc.Annotations = map[string]string{oci.AnnotationTitle: "bundle.json"}
	m := oci.NewManifest(emptyConfig(), []oci.Descriptor{docDesc})
	m.ArtifactType = ArtifactType
	m.Annotations = map[string]string{oci.AnnotationCreated: doc.ExportedAt.Format("2006-01-02T15:04:05Z07:00")}
	mBytes, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	bundleDesc := headerDescriptor(ArtifactType, digest.FromBytes(digest.SHA256, mBytes), int64(len(mBytes)))
	x := &Export{Digest: digest.Digest(bundleDesc.Digest), Doc: doc, s: s, blobRepo: plan.blobRepo}
	x.Cursor = CursorOf(doc, x.Digest)
	// The manifests first, then what they name: an import learns what to
	// expect before it arrives.
	header := []exportFile{dataFile(mBytes)}
	tail := []exportFile{dataFile(emptyJSON), dataFile(docBytes)}
	var sigDesc *oci.Descriptor
	if s.signer != nil {
		sm, payload, err := s.signer.sign(bundleDesc, doc)
		if err != nil {
			return nil, fmt.Errorf("signing the bundle: %w", err)
		}
		d := headerDescriptor(oci.ArtifactTypeCosignSignature, digest.FromBytes(digest.SHA256, sm), int64(len(sm)))
		sigDesc, x.KeyID = &d, s.signer.KeyID
		header = append(header, dataFile(sm))
		tail = append(tail, dataFile(payload))
	}
	header = append(header, tail...)
	idx, fallbacks := g.index(bundleDesc, sigDesc, doc.Versions)
	x.files = append([]exportFile{{name: "oci-layout", data: []byte(layoutFile)}, {name: "index.json", data: idx.bytes()}}, header...)
	written := map[digest.Digest]bool{}
	for _, f := range header {
		written[f.d] = true
	}
	// Manifests before blobs: an import learns the size of each blob
	// before the blob arrives, and checks it as it streams.
	for _, d := range sortedKeys(g.manifests) {
		if !written[d] {
			written[d] = true
			x.files = append(x.files, exportFile{name: blobPath(d), d: d, size: g.manifests[d].desc.Size, repo: plan.manifests[d].repo, manifest: true})
		}
	}
	for _, d := range sortedKeys(fallbacks) {
		if !written[d] {
			written[d] = true
			x.files = append(x.files, dataFile(fallbacks[d]))
		}
	}
	for _, d := range sortedKeys(g.blobs) {
		if !written[d] {
			written[d] = true
			x.files = append(x.files, exportFile{name: blobPath(d), d: d, size: g.blobs[d], repo: plan.blobRepo[d]})
		}
	}
	sizes := make([]int64, len(x.files))
	for i := range x.files {
		if x.files[i].data != nil {
			x.files[i].size = int64(len(x.files[i].data))
		}
		sizes[i] = x.files[i].size
	}
	x.Size = tarSize(sizes)
	return x, nil
}

// dataFile is a blob of the header, or a fallback index: bytes made here.
func dataFile(b []byte) exportFile {
	d := digest.FromBytes(digest.SHA256, b)
	return exportFile{name: blobPath(d), d: d, data: b, size: int64(len(b))}
}

func sortedKeys[V any](m map[digest.Digest]V) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Items is how many files the archive has.
func (x *Export) Items() int { return len(x.files) }

// Write streams the archive to w, reading each blob and manifest from the
// registry and checking it against its digest on the way (content altered
// at rest fails the export rather than the import). Memory stays flat:
// one buffer, whatever the bundle's size. On success it records the
// export in the audit trail, as actor.
func (x *Export) Write(ctx context.Context, w io.Writer, actor string) error {
	tw := newTarWriter(w, x.Doc.ExportedAt)
	local := mirror.NewLocal(x.s.reg, "")
	for _, f := range x.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.writeFile(ctx, tw, local, f); err != nil {
			return err
		}
	}
	if err := tw.close(); err != nil {
		return err
	}
	details := map[string]string{
		"source": x.Doc.Source, "sequence": strconv.FormatInt(x.Doc.Sequence, 10),
		"versions": strconv.Itoa(x.Doc.Totals.Versions), "bytes": strconv.FormatInt(x.Doc.Totals.Bytes, 10),
		"cursor": strconv.FormatInt(x.Doc.Cursor, 10), "signedBy": x.KeyID,
	}
	if x.Doc.Previous != "" {
		details["previous"] = string(x.Doc.Previous)
	}
	return x.s.store.AppendAudit(context.WithoutCancel(ctx), &storage.AuditRecord{Actor: actor, Action: ActionExport,
		Target: "bundle:" + x.Doc.Chain, Digest: x.Digest, Details: details})
}

func (x *Export) writeFile(ctx context.Context, tw *tarWriter, local *mirror.Local, f exportFile) error {
	if f.data != nil {
		return tw.file(f.name, f.size, bytes.NewReader(f.data))
	}
	if f.manifest {
		payload, _, err := local.Manifest(ctx, f.repo, f.d)
		if err != nil {
			return fmt.Errorf("manifest %s of %s: %w", f.d, f.repo, err)
		}
		if got := digest.FromBytes(f.d.Algorithm(), payload); got != f.d {
			return fmt.Errorf("manifest %s of %s: the stored bytes hash to %s", f.d, f.repo, got)
		}
		return tw.file(f.name, f.size, bytes.NewReader(payload))
	}
	rc, err := local.Blob(ctx, f.repo, f.d)
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", f.d, f.repo, err)
	}
	defer rc.Close()
	h := digest.NewHash(f.d.Algorithm())
	if err := tw.file(f.name, f.size, io.TeeReader(rc, h)); err != nil {
		return fmt.Errorf("blob %s of %s: %w", f.d, f.repo, err)
	}
	if got := digest.FromHash(f.d.Algorithm(), h); got != f.d {
		return fmt.Errorf("%w: blob %s of %s: the stored bytes hash to %s", errStoreCorrupt, f.d, f.repo, got)
	}
	return nil
}

// errStoreCorrupt: what the registry holds does not match its digest.
var errStoreCorrupt = errors.New("stored content is corrupt")
