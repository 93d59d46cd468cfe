package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/packreg/packreg/storage"
)

// Group commit. SQLite has one writer and every commit is an fsync, so
// sixteen clients pushing manifests would wait on sixteen fsyncs in a row.
// Instead, writers hand their transaction body to one loop goroutine, which
// takes every body that is waiting (up to MaxBatch) and runs them in one
// transaction, each inside its own SAVEPOINT: a body that fails is rolled
// back alone, the others commit together. A writer returns only after the
// commit that holds its changes, so durability is unchanged.
//
// A lone writer (no other write in submit) skips the hand-off: it runs its
// body on its own goroutine, as a batch of one, holding wmu, the right to
// the writer connection that the loop takes too. The hand-off cost the
// lone writer two goroutine switches and futex wake-ups per write (one
// client pushing small blobs). Writers that overlap one still queue to
// the loop, which waits for wmu, so they keep sharing a commit.

type writeOp struct {
	ctx     context.Context
	fn      txFunc
	relaxed bool       // writeRelaxed: the batch commits relaxed if all its ops are
	defers  bool       // writeDefersAudit
	done    chan error // buffered: the loop never blocks answering
}

// submit hands fn to the loop and waits for its commit.
func (s *Store) submit(ctx context.Context, fn txFunc, flags writeFlags) error {
	op := &writeOp{ctx: ctx, fn: fn, relaxed: flags&writeRelaxed != 0, defers: flags&writeDefersAudit != 0,
		done: make(chan error, 1)}
	defer s.writers.Add(-1)
	// Only the one writer in submit may run inline: with another one about,
	// both go to the loop and share a commit. TryLock fails while the loop
	// or another inline writer holds the connection, and after Close.
	if s.writers.Add(1) == 1 && s.wmu.TryLock() {
		if s.closed.Load() {
			s.wmu.Unlock()
			return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
		}
		s.runLone(op)
		return <-op.done
	}
	// ops is unbuffered: once the send succeeds the loop owns op and always
	// answers it, even when Close comes next.
	select {
	case s.ops <- op:
	case <-s.quit:
		return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-op.done
}

// runLone runs op as a batch of one on the caller's goroutine, which holds
// wmu. A body that panics (net/http recovers a handler's panic) must not
// keep the writer connection in its transaction or wmu locked: runBatch
// rolls back, this unlocks.
func (s *Store) runLone(op *writeOp) {
	defer s.wmu.Unlock()
	s.runBatch([]*writeOp{op})
}

func (s *Store) groupLoop() {
	defer close(s.loopDone)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		case <-s.quit:
			return
		}
		// An inline writer may hold the connection: wait for it, and drain
		// after, so the writers queued meanwhile join this batch.
		s.wmu.Lock()
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		s.runBatch(batch)
		s.wmu.Unlock()
	}
}

// runBatch runs ops in one transaction and answers each of them.
func (s *Store) runBatch(ops []*writeOp) {
	errs := make([]error, len(ops))
	answer := func(batchErr error) {
		for i, op := range ops {
			if errs[i] == nil {
				errs[i] = batchErr
			}
			op.done <- errs[i]
		}
	}
	// The transaction outlives any one caller: a caller that gives up must
	// not roll back the others' work.
	relaxed := true
	for _, op := range ops {
		relaxed = relaxed && op.relaxed
	}
	tx, err := s.beginTx(context.Background(), relaxed)
	if err != nil {
		answer(err)
		return
	}
	abort := func(err error) { // nothing of the batch commits
		_ = tx.Rollback()
		answer(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	single := len(ops) == 1
	// The audit records of the writes that released, appended before a
	// write that does not defer its own and before the commit.
	var audit batchRecords
	bctx := context.Background()
	for i, op := range ops {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		// Statements ignore the caller's cancellation for the same reason;
		// each body is a handful of indexed statements.
		ctx := context.WithoutCancel(op.ctx)
		// A batch of one appends as it always did: nothing to share.
		var mine *batchRecords
		if op.defers && !single && s.d.AuditLockWait == "" {
			mine = &batchRecords{}
			ctx = context.WithValue(ctx, batchRecordsKey{}, mine)
		} else if err := s.flushAudit(bctx, tx, &audit); err != nil {
			abort(err)
			return
		}
		if single {
			errs[i] = op.fn(ctx, tx)
		} else if errs[i], err = inSavepoint(ctx, tx, op.fn); err != nil {
			abort(err)
			return
		}
		if errs[i] == nil && mine != nil {
			audit.add(mine)
		}
	}
	if single && errs[0] != nil {
		abort(nil)
		return
	}
	if err := s.flushAudit(bctx, tx, &audit); err != nil {
		abort(err)
		return
	}
	answer(s.commit(tx))
}

// inSavepoint runs fn in tx under a savepoint, rolled back to when fn
// fails (fnErr). err is a failure of the savepoint's own statements,
// which ends the batch: some failures (disk full, I/O error) end the
// whole transaction, and then the rollback to the savepoint fails too.
func inSavepoint(ctx context.Context, tx *sql.Tx, fn txFunc) (fnErr, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
		return nil, err
	}
	if fnErr = fn(ctx, tx); fnErr != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
			return fnErr, errors.Join(fnErr, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
		return fnErr, err
	}
	return fnErr, nil
}
