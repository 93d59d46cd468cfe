package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Actor is who the changes of a run are recorded as, in the pack history
// and the audit trail.
const Actor = "retention"

// Store is what a run reads and records: the pack index and the runs.
type Store interface {
	ListPackVersions(ctx context.Context, q storage.PackQuery) ([]storage.PackVersion, error)
	GetPackVersion(ctx context.Context, name, version string) (*storage.PackVersion, error)
	PackLifecycle(ctx context.Context, name, version string) ([]storage.PackStatusChange, error)
	storage.RetentionRuns
}

// Lifecycle moves versions as the packs API does (*pack.Service): the
// change is checked, indexed and audited there.
type Lifecycle interface {
	SetLifecycle(ctx context.Context, name, version string, r pack.LifecycleRequest) ([]pack.Version, error)
}

// Deleter deletes a version's tag as DELETE /v2/ does (*registry.Registry):
// the pack index records the version as deleted and garbage collection
// frees its bytes once nothing else holds them.
type Deleter interface {
	DeleteTag(ctx context.Context, repo, tag string) error
}

// Service applies the rules of a Config.
type Service struct {
	cfg      Config
	store    Store
	lc       Lifecycle
	del      Deleter
	verifier pack.VerificationReporter
	log      *slog.Logger
	now      func() time.Time
	observe  []func(*Report)
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithObserver calls f with every finished run (metrics).
func WithObserver(f func(*Report)) Option {
	return func(s *Service) { s.observe = append(s.observe, f) }
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service. verifier says whether a version is signed and
// verified ("verified", as the packs API reports it); nil: none is.
func New(c Config, store Store, lc Lifecycle, del Deleter, verifier pack.VerificationReporter, opts ...Option) *Service {
	s := &Service{cfg: c, store: store, lc: lc, del: del, verifier: verifier, log: slog.Default(),
		now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Options say how to run.
type Options struct {
	DryRun  bool
	Trigger string // recorded: "api", "schedule"
}

// Report is a finished run: its record and its plan, each item with what
// came of it.
type Report struct {
	storage.RetentionRun
	Items []Item
}

// MaxItems caps the items a report lists; a run covering more versions
// changes them all, and its counts are whole.
const MaxItems = 10000

// Run plans at the current time and, unless o.DryRun, applies the plan.
// The run is recorded whatever happens, with its error.
func (s *Service) Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{RetentionRun: storage.RetentionRun{DryRun: o.DryRun, Trigger: o.Trigger, Started: s.now()}}
	err := s.run(ctx, o, rep)
	rep.Finished = s.now()
	rep.Error = storage.RunError(ctx, err)
	if rerr := s.store.RecordRetentionRun(context.WithoutCancel(ctx), &rep.RetentionRun); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if len(rep.Items) > MaxItems {
		rep.Items = rep.Items[:MaxItems]
	}
	for _, f := range s.observe {
		f(rep)
	}
	c := rep.Counts
	s.log.InfoContext(ctx, "retention", "id", rep.ID, "dryRun", o.DryRun, "versions", c.Versions, "deprecated", c.Deprecated,
		"archived", c.Archived, "deleted", c.Deleted, "failed", c.Failed, "err", err)
	return rep, err
}

func (s *Service) run(ctx context.Context, o Options, rep *Report) error {
	vs, err := s.versions(ctx)
	if err != nil {
		return err
	}
	items, err := Plan(ctx, s.cfg, rep.Started, vs, s.verified)
	if err != nil {
		return err
	}
	rep.Items = items
	rep.Counts.Versions = len(items)
	ctx = registry.WithActor(ctx, Actor)
	for i := range items {
		it := &items[i]
		if !o.DryRun && it.Action != ActionKeep {
			if err := s.apply(ctx, it); err != nil {
				if ctx.Err() != nil {
					return err // interrupted: not this item's failure
				}
				it.Error = err.Error()
				rep.Counts.Failed++
				continue
			}
		}
		count(&rep.Counts, it.Action)
	}
	if rep.Counts.Failed > 0 {
		return fmt.Errorf("%d of the planned changes failed (see their items)", rep.Counts.Failed)
	}
	return nil
}

func count(c *storage.RetentionCounts, action string) {
	switch action {
	case ActionKeep:
		c.Kept++
	case ActionDeprecate:
		c.Deprecated++
	case ActionArchive:
		c.Archived++
	case ActionDelete:
		c.Deleted++
	}
}

// apply makes one planned change.
func (s *Service) apply(ctx context.Context, it *Item) error {
	reason := "retention rule " + fmt.Sprint(it.Rule) + ": " + it.Reason
	switch it.Action {
	case ActionDeprecate, ActionArchive:
		state := storage.PackDeprecated
		if it.Action == ActionArchive {
			state = storage.PackArchived
		}
		_, err := s.lc.SetLifecycle(ctx, it.Name, it.Version, pack.LifecycleRequest{State: state, Reason: clip(reason)})
		return err
	case ActionDelete:
		// The version must still be the archived content the plan saw:
		// a version brought back or re-pushed since is not deleted.
		v, err := s.store.GetPackVersion(ctx, it.Name, it.Version)
		if err != nil {
			return err
		}
		if v.Status != storage.PackArchived || v.Digest != it.Digest {
			return fmt.Errorf("changed since the plan: now %s at %s", v.Status, v.Digest)
		}
		return s.del.DeleteTag(ctx, it.Name, it.Version)
	}
	return fmt.Errorf("unknown action %q", it.Action)
}

// clip keeps a lifecycle reason within what the packs API accepts.
func clip(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

// versions reads every pack version a rule covers, a page at a time, with
// when the archived ones were archived.
func (s *Service) versions(ctx context.Context) ([]Version, error) {
	if len(s.cfg.Rules) == 0 {
		return nil, nil
	}
	var out []Version
	q := storage.PackQuery{Limit: 1000}
	for {
		page, err := s.store.ListPackVersions(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, pv := range page {
			ri := s.cfg.RuleFor(pv.Name)
			if ri < 0 || pv.Status == storage.PackDeleted {
				continue
			}
			v := Version{Name: pv.Name, Version: pv.Version, Digest: pv.Digest, Status: pv.Status, Created: pv.Created}
			if v.Status == storage.PackArchived && s.cfg.Rules[ri].DeleteArchivedAfter != nil {
				if v.ArchivedAt, err = s.archivedAt(ctx, v.Name, v.Version); err != nil {
					return nil, err
				}
			}
			out = append(out, v)
		}
		if len(page) < q.Limit {
			return out, nil
		}
		last := page[len(page)-1]
		q.BeforeCreated, q.BeforeID = last.Created, last.ID
	}
}

// archivedAt is when a version last entered the archived state.
func (s *Service) archivedAt(ctx context.Context, name, version string) (time.Time, error) {
	hist, err := s.store.PackLifecycle(ctx, name, version)
	if err != nil {
		return time.Time{}, err
	}
	var at time.Time
	for _, h := range hist {
		if h.To == storage.PackArchived {
			at = h.At
		}
	}
	return at, nil
}

func (s *Service) verified(ctx context.Context, name string, d digest.Digest) (bool, error) {
	if s.verifier == nil {
		return false, nil
	}
	r, err := s.verifier.SignatureReport(ctx, name, d)
	if err != nil {
		return false, err
	}
	return r != nil && r.Verification == verifiedWord, nil
}

// verifiedWord is the verification word of a version signed and verified by
// a trusted key or identity (attest's verdict, as the packs API shows it).
const verifiedWord = "verified"

// Runs returns up to n recorded runs, newest first, with ID < before.
func (s *Service) Runs(ctx context.Context, before int64, n int) ([]storage.RetentionRun, error) {
	return s.store.RetentionRuns(ctx, before, n)
}
