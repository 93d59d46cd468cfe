package compliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// The worker is one more consumer of the metadata store's outbox: every
// change of the registry (pushes, tags, deletes, publications, lifecycle
// changes), of the key ring and trusted roots, of mirrors, and of the
// rules themselves, is an event it takes in order and acknowledges once
// the versions it concerns are evaluated and their findings stored. An
// event about a repository re-evaluates that repository's versions; one
// about keys, roots, mirrors or rules, every version. Parity checks
// record no event: the worker notices a new check of a mirror a rule
// names at each tick. Age rules need no event: every version is evaluated
// again every ReevaluateEvery.
//
// Signatures are indexed by attest from the same events, so an event is
// evaluated only once attest's queue is empty (After): the findings then
// read the records the event brought. Should attest lag for MaxDefer, the
// worker evaluates anyway, and the next full pass catches up.
//
// A backlog is taken whole (up to maxCatchUp events, read a page at a
// time from a BacklogReader), so a catch-up evaluates each repository it
// touches once: taken a batch at a time, the backlog of 10,000 pushes
// into 100 packs had every version evaluated and written 19 times. While
// attest lags past MaxDefer the worker still takes one batch, no more of
// what attest has yet to index than before.

// Consumer is compliance's name among the consumers of the outbox.
const Consumer = "compliance"

const (
	lease    = "compliance.evaluator"
	leaseTTL = 10 * time.Second
	tick     = time.Second
	batch    = 1024
	// maxCatchUp bounds the events one step takes (their IDs are kept
	// until acknowledged).
	maxCatchUp = 64 * batch
	// MaxDefer bounds the wait for attest's queue.
	MaxDefer = 30 * time.Second
	// writeBatch is how many records one transaction stores. On SQLite a
	// write that shares a group commit runs in a savepoint, whose journal
	// (a copy of every page the write touches) is kept in memory until
	// its release: 256 records of versions spread over 100 packs touched
	// ~700 pages, and the journal's ~5 MiB stayed with SQLite's allocator
	// after (the disk server's peak RSS, mirror suite). 64 hold ~1 MiB.
	writeBatch = 64
	pageSize   = 1000
	// settleTime is the least time between a step and the next one a
	// wake-up starts: each step that finds events evaluates their
	// repositories and commits findings, an acknowledgement and a
	// snapshot, and every manifest PUT wakes the worker. Waiting lets one
	// step take the PUTs that committed meanwhile; a wake-up after a quiet
	// spell is taken at once.
	settleTime = 50 * time.Millisecond
)

// Subscribe registers compliance as a consumer of the outbox and wakes
// the worker on every commit. Call it before the registry serves.
func (s *Service) Subscribe(ctx context.Context) error {
	// No verdict depends on a blob (rules are about versions), so blob
	// events are not queued for compliance: each would cost a wake-up,
	// a repository's evaluation, an acknowledgement and a snapshot. Nor
	// are tag moves: the registry records each with the push of its
	// manifest into the same repository, in the same write, and that
	// event has the repository evaluated; queued, each push by tag cost
	// a queue row more, written and deleted.
	if err := s.st.AddEventConsumer(ctx, Consumer, "blob.push", "blob.mount", "blob.delete", "tag.move"); err != nil {
		return fmt.Errorf("compliance: subscribing to the outbox: %w", err)
	}
	s.st.OnEvents(func(context.Context) { s.wake() })
	return nil
}

func (s *Service) wake() {
	select {
	case s.wakeup <- struct{}{}:
	default:
	}
}

// Run evaluates until ctx ends, one replica at a time (a lease).
func (s *Service) Run(ctx context.Context) {
	// Kept across steps: taken afresh on every step, it was one more
	// commit per wake-up, and every manifest push wakes the worker.
	kept := storage.NewKeptLease(s.st, lease, storage.NewHolder(), leaseTTL)
	t := time.NewTicker(tick)
	defer t.Stop()
	// Hand the work over now rather than when the lease expires.
	defer kept.Release(ctx)
	for {
		s.settle.Started()
		if _, err := kept.Run(ctx, func(wctx context.Context) error { return s.step(ctx, wctx) }); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "compliance: evaluating", "err", err)
		}
		if !s.next(ctx, t.C) {
			return
		}
	}
}

// next waits for a tick, or for a wake-up that left events to evaluate: a
// commit whose events were all skipped here, or were taken already, is not
// worth a step (a lease renewal, a write). A wake-up soon after the last
// step first waits out the rest of the settling window. It is false once
// ctx ended.
func (s *Service) next(ctx context.Context, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case <-s.wakeup:
			if !s.settle.Wait(ctx) {
				return false
			}
			if waits, err := s.anyPending(ctx, Consumer); err != nil || waits {
				return true
			}
		}
	}
}

// step is one pass of the worker under the lease (wctx ends when it is
// lost): the pending events, then a full evaluation when one is due.
func (s *Service) step(ctx, wctx context.Context) error {
	// The queue first, then what the events change (rules, parity, bad
	// blobs): an event committed after those reads would otherwise be
	// taken, evaluated by the state before it and acknowledged, its change
	// left for the next full evaluation. Read after the queue, the state
	// has every change whose event was taken (a change and its event
	// commit together); a later event waits for the next step.
	ids, repos, all, err := s.pending(wctx)
	if err != nil {
		return err
	}
	rules, err := s.ruleSet(wctx)
	if err != nil {
		return err
	}
	full := s.lastFull.IsZero() || s.now().Sub(s.lastFull) >= s.cfg.reevaluateEvery()
	parity, changed, err := s.parity(wctx, rules)
	if err != nil {
		return err
	}
	full = full || changed
	if s.bad, err = s.st.BadBlobs(wctx); err != nil {
		return err
	}
	if full || all {
		err = s.evaluateAll(wctx, rules, parity)
	} else {
		for repo := range repos {
			if err = s.evaluateRepo(wctx, rules, parity, repo); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if err := s.ack(ctx, ids); err != nil {
		return err
	}
	if full || len(ids) > 0 {
		return s.snapshot(wctx)
	}
	return nil
}

// BacklogReader is a Store that reads a consumer's queue past its first
// events, which the worker has not acknowledged yet.
type BacklogReader interface {
	// PendingEventsAfter is PendingEvents from the first event with an
	// ID above after.
	PendingEventsAfter(ctx context.Context, consumer string, after int64, n int) ([]storage.Event, error)
}

// taken is the events a step takes: their IDs, the repositories they
// touch, and whether one touches everything.
type taken struct {
	ids   []int64
	repos map[string]bool
	all   bool
}

func (t *taken) add(evs []storage.Event) {
	for _, e := range evs {
		t.ids = append(t.ids, e.ID)
		repo, ok := repoOf(e)
		switch {
		case !ok:
			t.all = true
		case repo != "":
			t.repos[repo] = true
		}
	}
}

// pending takes the events ready to evaluate: none while attest has
// events of its own to index (MaxDefer at most), else the whole backlog
// (one batch while attest still lags), with the repositories they touch,
// or all when one touches everything.
func (s *Service) pending(ctx context.Context) ([]int64, map[string]bool, bool, error) {
	whole := true
	if s.after != "" {
		waits, err := s.anyPending(ctx, s.after)
		if err != nil {
			return nil, nil, false, err
		}
		if waits {
			if s.deferred.IsZero() {
				s.deferred = s.now()
			}
			if s.now().Sub(s.deferred) < MaxDefer {
				return nil, nil, false, nil
			}
			whole = false
		}
	}
	s.deferred = time.Time{}
	evs, err := s.st.PendingEvents(ctx, Consumer, batch)
	if err != nil {
		return nil, nil, false, err
	}
	t := taken{repos: map[string]bool{}}
	t.add(evs)
	br, paged := s.st.(BacklogReader)
	for paged && whole && len(evs) == batch && len(t.ids) < maxCatchUp {
		if evs, err = br.PendingEventsAfter(ctx, Consumer, t.ids[len(t.ids)-1], batch); err != nil {
			return nil, nil, false, err
		}
		t.add(evs)
	}
	return t.ids, t.repos, t.all, nil
}

// anyPending says whether consumer has an event pending. It reads the
// first, where a count read every row of a queue that is deep under load
// (16 clients: ~0.7 ms of the database per wake-up), and dead rows too.
func (s *Service) anyPending(ctx context.Context, consumer string) (bool, error) {
	evs, err := s.st.PendingEvents(ctx, consumer, 1)
	return len(evs) > 0, err
}

// repoOf is the repository an event concerns; ok is false for events that
// may change any version's verdict (keys, roots, mirrors, rules), and repo
// is "" for events that change none (configuration records).
func repoOf(e storage.Event) (repo string, ok bool) {
	if e.Action == registry.ActionBlobCorrupt || e.Action == registry.ActionBlobRepaired {
		return "", false // a blob any version may hold
	}
	kind, _, _ := strings.Cut(e.Action, ".")
	switch kind {
	case "blob", "manifest", "tag", "pack":
		repo, _, _ = strings.Cut(e.Target, ":")
		return repo, true
	case "config":
		return "", true
	}
	return "", false
}

// ack acknowledges ids a batch per transaction. A catch-up's whole
// backlog in one (up to maxCatchUp IDs) held the writer for all of it,
// and on SQLite the savepoint of the write kept the original of every
// queue page it deleted from in memory: the server's peak RSS during the
// packs and mirror benches. A piece that fails leaves the rest to be
// evaluated again, as the whole did.
func (s *Service) ack(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	for chunk := range slices.Chunk(ids, batch) {
		if err := s.ackChunk(ctx, chunk); err != nil {
			return err
		}
	}
	s.progressed()
	return nil
}

func (s *Service) ackChunk(ctx context.Context, ids []int64) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.st.AckEvents(actx, Consumer, ids...)
}

// parity reads the latest check of every mirror the rules name, and says
// whether any is newer than the last pass saw.
func (s *Service) parity(ctx context.Context, rules *Rules) (paritySet, bool, error) {
	names := rules.mirrors()
	if len(names) == 0 {
		return nil, false, nil
	}
	ms, err := s.st.ListMirrors(ctx, storage.MirrorPush)
	if err != nil {
		return nil, false, err
	}
	out, changed := paritySet{}, false
	for _, m := range ms {
		if !slices.Contains(names, m.Name) {
			continue
		}
		out[m.Name] = nil
		checks, err := s.st.ListParityChecks(ctx, m.ID, 0, 1)
		if err != nil {
			return nil, false, err
		}
		if len(checks) == 0 {
			continue
		}
		if s.paritySeen[m.ID] != checks[0].ID {
			s.paritySeen[m.ID], changed = checks[0].ID, true
		}
		entries, err := s.st.ParityEntries(ctx, checks[0].ID, "")
		if err != nil {
			return nil, false, err
		}
		got := make(map[string]string, len(entries))
		for _, e := range entries {
			got[e.Name+":"+e.Version] = e.Status
		}
		out[m.Name] = got
	}
	return out, changed, nil
}

// evaluateAll evaluates every version, a page at a time.
func (s *Service) evaluateAll(ctx context.Context, rules *Rules, parity paritySet) error {
	start := s.now()
	q := storage.PackQuery{Limit: pageSize}
	for {
		vs, err := s.st.ListPackVersions(ctx, q)
		if err != nil {
			return err
		}
		if err := s.evaluateVersions(ctx, rules, parity, vs); err != nil {
			return err
		}
		if len(vs) < pageSize {
			break
		}
		last := vs[len(vs)-1]
		q.BeforeCreated, q.BeforeID = last.Created, last.ID
	}
	s.lastFull = start
	return nil
}

func (s *Service) evaluateRepo(ctx context.Context, rules *Rules, parity paritySet, repo string) error {
	vs, err := s.st.ListPackVersions(ctx, storage.PackQuery{Name: repo})
	if err != nil {
		return err
	}
	return s.evaluateVersions(ctx, rules, parity, vs)
}

func (s *Service) evaluateVersions(ctx context.Context, rules *Rules, parity paritySet, vs []storage.PackVersion) error {
	now := s.now().UTC()
	byName := map[string][]Rule{}
	recs := make([]storage.ComplianceRecord, 0, writeBatch)
	evs, err := s.evidence(ctx, vs)
	if err != nil {
		return err
	}
	for i, v := range vs {
		rs, ok := byName[v.Name]
		if !ok {
			rs = rules.For(v.Name)
			byName[v.Name] = rs
		}
		bad, err := s.badOf(ctx, v)
		if err != nil {
			return err
		}
		recs = append(recs, evaluate(v, evs[i], rs, parity, bad, now))
		if len(recs) == writeBatch {
			if err := s.st.PutComplianceRecords(ctx, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	return s.st.PutComplianceRecords(ctx, recs)
}

// evidence is the evidence about each of vs, in order; a deleted
// version has none.
func (s *Service) evidence(ctx context.Context, vs []storage.PackVersion) ([]Evidence, error) {
	live := make([]storage.PackVersion, 0, len(vs))
	for _, v := range vs {
		if v.Status != storage.PackDeleted {
			live = append(live, v)
		}
	}
	var got []Evidence
	if b, ok := s.ver.(BatchVerifier); ok {
		var err error
		if got, err = b.EvidenceMany(ctx, live); err != nil {
			return nil, fmt.Errorf("evidence of %d versions: %w", len(live), err)
		}
	} else {
		got = make([]Evidence, len(live))
		for i, v := range live {
			var err error
			if got[i], err = s.ver.Evidence(ctx, v.Name, v.Digest); err != nil {
				return nil, fmt.Errorf("evidence of %s:%s: %w", v.Name, v.Version, err)
			}
		}
	}
	out := make([]Evidence, len(vs))
	j := 0
	for i, v := range vs {
		if v.Status != storage.PackDeleted {
			out[i] = got[j]
			j++
		}
	}
	return out, nil
}

// badOf names the blobs of v (its manifest, config and files) a scrub
// found bad.
func (s *Service) badOf(ctx context.Context, v storage.PackVersion) ([]string, error) {
	if len(s.bad) == 0 || v.Status == storage.PackDeleted {
		return nil, nil
	}
	ds := append([]digest.Digest{v.Digest}, filesOf(v)...)
	// The pack index keeps no config digest; the manifest's references
	// do. Read only while some blob is bad, which is rare.
	m, err := s.st.GetManifest(ctx, v.Name, v.Digest)
	switch {
	case err == nil:
		ds = append(ds, m.Refs...)
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	var out []string
	seen := map[digest.Digest]bool{}
	for _, d := range ds {
		if detail, ok := s.bad[d]; ok && !seen[d] {
			seen[d] = true
			out = append(out, string(d)+" ("+detail+")")
		}
	}
	return out, nil
}

func filesOf(v storage.PackVersion) []digest.Digest {
	out := make([]digest.Digest, len(v.Files))
	for i, f := range v.Files {
		out[i] = f.Digest
	}
	return out
}

// progressed tells waiters (Wait) that events were acknowledged.
func (s *Service) progressed() { s.progress.Signal() }

// Wait returns when no event waits for evaluation, or ctx ends.
func (s *Service) Wait(ctx context.Context) error {
	return s.progress.Wait(ctx, s.st, Consumer)
}
