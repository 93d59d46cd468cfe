package attest

import (
	"context"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Indexing runs on one worker goroutine fed by a bounded queue: the
// registry calls Observe on the request's goroutine after the push is
// durable, and fetching blobs and checking signatures there would hold
// the client's response. Jobs are idempotent (they re-read what they
// index), so losing one to a crash costs nothing that a Refresh (packreg
// verify) does not redo.

type jobKind int

const (
	jobIndex   jobKind = iota // check referrer d (hint: tag subject; tagged: tag points at it)
	jobDelete                 // manifest d is gone: drop its records
	jobUntag                  // the tag-schema tag of hint for kind was deleted
	jobSubject                // manifest d arrived: re-check records waiting for it
	jobRecheck                // the key ring gained a key: re-check unverifiable records
)

type job struct {
	kind   jobKind
	repo   string
	d      digest.Digest
	hint   digest.Digest
	tagged bool
	what   string // jobUntag: the record kind
}

// enqueueWait bounds how long a push may wait for room in a full queue.
// Past it the job is dropped with an error log: the push has succeeded and
// must not fail now, and `packreg verify` re-indexes.
const enqueueWait = 5 * time.Second

// jobTimeout bounds one job, so a stuck blob read cannot stop indexing.
const jobTimeout = 2 * time.Minute

// maxSubjectsNotified bounds the records read to learn which subjects a
// deleted referrer was about.
const maxSubjectsNotified = 64

// Observe is the registry.Subscriber that feeds the index.
func (s *Service) Observe(ctx context.Context, e registry.Event) {
	switch e.Action {
	case registry.ActionManifestPush:
		if e.Subject != "" {
			s.enqueue(ctx, job{kind: jobIndex, repo: e.Repo, d: e.Digest})
		} else {
			s.enqueue(ctx, job{kind: jobSubject, repo: e.Repo, d: e.Digest})
		}
	case registry.ActionTagMove:
		if subject, _, ok := TagSubject(e.Tag); ok {
			s.enqueue(ctx, job{kind: jobIndex, repo: e.Repo, d: e.Digest, hint: subject, tagged: true})
		}
	case registry.ActionManifestDelete:
		s.enqueue(ctx, job{kind: jobDelete, repo: e.Repo, d: e.Digest})
	case registry.ActionTagDelete:
		if subject, kind, ok := TagSubject(e.Tag); ok {
			s.enqueue(ctx, job{kind: jobUntag, repo: e.Repo, hint: subject, what: kind})
		}
	}
}

func (s *Service) enqueue(ctx context.Context, j job) {
	s.pending.Add(1)
	select {
	case s.jobs <- j:
		return
	default:
	}
	t := time.NewTimer(enqueueWait)
	defer t.Stop()
	select {
	case s.jobs <- j:
	case <-t.C:
		s.pending.Done()
		s.log.ErrorContext(ctx, "attest: index queue full, dropped a job; run packreg verify on the version to re-index",
			"repo", j.repo, "digest", j.d)
	}
}

// Run works the queue until ctx ends. Jobs still queued then are dropped
// (see Refresh).
func (s *Service) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			jctx, cancel := context.WithTimeout(ctx, jobTimeout)
			if err := s.do(jctx, j); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "attest: indexing failed", "repo", j.repo, "digest", j.d, "err", err)
			}
			cancel()
			s.pending.Done()
		}
	}
}

// Wait returns when every job queued so far is done, or ctx ends. Tests
// use it to read records deterministically.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) do(ctx context.Context, j job) error {
	switch j.kind {
	case jobIndex:
		_, err := s.Index(ctx, j.repo, j.d, j.hint, j.tagged)
		return err
	case jobDelete:
		// The subjects the referrer was about change too: a pack version
		// waiting on (or verified by) it.
		recs, err := s.st.AttestRecordsByReferrer(ctx, j.repo, j.d, maxSubjectsNotified)
		if err != nil {
			return err
		}
		if err := s.st.DeleteAttestRecords(ctx, j.repo, "", j.d); err != nil {
			return err
		}
		subjects := map[digest.Digest]bool{j.d: true}
		for _, r := range recs {
			subjects[r.Subject] = true
		}
		for d := range subjects {
			s.changed(ctx, j.repo, d)
		}
		return nil
	case jobUntag:
		n, err := s.st.SupersedeAttestRecords(ctx, j.repo, j.hint, j.what, FormatCosignTag, "", s.now().UTC())
		if err == nil && n > 0 {
			s.changed(ctx, j.repo, j.hint)
		}
		return err
	case jobSubject:
		return s.recheckSubject(ctx, j.repo, j.d)
	case jobRecheck:
		return s.recheckUnverifiable(ctx)
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
	if len(done) == 0 {
		// Nothing to re-check, but the subject itself is new: a pack
		// version waiting for its signature may be ready now.
		s.changed(ctx, repo, subject)
	}
	return nil
}

// recheckUnverifiable re-checks every record no key could verify: after a
// key is added, some may verify with it.
func (s *Service) recheckUnverifiable(ctx context.Context) error {
	r, err := s.loadRing(ctx)
	if err != nil {
		return err
	}
	type ref struct {
		repo       string
		subject, d digest.Digest
	}
	done := map[ref]bool{}
	var after storage.AttestCursor
	for {
		recs, err := s.st.AttestRecordsWithStatus(ctx, storage.SigUnverifiable, after, 256)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			k := ref{rec.Repo, rec.Subject, rec.Referrer}
			if done[k] {
				continue
			}
			done[k] = true
			if _, err := s.index(ctx, r, rec.Repo, rec.Referrer, rec.Subject, false); err != nil {
				s.log.WarnContext(ctx, "attest: re-check failed", "repo", rec.Repo, "referrer", rec.Referrer, "err", err)
			}
		}
		if len(recs) < 256 {
			return nil
		}
		last := recs[len(recs)-1]
		after = storage.AttestCursor{Repo: last.Repo, Subject: last.Subject, Referrer: last.Referrer, Index: last.Index}
	}
}
