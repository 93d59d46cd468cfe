package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

var _ registry.Fetcher = (*Service)(nil)

// pullTimeout bounds one pull-through: the client waits for it.
const pullTimeout = 2 * time.Minute

// pullRetry gives an upstream one more chance, not five: a client is waiting.
var pullRetry = Retry{Attempts: 2, Base: 200 * time.Millisecond, Max: time.Second}

// FetchManifest is the registry's miss hook (registry.Fetcher): a pull of
// repo:ref that finds nothing here is looked for on every upstream whose
// namespace covers repo, and the first that has it is copied in (the
// version, its closure and its referrers) before the registry answers.
// Concurrent pulls of the same reference share one copy. An upstream that
// is down makes the pull fail with 503; it never removes anything here.
func (s *Service) FetchManifest(ctx context.Context, repo, ref string) error {
	recs, err := s.store.ListMirrors(ctx, storage.MirrorPull)
	if err != nil {
		return err
	}
	var failed error
	for _, rec := range recs {
		r, err := decode(rec)
		if err != nil || !on(r.set.PullThrough) {
			continue
		}
		name, ok := names{r.set.Prefix}.back(repo)
		f := r.set.filter()
		if !ok || !f.Name(name) {
			continue
		}
		if _, err := digest.Parse(ref); err != nil && !f.Version(ref) {
			continue // a tag that is no covered version (latest, a cosign tag)
		}
		err = s.pullOnce(ctx, r, name, repo, ref)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrDenied):
			// Not there, or not for us (an archived version upstream): the
			// next upstream may have it.
			s.log.Debug("mirror: pull-through miss", "upstream", r.set.Name, "repo", repo, "ref", ref, "err", err)
		default:
			s.log.Warn("mirror: pull-through failed", "upstream", r.set.Name, "repo", repo, "ref", ref, "err", err)
			failed = errors.Join(failed, err)
		}
	}
	if failed != nil {
		return storage.Unavailable(fmt.Sprintf("pull-through of %s:%s: no upstream answered", repo, ref), nil)
	}
	return fmt.Errorf("%s:%s on no upstream: %w", repo, ref, storage.ErrNotFound)
}

// pullOnce copies name:ref of upstream r into repo, once for concurrent
// callers.
func (s *Service) pullOnce(ctx context.Context, r *remote, name, repo, ref string) error {
	// Forgotten when done: the next miss of the same reference (deleted
	// since, say) asks again.
	c, _ := s.pulls.do(ctx, r.rec.ID+"|"+repo+"|"+ref, func(error) bool { return false }, func() (any, bool, error) {
		return nil, true, s.pull(ctx, r, name, repo, ref)
	})
	return c.err
}

// pull copies name:ref of upstream r into repo.
func (s *Service) pull(ctx context.Context, r *remote, name, repo, ref string) error {
	// The copy finishes even if this client hangs up: the next pull is
	// then served from here.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pullTimeout)
	defer cancel()
	rm, err := s.remoteOf(r.set)
	if err != nil {
		return err
	}
	start := time.Now()
	eng := NewEngine(rm, NewLocal(s.local, "upstream:"+r.set.Name), EngineOptions{Concurrency: r.set.Concurrency, Retry: pullRetry, Logger: s.log})
	d, err := eng.Copy(pctx, Job{SrcRepo: name, DstRepo: repo, Ref: ref})
	if err == nil {
		st := eng.Counts.Snapshot()
		s.log.Info("mirror: pulled through", "upstream", r.set.Name, "repo", repo, "ref", ref, "digest", d,
			"manifests", st.ManifestsCopied, "blobs", st.BlobsCopied, "bytes", st.BytesCopied, "duration", time.Since(start))
	}
	return err
}
