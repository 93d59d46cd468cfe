package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func TestRebind(t *testing.T) {
	d := sqlmeta.Dialect{Numbered: true}
	if got, want := d.Rebind(`SELECT a FROM t WHERE x = ? AND y IN (?, ?)`), `SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)`; got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
	d.Numbered = false
	if got := d.Rebind(`x = ?`); got != `x = ?` {
		t.Fatalf("Rebind without numbering changed the query: %q", got)
	}
}

// Group commit: writers that fail inside a shared transaction are rolled
// back alone (savepoints) and the others commit. Writers that wrote before
// failing must leave nothing behind.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("boom")
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires) VALUES (?, 'h', 0)`, fmt.Sprint(i)); err != nil {
					return err
				}
				if i%3 == 0 {
					return boom // after writing: the savepoint must undo it
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%3 == 0; errors.Is(err, boom) != want || (!want && err != nil) {
			t.Errorf("writer %d: err = %v", i, err)
		}
	}
	for i := range n {
		var c int
		if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM leases WHERE name = ?`, fmt.Sprint(i)).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[i%3 == 0]; c != want {
			t.Errorf("writer %d left %d rows, want %d", i, c, want)
		}
	}
}

// A caller that gives up before its turn does not run, and does not take
// the rest of the batch down with it.
func TestGroupCommitCancelledCaller(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	err = s.Write(ctx, func(context.Context, *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled write: err = %v, ran = %v", err, ran)
	}
	if err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires) VALUES ('x', 'h', 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
