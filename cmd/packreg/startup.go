package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/storage"
)

// Start-up checks: before it listens, serve proves that both stores
// answer and take writes, so a bucket that does not exist, credentials
// that are refused or missing, a read-only volume or a database that is
// down stop it with one line naming the store and the cause, instead of
// a server that listens and fails every push. The checks give up after
// startup_timeout, and at once on SIGTERM/SIGINT.

// startupError is a failure of the start-up checks: main reports it as
// "cannot start".
type startupError struct{ err error }

func (e *startupError) Error() string { return e.err.Error() }
func (e *startupError) Unwrap() error { return e.err }

// start opens the stores and checks them within c.StartupTimeout.
func start(ctx context.Context, c Config, log *slog.Logger) (*stores, error) {
	sctx, cancel := context.WithTimeout(ctx, c.StartupTimeout)
	defer cancel()
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("interrupted while starting (%v): %w", context.Cause(ctx), err)
		case sctx.Err() != nil:
			err = fmt.Errorf("the stores did not answer within startup_timeout (%s): %w", c.StartupTimeout, err)
		}
		return &startupError{err}
	}
	st, err := openStores(sctx, c, log)
	if err != nil {
		return nil, fail(err)
	}
	if err := st.check(sctx, c); err != nil {
		st.Close()
		return nil, fail(err)
	}
	log.Debug("stores checked: reachable and writable")
	return st, nil
}

// check proves each store reachable (its Ping) and writable: the blob
// store takes the data of an upload, which is then aborted; the database
// takes a lease, which is then released. Both are writes every push and
// every replica make anyway, so nothing new is asked of a backend. A
// store that is briefly unavailable (a dropped connection, an S3 503)
// is asked again a few times over about 3 s, so one lost request does
// not stop a replica from starting; a store that stays down, or refuses
// for any other reason, fails the check at once.
func (s *stores) check(ctx context.Context, c Config) error {
	if err := storage.RetryUnavailable(ctx, checkTries, checkWait, s.checkBlobs); err != nil {
		return fmt.Errorf("storage %s: %w", redact(c.Storage), err)
	}
	if err := storage.RetryUnavailable(ctx, checkTries, checkWait, s.checkMeta); err != nil {
		return fmt.Errorf("database %s: %w", redact(c.Database), scrub(err, c.Database))
	}
	return nil
}

// How often and how patiently check asks an unavailable store again.
const (
	checkTries = 5
	checkWait  = 200 * time.Millisecond
)

func (s *stores) checkBlobs(ctx context.Context) error {
	if p, ok := s.blobs.(storage.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return err
		}
	}
	// A fresh upload each try: a failed Append may have left part of one.
	now := time.Now().UTC()
	u := &storage.Upload{ID: "startup-check-" + reqid.New(), Repo: "packreg/startup-check", Created: now, Updated: now}
	if err := s.blobs.Append(ctx, u, strings.NewReader("packreg start-up check\n")); err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	if err := s.blobs.Abort(ctx, u); err != nil {
		return fmt.Errorf("cannot delete: %w", err)
	}
	return nil
}

func (s *stores) checkMeta(ctx context.Context) error {
	if p, ok := s.meta.(storage.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return err
		}
	}
	probe := "startup-check-" + reqid.New()
	ok, err := s.meta.AcquireLease(ctx, probe, probe, time.Minute)
	if err == nil && !ok {
		err = errors.New("a fresh lease was refused")
	}
	if err == nil {
		err = s.meta.ReleaseLease(ctx, probe, probe)
	}
	if err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	return nil
}
