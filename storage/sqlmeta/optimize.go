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
// connection loads the statistics: a later run reaches the writer at
// once and the readers at the next open (ANALYZE of an existing
// sqlite_stat1 does not change the schema cookie that would reload them).

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
		_ = s.optimize(context.Background())
		s.wmu.Unlock()
	}
}
