package attest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Indexing is durable. Every change of the registry, and every key added,
// is recorded in the metadata store's outbox by the transaction that makes
// it (storage.Outbox), and attest is one of its consumers (Subscribe). One
// worker (Run) takes the pending events in order, does the indexing job
// each stands for, and acknowledges them. However long a check takes,
// however many pushes arrive meanwhile, whenever the process dies, the
// events wait in the table: nothing is dropped, and a restart carries on
// after the last acknowledgement. Jobs are idempotent (they re-read what
// they index), so an event handled twice (a crash before its
// acknowledgement) costs only the work.
//
// One worker at a time drains, under a lease shared by the replicas:
// events are handled in the order they were recorded, so a signature's
// deletion is never overtaken by its own indexing on another replica.

// Consumer is attest's name among the consumers of the outbox.
const Consumer = "attest"

type jobKind int

const (
	jobIndex   jobKind = iota // check referrer d (hint: tag subject; tagged: tag points at it)
	jobDelete                 // manifest d is gone: drop its records
	jobUntag                  // the tag-schema tag of hint for kind was deleted
	jobSubject                // manifest d arrived: re-check records waiting for it
	jobRecheck                // the key ring gained a key: re-check unverifiable records
	jobKeyless                // the trusted roots changed: re-check keyless records
)

type job struct {
	kind   jobKind
	repo   string
	d      digest.Digest
	hint   digest.Digest
	tagged bool
	what   string // jobUntag: the record kind
}

const (
	// jobTimeout bounds one job, so a stuck blob read cannot stop indexing.
	jobTimeout = 2 * time.Minute
	// indexLease is the lease the draining worker holds; leaseTTL is how
	// long after a crash (the last renewal) another worker takes over.
	indexLease = "attest.indexer"
	leaseTTL   = 10 * time.Second
	// tick is how often the queue is looked at without a wake-up: for the
	// events of other replicas, and to retry after an outage.
	tick = 2 * time.Second
	// settleTime is the least time between two drains started by
	// wake-ups. A drain is a read of the queue and an acknowledgement (a
	// commit) at least: one per manifest PUT doubled a client's commits.
	// Waiting this long after the last drain lets one drain take all the
	// PUTs that committed meanwhile; a wake-up after a quiet spell drains
	// at once.
	settleTime = 20 * time.Millisecond
)

// cosignTagTargets matches the targets (repo:tag) of the tags TagSubject
// reads a subject from, and a few more: only sha256 fits in a tag
// (oci.ParseCosignTag).
const cosignTagTargets = "%:sha256-%"

// jobOf is the indexing job an outbox event stands for; ok is false when
// the event asks for none.
func jobOf(se storage.Event) (j job, ok bool) {
	switch se.Action {
	case ActionKeyAdd:
		return job{kind: jobRecheck}, true
	case ActionRootAdd, ActionRootDelete:
		return job{kind: jobKeyless}, true
	}
	e, ok := registry.DecodeEvent(se)
	if !ok {
		return job{}, false
	}
	switch e.Action {
	case registry.ActionManifestPush:
		if e.Subject != "" {
			return job{kind: jobIndex, repo: e.Repo, d: e.Digest}, true
		}
		return job{kind: jobSubject, repo: e.Repo, d: e.Digest}, true
	case registry.ActionTagMove:
		if subject, _, ok := TagSubject(e.Tag); ok {
			return job{kind: jobIndex, repo: e.Repo, d: e.Digest, hint: subject, tagged: true}, true
		}
	case registry.ActionManifestDelete:
		return job{kind: jobDelete, repo: e.Repo, d: e.Digest}, true
	case registry.ActionTagDelete:
		if subject, kind, ok := TagSubject(e.Tag); ok {
			return job{kind: jobUntag, repo: e.Repo, hint: subject, what: kind}, true
		}
	}
	return job{}, false
}

// Subscribe registers attest as a consumer of the store's outbox, and has
// the worker woken whenever events are committed. Call it before the
// registry serves: events recorded before it are not indexed.
func (s *Service) Subscribe(ctx context.Context) error {
	// Blob events ask for no job (jobOf): not queueing them spares every
	// blob push a wake-up, a lease renewal and an acknowledgement here.
	// Nor does a tag move but of cosign's tags (TagSubject): queued, each
	// manifest push by tag cost a queue row more, written and deleted.
	if err := s.st.AddEventConsumer(ctx, Consumer, registry.ActionBlobPush, registry.ActionBlobMount, registry.ActionBlobDelete,
		storage.SkipExcept(registry.ActionTagMove, cosignTagTargets)); err != nil {
		return fmt.Errorf("attest: subscribing to the outbox: %w", err)
	}
	s.st.OnEvents(func(context.Context) { s.wake() })
	return nil
}

func (s *Service) wake() {
	select {
	case s.wakeup <- struct{}{}:
	default: // a wake-up is pending already: that drain will see the event
	}
}

// Run works the queue until ctx ends, on a wake-up and every tick. Every
// tick it also re-reads the trusted root files that changed; at the start
// and after such a change it re-checks the keyless signatures checked
// under other roots (recheckKeyless), in this replica, which reads its
// own files.
func (s *Service) Run(ctx context.Context) {
	// Kept across drains: a lease taken afresh on every wake-up was one
	// more commit for each write the worker follows.
	lease := storage.NewKeptLease(s.st, indexLease, storage.NewHolder(), leaseTTL)
	t := time.NewTicker(tick)
	defer t.Stop()
	s.keylessRecheck(ctx)
	// Hand the queue over now rather than when the lease expires.
	defer lease.Release(ctx)
	for {
		s.settle.Started()
		s.drain(ctx, lease)
		select {
		case <-ctx.Done():
			return
		case <-s.wakeup:
			if !s.settle.Wait(ctx) {
				return
			}
		case <-t.C:
			changed, err := s.ReloadTrustedRoots(ctx)
			if err != nil {
				s.log.WarnContext(ctx, "attest: trusted roots (the last good version of each stays in use)", "err", err)
			}
			if changed {
				s.keylessRecheck(ctx)
			}
		}
	}
}

func (s *Service) keylessRecheck(ctx context.Context) {
	if err := s.recheckKeyless(ctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "attest: re-checking keyless signatures", "err", err)
	}
	s.progressed()
}

// drain handles the pending events, a batch at a time, while this worker
// holds the lease. An outage leaves the rest queued for the next pass;
// a job that fails otherwise is logged and acknowledged, as the next
// event about the same manifest (or packreg verify) redoes it.
func (s *Service) drain(ctx context.Context, lease *storage.KeptLease) {
	// Most wake-ups find nothing (another write's events, skipped here, or
	// already drained): a read says so without touching the lease. A
	// lease still fresh costs nothing to run under, and the drain's own
	// read says the same: under steady pushes that peek was a statement
	// per drain for nothing.
	if !lease.Fresh() {
		if evs, err := s.st.PendingEvents(ctx, Consumer, 1); err == nil && len(evs) == 0 {
			return
		}
	}
	if _, err := lease.Run(ctx, func(wctx context.Context) error {
		s.drainHeld(ctx, wctx)
		return nil
	}); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "attest: indexing lease", "err", err)
	}
}

// drainHeld is drain under the lease: wctx ends when the lease is lost.
func (s *Service) drainHeld(ctx, wctx context.Context) {
	for wctx.Err() == nil {
		evs, err := s.st.PendingEvents(wctx, Consumer, s.batch())
		if err != nil || len(evs) == 0 {
			if err != nil && wctx.Err() == nil {
				s.log.WarnContext(ctx, "attest: reading the indexing queue", "err", err)
			}
			return
		}
		done := make([]int64, 0, len(evs))
		quiet := newQuietSubjects(evs)
		for i, se := range evs {
			var err error
			if !quiet.skip(wctx, s.st, i) {
				err = s.handle(wctx, se)
				quiet.ran(i)
			}
			if err != nil && (wctx.Err() != nil || errors.Is(err, storage.ErrUnavailable)) {
				break // left queued: retried on the next pass
			}
			if err != nil {
				s.log.WarnContext(ctx, "attest: indexing failed", "event", se.Action, "target", se.Target, "digest", se.Digest, "err", err)
			}
			done = append(done, se.ID)
		}
		// Acknowledged even when ctx ended: the work is done.
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = s.st.AckEvents(actx, Consumer, done...)
		acancel()
		if err != nil {
			s.log.WarnContext(ctx, "attest: acknowledging indexed events (they will be indexed again)", "err", err)
			return
		}
		s.progressed()
		// A short batch was the whole queue when it was read. Events
		// committed since then woke the worker: the next drain, after
		// settling, takes them together, where reading again at once took
		// each PUT of a steady client alone (an acknowledgement each).
		if len(done) < len(evs) || len(evs) < s.batch() {
			return
		}
	}
}

func (s *Service) handle(ctx context.Context, se storage.Event) error {
	j, ok := jobOf(se)
	if !ok {
		return nil
	}
	jctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	return s.do(jctx, j)
}

// batch is how many events the worker takes (and acknowledges) at once.
func (s *Service) batch() int {
	if s.cfg.QueueSize > 0 {
		return s.cfg.QueueSize
	}
	return DefaultQueueSize
}

// progressed tells waiters (Wait) that events were acknowledged.
func (s *Service) progressed() { s.progress.Signal() }

// Wait returns when no event waits for indexing any more, or ctx ends.
// Tests use it to read records deterministically.
func (s *Service) Wait(ctx context.Context) error {
	return s.progress.Wait(ctx, s.st, Consumer)
}

func (s *Service) do(ctx context.Context, j job) error {
	switch j.kind {
	case jobIndex:
		_, err := s.Index(ctx, j.repo, j.d, j.hint, j.tagged)
		return err
	case jobDelete:
		return s.st.DeleteAttestRecords(ctx, j.repo, "", j.d)
	case jobUntag:
		_, err := s.st.SupersedeAttestRecords(ctx, j.repo, j.hint, j.what, FormatCosignTag, "", s.now().UTC())
		return err
	case jobSubject:
		return s.recheckSubject(ctx, j.repo, j.d)
	case jobRecheck:
		return s.recheckUnverifiable(ctx)
	case jobKeyless:
		return s.recheckKeyless(ctx)
	}
	return nil
}

// recheckSubject re-checks the records about subject that could not be
// verified, which includes bundles signing a manifest not pushed yet.
func (s *Service) recheckSubject(ctx context.Context, repo string, subject digest.Digest) error {
	recs, err := s.st.AttestRecordsBySubject(ctx, repo, subject, s.cfg.maxRecords()+1)
	if err != nil || len(recs) == 0 {
		return err
	}
	r, err := s.loadRing(ctx)
	if err != nil {
		return err
	}
	done := map[digest.Digest]bool{}
	for _, rec := range recs {
		if rec.Status != storage.SigUnverifiable || done[rec.Referrer] {
			continue
		}
		done[rec.Referrer] = true
		if _, err := s.index(ctx, r, repo, rec.Referrer, rec.Subject, false); err != nil {
			return err
		}
	}
	return nil
}

// recheckUnverifiable re-checks every record no key could verify: after a
// key is added, some may verify with it.
func (s *Service) recheckUnverifiable(ctx context.Context) error {
	return s.recheck(ctx, func(*ring, storage.AttestRecord) bool { return true }, storage.SigUnverifiable)
}

// recheck walks the records of each status and checks again, once per
// referrer and subject, those that want selects (given the ring of this
// re-check). A referrer that fails is logged; the walk goes on.
func (s *Service) recheck(ctx context.Context, want func(*ring, storage.AttestRecord) bool, statuses ...string) error {
	r, err := s.loadRing(ctx)
	if err != nil {
		return err
	}
	type ref struct {
		repo       string
		subject, d digest.Digest
	}
	done := map[ref]bool{}
	for _, status := range statuses {
		var after storage.AttestCursor
		for {
			recs, err := s.st.AttestRecordsWithStatus(ctx, status, after, 256)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				k := ref{rec.Repo, rec.Subject, rec.Referrer}
				if done[k] || !want(r, rec) {
					continue
				}
				done[k] = true
				if _, err := s.index(ctx, r, rec.Repo, rec.Referrer, rec.Subject, false); err != nil {
					s.log.WarnContext(ctx, "attest: re-check failed", "repo", rec.Repo, "referrer", rec.Referrer, "err", err)
				}
			}
			if len(recs) < 256 {
				break
			}
			last := recs[len(recs)-1]
			after = storage.AttestCursor{Repo: last.Repo, Subject: last.Subject, Referrer: last.Referrer, Index: last.Index}
		}
	}
	return nil
}
