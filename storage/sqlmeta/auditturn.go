package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/packreg/packreg/storage"
)

// Taking turns at the chain head (PostgreSQL). A write that appends its
// audit records inline holds the head's row lock until its commit, so
// inline writers of every replica commit one after another, each waiting
// out the others' round trips and WAL flushes: at 16 clients a manifest
// PUT waited there most of its time, with the CPU idle. So a write
// appends inline only when it is its store's only write under way and no
// drain of the store is at the head; otherwise it queues its events for
// the audit consumer, in its own transaction still (a crash loses
// neither), and commits without the head, alongside the other writers
// (PostgreSQL flushes concurrent commits' WAL together). The drain that
// records them (audit.Recorder's listener's, right after the commit and
// behind the client's answer: drainbehind.go) takes the head once for
// every event queued meanwhile: drains of this store take turns
// (drainTurns), and those called while one runs share the next. A lone
// write still costs one transaction. Between replicas the lock_timeout of
// Dialect.AuditLockWait still applies.

// headTurn is one write transaction's place at the head: whether it
// decided yet, and whether it appends inline (holding one of auditHeld,
// which counts the store's inline appenders and drains; inflight counts
// its writes under way).
type headTurn struct {
	decided, inline bool
}

type headTurnKey struct{}

// withHeadTurn gives a write transaction of an inline-auditing PostgreSQL
// store its headTurn; done ends it after the commit or rollback. Other
// stores' writes carry none and always append inline (SQLite's one
// writer holds the head anyway).
func (s *Store) withHeadTurn(ctx context.Context) (context.Context, func()) {
	if s.d.AuditLockWait == "" || !s.auditInline.Load() {
		return ctx, func() {}
	}
	t := &headTurn{}
	s.inflight.Add(1)
	return context.WithValue(ctx, headTurnKey{}, t), func() {
		s.inflight.Add(-1)
		if t.inline {
			s.auditHeld.Add(-1)
		}
	}
}

// appendsInline says whether the write of ctx appends its audit records
// itself: yes when it has no headTurn, or it is its store's only write
// under way and nobody of the store is at the head; the same answer for
// every call within one transaction, so a write's records stay in order.
func (s *Store) appendsInline(ctx context.Context) bool {
	t, _ := ctx.Value(headTurnKey{}).(*headTurn)
	if t == nil {
		return true
	}
	if !t.decided {
		t.decided = true
		t.inline = s.auditHeld.Add(1) == 1 && s.inflight.Load() == 1
		if !t.inline {
			s.auditHeld.Add(-1)
		}
	}
	return t.inline
}

// Appending behind the queue. A write appends inline only when no event
// waits for the trail: one that another replica queued (busy, crashed,
// or not recording inline) or a failed drain left, committed before the
// write, would be recorded after it, and the trail's order would not be
// the commits'. The head's bump checks in the same statement, a round
// trip of none: it bumps nothing while the queue holds an event for the
// trail, and the write queues its own behind them, as when the head stays
// locked. The check reads the statement's snapshot, taken before it
// waited for the head: what committed meanwhile was concurrent with the
// write, and an event a drain is taking still counts (the write queues).

// appendBehindQueue is appendAuditDetails for an inline append with
// Dialect.AuditLockWait: it fails with errQueuedAhead (inlineRefused),
// appending nothing, while events wait for the trail.
func (s *Store) appendBehindQueue(ctx context.Context, tx *sql.Tx, recs []*storage.AuditRecord, details []string) error {
	if s.bumpBehind == "" {
		return s.appendAuditDetails(ctx, tx, recs, details)
	}
	var h bumpedHead
	start := time.Now()
	err := tx.QueryRowContext(ctx, s.bumpBehind, storage.AuditConsumer, len(recs)).Scan(h.dest()...)
	s.observe("query", start, err)
	if err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	seq, prev, err := h.result()
	if err != nil {
		return err
	}
	return s.appendAuditAt(ctx, tx, recs, details, seq, prev)
}

// errQueuedAhead: events wait for the trail, ahead of an inline append.
var errQueuedAhead = errors.New("audit: events queued ahead")

// inlineRefused says whether err, of an inline append with
// Dialect.AuditLockWait, leaves the records to the queue: the head stayed
// locked, or events wait for the trail ahead of them.
func (s *Store) inlineRefused(err error) bool {
	return errors.Is(err, errQueuedAhead) || s.d.LockTimedOut != nil && s.d.LockTimedOut(err)
}

// bumpedHead is the answer of bumpBehindText's statement.
type bumpedHead struct {
	ahead bool
	seq   sql.NullInt64
	hash  sql.NullString
}

func (h *bumpedHead) dest() []any { return []any{&h.ahead, &h.seq, &h.hash} }

// result is the head's seq and previous hash once bumped; errQueuedAhead
// when events waited, and an error when there is no head to bump.
func (h *bumpedHead) result() (seq int64, prev string, err error) {
	switch {
	case h.ahead:
		return 0, "", errQueuedAhead
	case !h.seq.Valid:
		return 0, "", fmt.Errorf("audit head: %w", sql.ErrNoRows)
	}
	return h.seq.Int64, h.hash.String, nil
}

// bumpBehindText is, for a dialect with Dialect.WritableCTE, the
// statement that bumps the head by its second parameter unless an event
// waits for the consumer of its first (then the head is not even
// locked); its one row says which (bumpedHead). "" for the others: there
// an inline append bumps the head as ever (SQLite's writes are serial,
// and audit.Recorder's Flush before its Watch leaves nothing queued).
func (s *Store) bumpBehindText() string {
	if !s.d.WritableCTE {
		return ""
	}
	return s.sql(`WITH q AS (SELECT EXISTS (SELECT 1 FROM event_queue WHERE consumer = ?) AS ahead),
		h AS (UPDATE audit_head SET seq = seq + ? WHERE id = 1 AND NOT (SELECT ahead FROM q) RETURNING seq, hash)
		SELECT q.ahead, h.seq, h.hash FROM q LEFT JOIN h ON true`)
}

// drainTurns runs the audit drains of a store one at a time. A drain that
// arrives while one runs waits and shares the next with every other that
// arrived meanwhile: each caller gets a drain that began after it called
// (so it sees the events committed before), and under load one
// transaction at the head records many writes' events instead of one
// each.
//
// Each caller leaves when its own context ends, though the drain ahead
// may wait at a head another session holds for as long as that lasts. So
// the next drain belongs to none of its callers: it runs on a goroutine
// of its own once the current one ends, with the values of the caller
// that asked for it and a context that ends when the last of its callers
// left (when all left before it began, it does not run); the first of
// them to see it done takes its count. The drain that found the turn
// free runs on its caller's goroutine, with its context: nobody joins it.
type drainTurns struct {
	mu        sync.Mutex
	cur, next *drain // the one running, the one waiting for it
}

// drain is one run of the drain function: what it was asked (up to n
// events) and what it did, once done is closed.
type drain struct {
	n    int
	done chan struct{}
	got  int
	err  error
	// A next drain's, under drainTurns.mu: its callers still waiting,
	// whether it began, whether one of them took its count; cancel ends
	// its context.
	waiting        int
	began, counted bool
	cancel         context.CancelFunc
}

// do runs fn(ctx, n) now, or shares the next run. Only one caller of a
// run reports what it recorded: the others report 0, so that counts add
// up to what was recorded, and share runs until one found less than n
// (the queue as it was when they called is drained). A caller asking for
// another n than the waiting run's runs alone ("up to n" must hold).
func (g *drainTurns) do(ctx context.Context, n int, fn func(context.Context, int) (int, error)) (int, error) {
	for {
		got, shared, err := g.turn(ctx, n, fn)
		if !shared || err != nil || got < n {
			if shared {
				got = 0
			}
			return got, err
		}
	}
}

// turn is one run of do: shared says another caller reports its count.
func (g *drainTurns) turn(ctx context.Context, n int, fn func(context.Context, int) (int, error)) (got int, shared bool, err error) {
	g.mu.Lock()
	d := g.next
	switch {
	case g.cur == nil:
		d = &drain{n: n, done: make(chan struct{})}
		g.cur = d
		g.mu.Unlock()
		g.run(ctx, d, fn)
		return d.got, false, d.err
	case d == nil:
		d = g.queue(ctx, n, fn)
	case d.n != n:
		g.mu.Unlock()
		got, err := fn(ctx, n)
		return got, false, err
	}
	d.waiting++
	g.mu.Unlock()
	select {
	case <-d.done:
		g.mu.Lock()
		shared = d.counted
		d.counted = true
		g.mu.Unlock()
		return d.got, shared, d.err
	case <-ctx.Done():
		g.mu.Lock()
		if d.waiting--; d.waiting == 0 && d.began {
			d.cancel()
		}
		g.mu.Unlock()
		return 0, true, ctx.Err()
	}
}

// queue makes the next drain (g.mu held, a drain running), and its
// goroutine, which runs it once the current drain ends.
func (g *drainTurns) queue(ctx context.Context, n int, fn func(context.Context, int) (int, error)) *drain {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &drain{n: n, done: make(chan struct{}), cancel: cancel}
	prev := g.cur
	g.next = d
	go func() {
		defer cancel()
		<-prev.done // run made d current before closing it
		g.mu.Lock()
		d.began = true
		nobody := d.waiting == 0
		g.mu.Unlock()
		if nobody {
			g.handOn(d)
			return
		}
		g.run(runCtx, d, recovered(fn))
	}()
	return d
}

// run runs d, then hands the turn on. Deferred: a panic in fn (recovered
// by net/http) must not leave the turn taken for good.
func (g *drainTurns) run(ctx context.Context, d *drain, fn func(context.Context, int) (int, error)) {
	defer g.handOn(d)
	d.got, d.err = fn(ctx, d.n)
}

// handOn ends d's turn: the drain waiting, if any, has it next.
func (g *drainTurns) handOn(d *drain) {
	g.mu.Lock()
	g.cur, g.next = g.next, nil
	g.mu.Unlock()
	close(d.done)
}

// recovered is fn with a panic returned as its error: on a next drain's
// goroutine no net/http recovers it, and the server would stop.
func recovered(fn func(context.Context, int) (int, error)) func(context.Context, int) (int, error) {
	return func(ctx context.Context, n int) (got int, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("audit drain: panic: %v\n%s", r, debug.Stack())
			}
		}()
		return fn(ctx, n)
	}
}
