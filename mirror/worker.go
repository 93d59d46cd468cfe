package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// WorkerOptions tune the background worker; zero values take the defaults.
type WorkerOptions struct {
	// Tick is how often due work is looked for without a wake-up (default 5s).
	Tick time.Duration
	// LeaseTTL is how long a remote stays ours without renewal (default
	// 30s): after a crash, another worker carries the run on this long
	// after the last renewal.
	LeaseTTL time.Duration
	// Debounce gathers publications this long before syncing them (default 1s).
	Debounce time.Duration
	// RunTimeout bounds one attempt of a run (default 6h): a run still
	// going then fails, saying so; the next sync carries on from what was
	// copied, since copies are idempotent.
	RunTimeout time.Duration
}

// DefaultRunTimeout is WorkerOptions.RunTimeout's default.
const DefaultRunTimeout = 6 * time.Hour

func (o *WorkerOptions) defaults() {
	if o.Tick <= 0 {
		o.Tick = 5 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.RunTimeout <= 0 {
		o.RunTimeout = DefaultRunTimeout
	}
}

// Observe is the registry event subscriber: a pack version pushed or
// tagged here, or a referrer attached, marks its repository for the
// mirrors that replicate on publish. It only takes note: the worker does
// the work, after a short quiet period.
func (s *Service) Observe(_ context.Context, e registry.Event) {
	switch {
	case e.Action == registry.ActionTagMove, e.Action == registry.ActionManifestPush && e.Subject != "":
	default:
		return
	}
	s.markChanged(e.Repo)
	s.poke()
}

// markChanged notes repositories published, for the worker's next pass.
func (s *Service) markChanged(repos ...string) {
	s.mu.Lock()
	for _, r := range repos {
		s.changed[r] = true
	}
	s.mu.Unlock()
}

// takeChanged returns and forgets the repositories published since last time.
func (s *Service) takeChanged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.changed))
	for r := range s.changed {
		out = append(out, r)
	}
	clear(s.changed)
	slices.Sort(out)
	return out
}

// RunWorker does the background work until ctx ends: runs recorded by the
// API or after publications, scheduled syncs and parity checks. Every
// replica runs one; a lease per remote lets one worker at a time work on
// it. On the way out it waits for its runs to stop; a run interrupted so
// stays running and is carried on by the next worker to hold its lease.
func (s *Service) RunWorker(ctx context.Context, o WorkerOptions) {
	o.defaults()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		busy = map[string]bool{}
	)
	tick := time.NewTicker(o.Tick)
	defer tick.Stop()
	debounce := time.NewTimer(o.Debounce)
	for {
		s.publishRuns(ctx)
		recs, err := s.store.ListMirrors(ctx, "")
		if err != nil && ctx.Err() == nil {
			s.log.Warn("mirror worker: listing remotes", "err", err)
		}
		for _, rec := range recs {
			mu.Lock()
			if busy[rec.ID] {
				mu.Unlock()
				continue
			}
			busy[rec.ID] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { mu.Lock(); delete(busy, rec.ID); mu.Unlock() }()
				s.serveRemote(ctx, rec, o)
			}()
		}
		if !s.nextPass(ctx, o, tick, debounce) {
			wg.Wait()
			return
		}
	}
}

// RunPublisher turns publications into runs until ctx ends, on a replica
// that runs no worker (mirrors.worker: false): the runs it records are
// carried out by the workers of other replicas, as API runs are. Without
// it, a version pushed to such a replica never reached a mirror that
// syncs on publish only. RunWorker does this itself.
func (s *Service) RunPublisher(ctx context.Context, o WorkerOptions) {
	o.defaults()
	tick := time.NewTicker(o.Tick)
	defer tick.Stop()
	debounce := time.NewTimer(o.Debounce)
	for {
		s.publishRuns(ctx)
		if !s.nextPass(ctx, o, tick, debounce) {
			return
		}
	}
}

// FlushPublications records runs for the publications no pass has taken
// yet. serve calls it once requests have drained and the worker has
// stopped: a pass waits out a quiet period after a publication, and
// requests are still served after the worker stops, so a graceful
// shutdown dropped what was published in its last second or during it.
func (s *Service) FlushPublications(ctx context.Context) { s.publishRuns(ctx) }

// nextPass waits for a wake-up (then the quiet period) or a tick; it is
// false when ctx ended.
func (s *Service) nextPass(ctx context.Context, o WorkerOptions, tick *time.Ticker, debounce *time.Timer) bool {
	select {
	case <-ctx.Done():
		return false
	case <-s.wake:
		// A publication waits for the quiet period; an API run does not
		// need to, but waiting a second costs it nothing either.
		debounce.Reset(o.Debounce)
		select {
		case <-debounce.C:
		case <-ctx.Done():
			return false
		}
	case <-tick.C:
	}
	return true
}

// publishRuns turns the publications since the last pass into one sync
// run per mirror that replicates them, scoped to those packs. What it
// could not record is noted again for the next pass: the publications
// live only here (a run recorded twice for a mirror copies nothing twice).
func (s *Service) publishRuns(ctx context.Context) {
	repos := s.takeChanged()
	if len(repos) == 0 {
		return
	}
	recs, err := s.store.ListMirrors(ctx, storage.MirrorPush)
	if err != nil {
		s.markChanged(repos...)
		if ctx.Err() == nil { // a shutdown is not worth a warning
			s.log.Warn("mirror worker: listing mirrors", "err", err)
		}
		return
	}
	for _, rec := range recs {
		r, err := decode(rec)
		if err != nil {
			continue
		}
		var scope Scope
		for _, repo := range repos {
			if replicates(r, repo) {
				scope.Packs = append(scope.Packs, repo)
			}
		}
		if len(scope.Packs) == 0 {
			continue
		}
		if _, err := s.startRun(ctx, rec.ID, runSync, "publish", scope); err != nil {
			s.markChanged(scope.Packs...)
			s.log.Warn("mirror worker: recording a publish run", "mirror", rec.Name, "err", err)
		}
	}
}

// serveRemote runs the due work of one remote under its lease.
func (s *Service) serveRemote(ctx context.Context, rec *storage.Mirror, o WorkerOptions) {
	r, err := decode(rec)
	if err != nil {
		s.log.Warn("mirror worker", "remote", rec.ID, "err", err)
		return
	}
	due, err := s.due(ctx, r)
	if err != nil || due == "" {
		return
	}
	lease := "mirror/" + rec.ID
	_, err = storage.WithLease(ctx, s.store, lease, s.holder, o.LeaseTTL, func(wctx context.Context) error {
		s.runDue(wctx, rec, r, o)
		if ctx.Err() == nil && wctx.Err() != nil {
			// Another worker may be running this remote now.
			s.log.Warn("mirror worker: stopping", "remote", rec.ID, "cause", context.Cause(wctx))
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("mirror worker: lease", "lease", lease, "err", err)
	}
}

// runDue runs the recorded runs of one remote, and the ones its schedules
// make due, until none is left or ctx ends (the lease lost among them).
func (s *Service) runDue(ctx context.Context, rec *storage.Mirror, r *remote, o WorkerOptions) {
	for ctx.Err() == nil {
		runs, err := s.store.RunningMirrorRuns(ctx, rec.ID)
		if err != nil {
			return
		}
		if len(runs) == 0 {
			due, err := s.due(ctx, r)
			if err != nil || due == "" {
				return
			}
			if _, err := s.startRun(ctx, rec.ID, due, "schedule", Scope{}); err != nil {
				return
			}
			continue
		}
		s.execute(ctx, r, runs[0], o.RunTimeout)
	}
}

// due says what a remote needs now: "sync" or "parity" (a run recorded,
// or a schedule come round), or "".
func (s *Service) due(ctx context.Context, r *remote) (string, error) {
	running, err := s.store.RunningMirrorRuns(ctx, r.rec.ID)
	if err != nil {
		return "", err
	}
	if len(running) > 0 {
		return running[0].Kind, nil
	}
	for _, sched := range []struct {
		kind  string
		every Duration
	}{{runSync, r.set.Schedule}, {runParity, r.set.ParitySchedule}} {
		if sched.every <= 0 {
			continue
		}
		last, err := s.store.ListMirrorRuns(ctx, r.rec.ID, sched.kind, 0, 1)
		if err != nil {
			return "", err
		}
		if len(last) == 0 || s.now().Sub(last[0].Started) >= time.Duration(sched.every) {
			return sched.kind, nil
		}
	}
	return "", nil
}

// execute carries a run out (or on, after an interrupted attempt) and
// records its progress as it goes and its outcome at the end. An attempt
// that takes longer than timeout fails.
func (s *Service) execute(ctx context.Context, r *remote, run *storage.MirrorRun, timeout time.Duration) {
	start := time.Now()
	counts := &Counts{}
	if run.Attempts > 0 {
		var prev Stats
		if json.Unmarshal([]byte(run.Counts), &prev) == nil {
			counts.Resume(prev)
		}
		s.log.Info("mirror: resuming an interrupted run", "remote", r.set.Name, "run", run.ID, "attempt", run.Attempts+1)
	}
	run.Holder, run.Attempts, run.Updated = s.holder, run.Attempts+1, s.now()
	if err := s.store.UpdateMirrorRun(ctx, run); err != nil {
		return
	}
	var scope Scope
	if run.Scope != "" {
		_ = json.Unmarshal([]byte(run.Scope), &scope)
	}
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.saveRun(ctx, run, counts.Snapshot(), nil, "")
			}
		}
	}()
	var (
		errs  []string
		extra Stats
	)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	switch run.Kind {
	case runSync:
		errs = s.sync(rctx, r, scope, counts)
	case runParity:
		rep, err := s.Parity(rctx, r.rec.Kind, r.rec.ID)
		if err != nil {
			errs = []string{err.Error()}
		} else {
			extra.ParityCheck, extra.InParity = rep.ID, &rep.InParity
		}
	}
	if ctx.Err() == nil && rctx.Err() != nil {
		// Put first: the versions cut short only say "deadline exceeded".
		errs = append([]string{fmt.Sprintf("%v: the run was stopped after %s (limit: run timeout, mirrors.run_timeout)", ErrLimit, timeout)}, errs...)
		errs = errs[:min(len(errs), maxRunErrors)]
	}
	cancel()
	close(stop)
	<-progressDone
	st := counts.Snapshot()
	st.ParityCheck, st.InParity = extra.ParityCheck, extra.InParity
	if ctx.Err() != nil {
		// Shutting down or lease lost: the run stays running, to be carried
		// on. Its counts so far are kept (the next attempt adds to them).
		s.saveRun(context.WithoutCancel(ctx), run, st, errs, "")
		s.observeRun(run.Kind, "interrupted", time.Since(start))
		return
	}
	state := storage.RunSucceeded
	if len(errs) > 0 {
		state = storage.RunFailed
	}
	s.saveRun(ctx, run, st, errs, state)
	s.observeRun(run.Kind, state, time.Since(start))
	s.log.Info("mirror: run finished", "remote", r.set.Name, "run", run.ID, "kind", run.Kind, "trigger", run.Trigger,
		"state", state, "manifests", st.ManifestsCopied, "blobs", st.BlobsCopied, "bytes", st.BytesCopied, "errors", len(errs))
}

// saveRun writes progress, and the outcome when state is not "".
func (s *Service) saveRun(ctx context.Context, run *storage.MirrorRun, st Stats, errs []string, state string) {
	b, _ := json.Marshal(st)
	run.Counts, run.Updated = string(b), s.now()
	if errs != nil {
		e, _ := json.Marshal(errs)
		run.Errors = string(e)
	}
	if state != "" {
		run.State, run.Finished = state, run.Updated
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.store.UpdateMirrorRun(ctx, run); err != nil && ctx.Err() == nil {
		s.log.Warn("mirror worker: recording a run", "run", run.ID, "err", err)
	}
}
