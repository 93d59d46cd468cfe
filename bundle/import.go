package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// ImportOptions tune one import.
type ImportOptions struct {
	// AllowUnsigned takes a bundle no key trusted for bundles vouches for
	// (unsigned, or signed by an unknown key); the audit trail says so.
	AllowUnsigned bool
	// Actor names who imports, in the audit trail and on what is pushed.
	Actor string
}

// Report is an import as the API shows it: its state, the bundle, its
// progress and, once done, what became of each version.
type Report struct {
	ID        string          `json:"id"`
	State     string          `json:"state"` // storage.Import*
	Actor     string          `json:"actor"`
	Bundle    *BundleInfo     `json:"bundle,omitempty"`
	Progress  Progress        `json:"progress"`
	Versions  []VersionResult `json:"versions"`
	Error     *apierr.Error   `json:"error,omitempty"`
	AppliedAt *time.Time      `json:"appliedAt,omitempty"` // alreadyApplied: when it was
	Created   time.Time       `json:"createdAt"`
	Updated   time.Time       `json:"updatedAt"`
	Finished  *time.Time      `json:"finishedAt,omitempty"`
}

// BundleInfo is what an import read of its bundle's header.
type BundleInfo struct {
	Digest     digest.Digest `json:"digest"`
	Source     string        `json:"source"`
	ExportedAt time.Time     `json:"exportedAt"`
	Chain      string        `json:"chain"`
	Sequence   int64         `json:"sequence"`
	Previous   digest.Digest `json:"previous,omitempty"`
	Totals     Totals        `json:"totals"`
	// SignedBy is the key that vouched for it; Unsigned says none did and
	// the import allowed that, SignatureProblem why none did.
	SignedBy         *KeyRef `json:"signedBy,omitempty"`
	Unsigned         bool    `json:"unsigned,omitempty"`
	SignatureProblem string  `json:"signatureProblem,omitempty"`
}

// KeyRef names a key of the key ring.
type KeyRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Progress counts an import's work: the archive's entries and bytes as
// they stream in, then the versions and bytes published.
type Progress struct {
	ItemsReceived  int   `json:"itemsReceived"`
	BytesReceived  int64 `json:"bytesReceived"`
	VersionsTotal  int   `json:"versionsTotal"`
	VersionsDone   int   `json:"versionsDone"`
	BlobsCopied    int64 `json:"blobsCopied"`
	BytesCopied    int64 `json:"bytesCopied"`
	ManifestsAdded int64 `json:"manifestsAdded"`
}

// What became of a version.
const (
	ResultApplied  = "applied"  // published here
	ResultPresent  = "present"  // here already with the same digest; its referrers and state applied
	ResultConflict = "conflict" // here with another digest (or bound to one): left as it is
	ResultFailed   = "failed"
	ResultAbsent   = "absent" // a state for a version this registry does not have
)

// VersionResult is what an import did with one version.
type VersionResult struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	Content string        `json:"content"`
	Status  string        `json:"status"`
	Result  string        `json:"result"`
	Error   string        `json:"error,omitempty"`
}

// maxReportVersions bounds the versions a stored report lists.
const maxReportVersions = 2000

// stale is how long an import may go without progress before a reader
// takes its server for gone (it saves progress every few seconds).
const stale = time.Minute

// errAlreadyApplied stops reading a bundle this registry applied before.
type errAlreadyApplied struct{ b *storage.AppliedBundle }

func (e errAlreadyApplied) Error() string { return "already applied" }

// Import receives a bundle from r, checks it whole and, when it passes,
// publishes it in the background: the report it returns is publishing
// (poll Get), or alreadyApplied. A refused bundle changes nothing that is
// visible; the error says what failed (a *Problem), and the import's
// record keeps it.
func (s *Service) Import(ctx context.Context, r io.Reader, o ImportOptions) (*Report, error) {
	now := s.now()
	rep := &Report{ID: randomID(12), State: storage.ImportReceiving, Actor: o.Actor, Versions: []VersionResult{}, Created: now, Updated: now}
	if err := s.save(ctx, rep); err != nil {
		return nil, err
	}
	sp, err := newFileSpool(s.spoolDir)
	if err != nil {
		return nil, err
	}
	handed := false
	defer func() {
		if !handed {
			sp.close()
		}
	}()
	counting := &progressReader{r: r, every: 2 * time.Second, tick: func(n int64) {
		rep.Progress.BytesReceived = n
		_ = s.save(ctx, rep)
	}}
	st, err := readBundle(ctx, counting, sp, readOptions{Limits: s.limits, admit: func(h *Header) error {
		return s.admit(ctx, rep, h, o)
	}})
	rep.Progress.BytesReceived = counting.n
	var already errAlreadyApplied
	switch {
	case errors.As(err, &already):
		rep.State, rep.AppliedAt = storage.ImportAlreadyApplied, &already.b.Applied
		s.finish(rep)
		return rep, s.save(ctx, rep)
	case err != nil:
		return nil, s.refuse(ctx, rep, err, o)
	}
	rep.Progress.ItemsReceived = st.items
	rep.Progress.VersionsTotal = len(st.hdr.Doc.Versions)
	rep.State = storage.ImportPublishing
	if err := s.save(ctx, rep); err != nil {
		return nil, err
	}
	// The answer is the report as it stands now: from the next line on,
	// publish owns rep and changes it.
	c := *rep
	handed = s.background(func(ctx context.Context) {
		defer sp.close()
		s.publish(ctx, st, rep, o)
	})
	if !handed {
		rep.State = storage.ImportFailed
		rep.Error = apierr.New(503, apierr.Unavailable, "the server is shutting down; nothing was published: import the bundle again")
		s.finish(rep)
		if err := s.save(context.WithoutCancel(ctx), rep); err != nil {
			s.log.ErrorContext(ctx, "saving an import", "import", rep.ID, "err", err)
		}
		return nil, fmt.Errorf("bundle import %s: the server is shutting down: %w", rep.ID, storage.ErrUnavailable)
	}
	return &c, nil
}

// admit judges a bundle's header: trusted, and next in its chain.
func (s *Service) admit(ctx context.Context, rep *Report, h *Header, o ImportOptions) error {
	d := h.Doc
	rep.Bundle = &BundleInfo{Digest: h.Digest, Source: d.Source, ExportedAt: d.ExportedAt, Chain: d.Chain,
		Sequence: d.Sequence, Previous: d.Previous, Totals: d.Totals}
	k, err := verifyHeader(ctx, s.verifier, h)
	switch {
	case err == nil:
		rep.Bundle.SignedBy = &KeyRef{ID: k.ID, Name: k.Name}
	case !o.AllowUnsigned:
		return problem(ErrUntrusted, "", h.Digest, "no key trusted for bundles vouches for this bundle (%v); "+
			"add the exporting registry's key with `packreg keys add --usage bundles`, or import with --allow-unsigned", err)
	default:
		rep.Bundle.Unsigned, rep.Bundle.SignatureProblem = true, err.Error()
	}
	if b, err := s.store.AppliedBundle(ctx, h.Digest); err == nil {
		return errAlreadyApplied{b}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := s.inOrder(ctx, d); err != nil {
		return err
	}
	rep.Updated = s.now()
	return s.save(ctx, rep)
}

// inOrder refuses a bundle that does not continue its chain here.
func (s *Service) inOrder(ctx context.Context, d *Document) error {
	head, err := s.store.ChainHead(ctx, d.Chain)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	var applied int64
	if head != nil {
		applied = head.Sequence
	}
	details := map[string]any{"chain": d.Chain, "sequence": d.Sequence, "applied": applied}
	out := func(format string, args ...any) error {
		p := problem(ErrOutOfOrder, "", "", format, args...)
		p.Details = details
		return p
	}
	switch {
	case d.Sequence == 1 && head == nil:
		return nil
	case d.Sequence == 1:
		return out("chain %s began here with another bundle %d (%s)", d.Chain, head.Sequence, head.Digest)
	case head == nil || head.Sequence < d.Sequence-1:
		details["needs"], details["needsDigest"] = d.Sequence-1, d.Previous
		return out("bundle %d of chain %s continues bundle %d (%s), which is not applied here: this registry has applied %d bundle(s) of the chain; import bundle %d first",
			d.Sequence, d.Chain, d.Sequence-1, d.Previous, applied, applied+1)
	case head.Sequence == d.Sequence-1 && head.Digest == d.Previous:
		return nil
	case head.Sequence == d.Sequence-1:
		return out("bundle %d of chain %s continues bundle %s, but bundle %d applied here is %s", d.Sequence, d.Chain, d.Previous, head.Sequence, head.Digest)
	}
	return out("chain %s is at bundle %d here; bundle %d is another than the one applied", d.Chain, head.Sequence, d.Sequence)
}

// refuse records a refused import and says why.
func (s *Service) refuse(ctx context.Context, rep *Report, err error, o ImportOptions) error {
	ctx = context.WithoutCancel(ctx)
	var p *Problem
	if !errors.As(err, &p) {
		rep.State = storage.ImportFailed
		rep.Error = apierr.New(500, apierr.Internal, "receiving the bundle: %v", err)
		s.finish(rep)
		if serr := s.save(ctx, rep); serr != nil {
			s.log.ErrorContext(ctx, "saving an import", "import", rep.ID, "err", serr)
		}
		return err
	}
	var ae *apierr.Error
	errors.As(apiError(p), &ae)
	rep.State, rep.Error = storage.ImportRefused, ae
	s.finish(rep)
	if serr := s.save(ctx, rep); serr != nil {
		s.log.ErrorContext(ctx, "saving an import", "import", rep.ID, "err", serr)
	}
	rec := &storage.AuditRecord{Actor: o.Actor, Action: ActionRefuse, Target: "bundle",
		Details: map[string]string{"import": rep.ID, "reason": clipTo(p.Error(), 1000), "allowUnsigned": strconv.FormatBool(o.AllowUnsigned)}}
	if rep.Bundle != nil {
		rec.Target, rec.Digest = "bundle:"+rep.Bundle.Chain, rep.Bundle.Digest
	}
	if serr := s.store.AppendAudit(ctx, rec); serr != nil {
		s.log.ErrorContext(ctx, "recording a refused import", "import", rep.ID, "err", serr)
	}
	if p.Details == nil {
		p.Details = map[string]any{}
	}
	p.Details["importId"] = rep.ID
	return p
}

// publish copies the bundle's versions into the registry, referrers
// before each manifest and its tag last (the copy engine's order), then
// applies their states, then records the import and its place in the
// chain, with its audit records, in one transaction.
func (s *Service) publish(ctx context.Context, st *staged, rep *Report, o ImportOptions) {
	ctx = registry.WithActor(ctx, o.Actor)
	doc := st.hdr.Doc
	local := mirror.NewLocal(s.reg, o.Actor)
	results := make([]VersionResult, len(doc.Versions))
	var (
		jobs  []mirror.Job
		owner []int // job → version
	)
	for i, e := range doc.Versions {
		results[i] = VersionResult{Name: e.Name, Version: e.Version, Digest: e.Digest, Content: e.Content, Status: e.Status, Result: ResultApplied}
		switch e.Content {
		case ContentFull:
			cur, err := local.Resolve(ctx, e.Name, e.Version)
			switch {
			case err == nil && cur.Digest.String() != e.Digest.String():
				results[i].Result, results[i].Error = ResultConflict, fmt.Sprintf("here it is %s", cur.Digest)
				continue
			case err == nil:
				results[i].Result = ResultPresent
			case !errors.Is(err, mirror.ErrNotFound) && !errors.Is(err, mirror.ErrDenied):
				results[i].Result, results[i].Error = ResultFailed, err.Error()
				continue
			}
			jobs, owner = append(jobs, mirror.Job{SrcRepo: e.Name, DstRepo: e.Name, Ref: e.Version}), append(owner, i)
		case ContentReferrers:
			results[i].Result = ResultPresent
			for _, r := range e.Referrers {
				ref := r.Digest.String()
				if r.Tag != "" {
					ref = r.Tag
				}
				jobs, owner = append(jobs, mirror.Job{SrcRepo: e.Name, DstRepo: e.Name, Ref: ref}), append(owner, i)
			}
		case ContentState:
			results[i].Result = ResultPresent
		}
	}
	counts := &mirror.Counts{}
	stop := s.heartbeat(ctx, rep, counts, results)
	eng := mirror.NewEngine(st, local, mirror.EngineOptions{Logger: s.log, Counts: counts})
	for k, r := range eng.Run(ctx, jobs, nil) {
		i := owner[k]
		if r.Err == nil || results[i].Result == ResultFailed || results[i].Result == ResultConflict {
			continue
		}
		if denied(r.Err) && doc.Versions[i].Content == ContentFull && r.Ref == doc.Versions[i].Version {
			// The version is bound to another digest here (immutable
			// versions: deleted, or claimed by a concurrent push).
			results[i].Result, results[i].Error = ResultConflict, r.Err.Error()
			continue
		}
		results[i].Result, results[i].Error = ResultFailed, r.Err.Error()
	}
	if ctx.Err() == nil {
		s.applyStates(ctx, doc, results)
	}
	stop()
	s.conclude(ctx, st, rep, results, counts, o)
}

// denied reports whether the registry refused a push (403): a tag claim.
func denied(err error) bool {
	return errors.Is(err, oci.ErrDenied) || errors.Is(err, mirror.ErrDenied)
}

// applyStates makes each version's state the bundle's: the copy follows
// its primary, archived included (through a forced active when it comes
// back), as a mirror's does.
func (s *Service) applyStates(ctx context.Context, doc *Document, results []VersionResult) {
	for i, e := range doc.Versions {
		r := &results[i]
		if r.Result == ResultConflict || r.Result == ResultFailed {
			continue
		}
		cur, err := s.currentState(ctx, e)
		if err != nil {
			r.Result, r.Error = ResultFailed, err.Error()
			continue
		}
		switch {
		case cur == "":
			if e.Content == ContentState {
				r.Result = ResultAbsent
			}
			continue
		case cur == e.Status || cur == storage.PackDeleted || s.lifecycle == nil:
			continue
		}
		reason := e.StatusReason
		if reason == "" {
			reason = "as in bundle " + string(doc.Versions[i].Digest)
		}
		for _, step := range mirror.LifecycleSteps(cur, e.Status) {
			if err := s.lifecycle.SetPackState(ctx, e.Name, e.Version, step.State, reason); err != nil {
				r.Result, r.Error = ResultFailed, fmt.Sprintf("state %s: %v", step.State, err)
				break
			}
		}
	}
}

// currentState is the state of e's version here, "" when it is not here
// with e's digest.
func (s *Service) currentState(ctx context.Context, e Entry) (string, error) {
	vs, err := s.index.ListPackVersions(ctx, storage.PackQuery{Name: e.Name, Digest: e.Digest})
	if err != nil {
		return "", err
	}
	for _, v := range vs {
		if v.Version == e.Version {
			return v.Status, nil
		}
	}
	return "", nil
}

// conclude records how the import ended. It moves the chain only when
// every version was applied or found (a conflict is reported, and the
// chain goes on: the version stays as it is here for good).
func (s *Service) conclude(ctx context.Context, st *staged, rep *Report, results []VersionResult, counts *mirror.Counts, o ImportOptions) {
	ctx = context.WithoutCancel(ctx)
	doc := st.hdr.Doc
	s.progress(rep, counts, results)
	rep.Versions = results[:min(len(results), maxReportVersions)]
	tally := map[string]int{}
	for _, r := range results {
		tally[r.Result]++
	}
	s.finish(rep)
	if tally[ResultFailed] > 0 {
		rep.State = storage.ImportFailed
		rep.Error = apierr.New(500, "IMPORT_FAILED", "%d version(s) could not be published; the others were (import the bundle again to retry: what is there is skipped)", tally[ResultFailed])
		if err := s.save(ctx, rep); err != nil {
			s.log.ErrorContext(ctx, "saving an import", "import", rep.ID, "err", err)
		}
		return
	}
	rep.State = storage.ImportSucceeded
	details := map[string]string{
		"import": rep.ID, "source": doc.Source, "sequence": strconv.FormatInt(doc.Sequence, 10),
		"applied": strconv.Itoa(tally[ResultApplied]), "present": strconv.Itoa(tally[ResultPresent]),
		"conflicts": strconv.Itoa(tally[ResultConflict]),
	}
	if doc.Previous != "" {
		details["previous"] = string(doc.Previous)
	}
	if b := rep.Bundle; b.SignedBy != nil {
		details["signedBy"], details["keyName"] = b.SignedBy.ID, b.SignedBy.Name
	} else {
		details["allowUnsigned"], details["signatureProblem"] = "true", clipTo(b.SignatureProblem, 500)
	}
	recs := []*storage.AuditRecord{{Actor: o.Actor, Action: ActionImport, Target: "bundle:" + doc.Chain, Digest: st.hdr.Digest, Details: details}}
	for i, e := range doc.Versions {
		if results[i].Result != ResultApplied {
			continue
		}
		recs = append(recs, &storage.AuditRecord{Actor: o.Actor, Action: ActionImportVersion, Target: e.Name + ":" + e.Version,
			Digest: e.Digest, Details: map[string]string{"bundle": string(st.hdr.Digest), "source": doc.Source, "history": historyJSON(e.Audit)}})
	}
	imp, err := s.record(rep)
	if err == nil {
		err = s.store.ApplyBundle(ctx, &storage.AppliedBundle{Digest: st.hdr.Digest, Chain: doc.Chain, Sequence: doc.Sequence,
			Previous: doc.Previous, ImportID: rep.ID, Applied: s.now()}, imp, recs...)
	}
	if err != nil {
		rep.State = storage.ImportFailed
		rep.Error = apierr.New(500, "IMPORT_FAILED", "recording the import: %v", err)
		if errors.Is(err, storage.ErrConflict) {
			rep.Error = apierr.New(409, CodeOutOfOrder, "another import moved chain %s meanwhile: %v", doc.Chain, err)
		}
		if serr := s.save(ctx, rep); serr != nil {
			s.log.ErrorContext(ctx, "saving an import", "import", rep.ID, "err", serr)
		}
	}
	s.log.InfoContext(ctx, "bundle imported", "import", rep.ID, "bundle", st.hdr.Digest, "chain", doc.Chain,
		"sequence", doc.Sequence, "state", rep.State, slog.Any("results", tally))
}

// historyJSON is the source's records about a version, as an audit
// detail (bounded: the oldest go first when they do not fit).
func historyJSON(recs []AuditEntry) string {
	for len(recs) > 0 {
		b, err := json.Marshal(recs)
		if err == nil && len(b) <= 16<<10 {
			return string(b)
		}
		recs = recs[1:]
	}
	return "[]"
}

// heartbeat saves the report's progress every few seconds until stop.
func (s *Service) heartbeat(ctx context.Context, rep *Report, counts *mirror.Counts, results []VersionResult) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				s.progress(rep, counts, nil)
				if err := s.save(ctx, rep); err != nil {
					s.log.WarnContext(ctx, "saving import progress", "import", rep.ID, "err", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// progress copies the engine's counts into the report.
func (s *Service) progress(rep *Report, counts *mirror.Counts, results []VersionResult) {
	c := counts.Snapshot()
	rep.Progress.VersionsDone = int(c.VersionsDone + c.VersionsFailed)
	rep.Progress.BlobsCopied, rep.Progress.BytesCopied, rep.Progress.ManifestsAdded = c.BlobsCopied, c.BytesCopied, c.ManifestsCopied
	if results != nil {
		rep.Progress.VersionsDone = len(results)
	}
	rep.Updated = s.now()
}

func (s *Service) finish(rep *Report) {
	now := s.now()
	rep.Updated, rep.Finished = now, &now
}

// record is rep as the store keeps it.
func (s *Service) record(rep *Report) (*storage.BundleImport, error) {
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	imp := &storage.BundleImport{ID: rep.ID, State: rep.State, Actor: rep.Actor, Report: string(b), Created: rep.Created, Updated: rep.Updated}
	if rep.Bundle != nil {
		imp.BundleDigest, imp.Chain, imp.Sequence = rep.Bundle.Digest, rep.Bundle.Chain, rep.Bundle.Sequence
	}
	return imp, nil
}

func (s *Service) save(ctx context.Context, rep *Report) error {
	imp, err := s.record(rep)
	if err != nil {
		return err
	}
	return s.store.PutBundleImport(context.WithoutCancel(ctx), imp)
}

// Get returns one import. One still receiving or publishing whose
// server has not saved progress for a while is reported failed: that
// server stopped (the import may be sent again).
func (s *Service) Get(ctx context.Context, id string) (*Report, error) {
	imp, err := s.store.GetBundleImport(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(imp)
}

func (s *Service) view(imp *storage.BundleImport) (*Report, error) {
	var rep Report
	if err := json.Unmarshal([]byte(imp.Report), &rep); err != nil {
		return nil, fmt.Errorf("import %s: stored report: %w", imp.ID, err)
	}
	if (rep.State == storage.ImportReceiving || rep.State == storage.ImportPublishing) && s.now().Sub(imp.Updated) > stale {
		rep.State = storage.ImportFailed
		rep.Error = apierr.New(500, "IMPORT_FAILED", "interrupted: the server importing it stopped (last progress %s); import the bundle again",
			imp.Updated.Format(time.RFC3339))
	}
	return &rep, nil
}

// List returns up to n imports, the newest first, created before before.
func (s *Service) List(ctx context.Context, before time.Time, n int) ([]*Report, error) {
	imps, err := s.store.ListBundleImports(ctx, before, n)
	if err != nil {
		return nil, err
	}
	out := make([]*Report, 0, len(imps))
	for _, imp := range imps {
		rep, err := s.view(imp)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// progressReader counts the bytes of the archive as they arrive.
type progressReader struct {
	r     io.Reader
	n     int64
	every time.Duration
	last  time.Time
	tick  func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= p.every {
		if !p.last.IsZero() {
			p.tick(p.n)
		}
		p.last = now
	}
	return n, err
}

func clipTo(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
