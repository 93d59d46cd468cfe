package sqlmeta

import (
	"context"
	"time"
)

// The planner's statistics (SQLite: sqlite_stat1) are what it weighs
// indexes by; without them it guesses, and a guess was once a referrers
// scan. SQLite advises a long-lived connection to run PRAGMA optimize
// when it opens, now and then (hourly here), and before it closes; each
// run analyzes only tables never analyzed or grown or shrunk a lot since,
// within a bounded row count, so it costs milliseconds. Options.Optimize
// is that statement; it runs on the writer, the one connection that may
// write the statistics, taking its turn like a write (wmu). The open run
// comes before any reader connection reads the schema, which is when a
// connection loads the statistics. A later run changes sqlite_stat1 but
// not the schema cookie, so the other connections would keep the old
// statistics until they reopen; SQLite's "ANALYZE sqlite_schema" reloads
// them on one connection but is a write, refused on the query-only
// readers. So a periodic run that finds them changed since the readers
// last loaded them (OptimizeStats) runs OptimizeReload, a schema change
// every connection notices before its next statement.

// DefaultOptimizeEvery is how often Options.Optimize runs by default.
const DefaultOptimizeEvery = time.Hour

// optimizeTimeout bounds one run, so a close is never held up for long.
const optimizeTimeout = 10 * time.Second

// optimize runs opts.Optimize on the writer; the caller holds wmu or is
// alone with the store.
func (s *Store) optimize(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, optimizeTimeout)
	defer cancel()
	_, err := s.w.ExecContext(ctx, s.opts.Optimize)
	return s.fail("optimize", err)
}

// optimizeLoop runs opts.Optimize every period until stop closes. A run
// that fails is tried again at the next tick: statistics only steer plans.
func (s *Store) optimizeLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := s.opts.OptimizeEvery
	if every <= 0 {
		every = DefaultOptimizeEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.wmu.Lock()
		_ = s.optimizeAndReload(context.Background())
		s.wmu.Unlock()
	}
}

// optimizeAndReload is optimize, then OptimizeReload if the statistics
// differ from those the readers last loaded (readerStats): compared with
// those, not with the run's own before, so that a reload that failed is
// tried again by the next run; the caller holds wmu.
func (s *Store) optimizeAndReload(ctx context.Context) error {
	if err := s.optimize(ctx); err != nil || s.opts.OptimizeReload == "" {
		return err
	}
	now := s.stats(ctx)
	if now == s.readerStats {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, optimizeTimeout)
	defer cancel()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("reload statistics", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.opts.OptimizeReload); err != nil {
		return s.fail("reload statistics", err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("reload statistics", err)
	}
	s.readerStats = now
	return nil
}

// stats is OptimizeStats' answer on the writer; "" when there is none
// yet (no statistics table) or no query.
func (s *Store) stats(ctx context.Context) string {
	var v string
	if s.opts.OptimizeStats == "" || s.w.QueryRowContext(ctx, s.opts.OptimizeStats).Scan(&v) != nil {
		return ""
	}
	return v
}
