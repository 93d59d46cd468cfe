package sqlmeta

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// A statement is prepared on a pool on its first use there, not at open:
// a workload runs few of the store's 250-odd statements (admin,
// compliance, the pack listing's filter variants are rare), and every
// statement prepared is SQLite memory held for the life of the process.
// The writer's SELECTs prepared at open were 1.7 MiB of it; the readers'
// (database/sql prepares a pool's statement on one connection at once, so
// one reader carried all of them) and the writer's other statements
// another 2-odd MiB. A use on a pool (no transaction held) prepares its
// statement at once; one inside a write transaction cannot (the writer
// pool may have one connection, which the transaction holds), so it runs
// its text and the statement is prepared after the commit.
type lazyStmts struct {
	pool    *sql.DB
	text    []string                   // Query.idx -> SQL
	stmts   []atomic.Pointer[sql.Stmt] // Query.idx -> prepared on pool
	wanted  []atomic.Bool              // Query.idx -> used in a transaction, unprepared
	pending atomic.Bool                // some wanted
	mu      sync.Mutex                 // one preparer at a time; closed
	closed  bool
}

func (l *lazyStmts) init(pool *sql.DB, text []string) {
	l.pool, l.text = pool, text
	l.stmts = make([]atomic.Pointer[sql.Stmt], len(text))
	l.wanted = make([]atomic.Bool, len(text))
}

// get is statement idx on the pool, prepared now when onPool (no
// transaction held), else nil and prepared after the commit
// (prepareWanted).
func (l *lazyStmts) get(ctx context.Context, idx int, onPool bool) *sql.Stmt {
	if st := l.stmts[idx].Load(); st != nil {
		return st
	}
	if !onPool {
		l.wanted[idx].Store(true)
		l.pending.Store(true)
		return nil
	}
	return l.prepare(ctx, idx)
}

// prepareWanted prepares the statements transactions ran unprepared; run
// after a commit, when the pool holds no transaction of this goroutine.
func (l *lazyStmts) prepareWanted(ctx context.Context) {
	if !l.pending.Swap(false) {
		return
	}
	for i := range l.wanted {
		if l.wanted[i].Swap(false) {
			l.prepare(ctx, i)
		}
	}
}

func (l *lazyStmts) prepare(ctx context.Context, idx int) *sql.Stmt {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.stmts[idx].Load(); st != nil || l.closed {
		return st
	}
	st, err := l.pool.PrepareContext(context.WithoutCancel(ctx), l.text[idx])
	if err != nil {
		return nil // runs its text; prepared on a later use
	}
	l.stmts[idx].Store(st)
	return st
}

// close closes the statements prepared and prepares no more.
func (l *lazyStmts) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for i := range l.stmts {
		if st := l.stmts[i].Swap(nil); st != nil {
			st.Close()
		}
	}
}

// prepare readies the lazy statements of both pools and checks that every
// query compiles on the writer, one at a time and finalized at once, so
// that a typo still fails Open, not a request, without holding what was
// compiled.
func (s *Store) prepare(ctx context.Context) error {
	s.wsel.init(s.w, s.text)
	if s.r != s.w {
		s.rsel.init(s.r, s.text)
	}
	return s.check(ctx, s.text)
}

// check compiles each of texts on the writer and finalizes it at once.
func (s *Store) check(ctx context.Context, texts []string) error {
	for _, text := range texts {
		st, err := s.w.PrepareContext(ctx, text)
		if err != nil {
			return fmt.Errorf("%s: %w", text, err)
		}
		if err := st.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) closeStmts() {
	s.wsel.close()
	s.rsel.close()
}
