package sqlmeta

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packreg/packreg/storage"
)

// Draining behind the answer (PostgreSQL, inline auditing). A write that
// queued its events for the trail (auditturn.go) waited for a drain to
// record them before its client had the answer: at 16 clients about 13
// ms of a manifest PUT's 21 went there (block profile), behind other
// writes' drains. Its events are durable in the outbox, committed with
// its change, so the drain now runs behind the answer: AuditEvents called
// by a listener of such a commit hands the work to the store's one
// background drainer and returns. Every read of the trail (ListAudit,
// ScanAudit, AuditHead) first drains the queue (caughtUp), on whatever
// replica it runs, the queue being shared: it records what is queued, or
// waits on the events' row locks for the drain (another replica's too)
// that took them, so a client reading the trail after its write sees the
// write's records (or, the head held too long, ErrUnavailable: caughtUp).
// A crash between the answer and the drain loses
// nothing: the events stay queued for the next drain (a read, Flush at
// start, Run), as do those of a drain that Close cancels (it may wait at
// the head, without a lock_timeout, for as long as another session holds
// it: a shutdown must not). While the drainer has work it holds a place
// in auditHeld, so this store's writes queue rather than append inline
// ahead of the events it has yet to record: the trail keeps their order.
// Nor does any write append inline while events from any replica wait
// in the queue (auditturn.go).
// A drain that fails leaves its events queued for those same next drains;
// the next hand-off reports its failure to the listener (audit.Recorder
// logs it), and every drain behind is an operation for the observer
// ("audit_drain": ObserveOps).

// behindDrainer is the state of a store's background drainer.
type behindDrainer struct {
	mu sync.Mutex
	// running: the drainer goroutine is on; again: a commit queued for
	// the trail since its last drain began.
	running, again bool
	wg             sync.WaitGroup
	// stop cancels the running drainer's context (Close): its drain
	// waits at the head, without a lock_timeout, for as long as another
	// session holds it.
	stop context.CancelFunc
	// failed: a drain's failure that no hand-off reported yet.
	failed error
	// headWait, when not 0, stands for headWait's default (tests).
	headWait atomic.Int64
}

// drainsBehind says whether the drains that writes' listeners ask for run
// behind the answer.
func (s *Store) drainsBehind() bool { return s.d.AuditLockWait != "" && s.auditInline.Load() }

// drainBehind has the background drainer record what is queued for the
// trail, n events per drain, starting it unless it runs. It returns the
// failure of an earlier drain behind that no hand-off reported yet: the
// listeners that hand the drainer work are whom a drain's failure was
// reported to before it ran behind (audit.Recorder logs it).
func (s *Store) drainBehind(n int) error {
	b := &s.behind
	b.mu.Lock()
	defer b.mu.Unlock()
	var failed error
	if b.failed != nil {
		failed = fmt.Errorf("drain behind an earlier write: %w", b.failed)
		b.failed = nil
	}
	switch {
	case b.running:
		b.again = true
	case !s.closed.Load(): // Close waits for a drainer started before it
		b.running = true
		s.auditHeld.Add(1)
		b.wg.Add(1)
		// Woken by commits that queued for the trail: no look first.
		ctx, stop := context.WithCancel(context.WithValue(context.Background(), queuedForAudit{}, true))
		b.stop = stop
		go s.runBehind(ctx, n)
	}
	return failed
}

// runBehind drains until a drain that began after the last hand-off found
// the queue drained (or failed), or Close cancels ctx.
func (s *Store) runBehind(ctx context.Context, n int) {
	b := &s.behind
	defer b.wg.Done()
	for {
		b.mu.Lock()
		b.again = false
		b.mu.Unlock()
		start := time.Now()
		err := s.drainAll(ctx, n, 0) // a failure leaves the events queued for the next drain
		more := s.drainedBehind(ctx, err)
		// Counted (storage_operations_total) once the failure is kept.
		s.observe("audit_drain", start, err)
		if !more {
			return
		}
	}
}

// drainedBehind ends one run of runBehind, which failed with err unless
// nil: the failure is kept for the next hand-off, unless Close cancelled
// the drain. It says whether the drainer drains again.
func (s *Store) drainedBehind(ctx context.Context, err error) (again bool) {
	b := &s.behind
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		b.failed = err
	}
	if !b.again || s.closed.Load() {
		b.running = false
		s.auditHeld.Add(-1)
		b.stop()
		return false
	}
	return true
}

// stopBehind cancels the drainer and waits for it; Close calls it once
// closed is set. What it did not record stays queued for the next drain
// (a read, Flush at start, Run), of this replica or another.
func (s *Store) stopBehind() {
	s.behind.mu.Lock() // a drainBehind under way has added to wg by now
	if s.behind.running {
		s.behind.stop()
	}
	s.behind.mu.Unlock()
	s.behind.wg.Wait()
}

// caughtUp records, before a read of the trail, every event queued for it
// when the read began, so the read sees what was answered before it.
// A drain that has not ended after headWait (it waits at a head that
// another session holds: a stuck transaction, a replica's) fails the read
// with storage.ErrUnavailable (503, Retry-After), rather than keep it for
// as long as its request lasts: it cannot answer without the queued
// records, which a client that wrote before it must see. It leaves the
// drain to the others of its turn (drainTurns), and the events queued.
func (s *Store) caughtUp(ctx context.Context) error {
	if !s.drainsBehind() {
		return nil
	}
	return s.drainAll(ctx, auditBatch, s.headWait())
}

// headWait bounds a wait at a held chain head by a read of the trail
// (each drain of it) or by a write that appends its own records
// (appendAfterQueue): a drain, its turn included, takes milliseconds
// but while the head is held.
func (s *Store) headWait() time.Duration {
	return cmp.Or(time.Duration(s.behind.headWait.Load()), 10*time.Second)
}

// SetHeadWait sets headWait; 0 restores its default. For tests, which
// hold the head.
func (s *Store) SetHeadWait(d time.Duration) { s.behind.headWait.Store(int64(d)) }

// drainAll records what is queued for the trail, n events per drain,
// until a drain finds less than n (or fails). Each drain that has not
// ended after wait, unless 0, fails with storage.ErrUnavailable: a long
// queue is not cut short (each drain records a page), a held head is.
func (s *Store) drainAll(ctx context.Context, n int, wait time.Duration) error {
	for {
		got, err := s.drainWithin(ctx, n, wait)
		if err != nil || got < n {
			return err
		}
	}
}

// drainWithin is one drain of drainAll.
func (s *Store) drainWithin(ctx context.Context, n int, wait time.Duration) (int, error) {
	if wait == 0 {
		return s.drains.do(ctx, n, s.auditEvents)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	got, err := s.drains.do(wctx, n, s.auditEvents)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return got, storage.Unavailable("the audit trail is still recording what was written before this read",
			fmt.Errorf("queued records not recorded within %v (the chain head held by another session?)", wait))
	}
	return got, err
}
