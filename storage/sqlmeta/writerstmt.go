package sqlmeta

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
)

// A SELECT is prepared on the writer on its first use there, not at
// open: most run only on the readers, and every statement prepared is
// SQLite memory held for the life of the process (the writer's SELECTs
// prepared at open were 1.7 MiB of its resident memory, of a server's
// 60-odd). A read on the writer pool (no transaction held) prepares its
// statement at once; one inside a write transaction cannot (the pool may
// have one connection, which the transaction holds), so it runs its text
// and the statement is prepared after the commit.
type writerSelects struct {
	stmts   []atomic.Pointer[sql.Stmt] // Query.idx -> prepared on the writer
	wanted  []atomic.Bool              // Query.idx -> used in a transaction, unprepared
	pending atomic.Bool                // some wanted
	mu      sync.Mutex                 // one preparer at a time
}

func isSelect(text string) bool { return strings.HasPrefix(strings.TrimSpace(text), "SELECT") }

// lazyWriterSelects: the readers are a pool of their own, so the writer
// needs only the SELECTs a write runs.
func (s *Store) lazyWriterSelects() bool { return s.r != s.w }

// writerSelect is q's statement on the writer, prepared now when
// onPool (no transaction held), else nil and prepared after the commit.
func (s *Store) writerSelect(ctx context.Context, q *Query, onPool bool) *sql.Stmt {
	if st := s.wsel.stmts[q.idx].Load(); st != nil {
		return st
	}
	if !onPool {
		s.wsel.wanted[q.idx].Store(true)
		s.wsel.pending.Store(true)
		return nil
	}
	return s.prepareWriterSelect(ctx, q.idx)
}

// prepareWanted prepares the SELECTs writes ran unprepared; run after a
// commit, when the writer holds no transaction of this goroutine.
func (s *Store) prepareWanted(ctx context.Context) {
	if !s.wsel.pending.Swap(false) {
		return
	}
	for i := range s.wsel.wanted {
		if s.wsel.wanted[i].Swap(false) {
			s.prepareWriterSelect(ctx, i)
		}
	}
}

func (s *Store) prepareWriterSelect(ctx context.Context, idx int) *sql.Stmt {
	s.wsel.mu.Lock()
	defer s.wsel.mu.Unlock()
	if st := s.wsel.stmts[idx].Load(); st != nil || s.closed.Load() {
		return st
	}
	st, err := s.w.PrepareContext(context.WithoutCancel(ctx), s.text[idx])
	if err != nil {
		return nil // runs its text; prepared on a later use
	}
	s.wsel.stmts[idx].Store(st)
	return st
}

// closeWriterSelects closes the SELECTs prepared on the writer.
func (s *Store) closeWriterSelects() {
	s.wsel.mu.Lock()
	defer s.wsel.mu.Unlock()
	for i := range s.wsel.stmts {
		if st := s.wsel.stmts[i].Swap(nil); st != nil {
			st.Close()
		}
	}
}
