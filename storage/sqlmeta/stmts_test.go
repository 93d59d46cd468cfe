package sqlmeta_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
)

// With a reader pool of its own, the writer prepares a SELECT only once
// a write runs it: at open it prepared every one (1.7 MiB of SQLite's
// memory), most of which only the readers run. One run inside a write
// transaction is prepared after its commit, for the writes after it.
func TestWriterPreparesSelectsOnUse(t *testing.T) {
	_, s, _ := teststores.Open(t)
	if n := s.WriterSelects(); n != 0 {
		t.Fatalf("%d SELECTs prepared on the writer at open, want none", n)
	}
	for range 2 {
		if err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return s.PingIn(ctx, tx) }); err != nil {
			t.Fatal(err)
		}
		if n := s.WriterSelects(); n != 1 {
			t.Fatalf("%d SELECTs prepared on the writer after a write ran one, want 1", n)
		}
	}
}

// Nothing is prepared at open, on either pool: database/sql prepared each
// reader statement on one reader connection at once, so that connection
// held every SELECT (and the writer every other statement) for the life
// of the process, where a workload runs few of them. A read prepares its
// statement on the readers when it first runs.
func TestNothingPreparedAtOpen(t *testing.T) {
	_, s, _ := teststores.Open(t)
	if w, r := s.WriterStmts(), s.ReaderStmts(); w != 0 || r != 0 {
		t.Fatalf("%d statements prepared on the writer and %d on the readers at open, want none", w, r)
	}
	for range 2 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := s.ReaderStmts(); n != 1 {
			t.Fatalf("%d statements prepared on the readers after a read ran one, want 1", n)
		}
	}
	if n := s.WriterStmts(); n != 0 {
		t.Fatalf("%d statements prepared on the writer after reads alone, want none", n)
	}
}

// Open still compiles every query, each finalized at once: a typo fails
// Open, not the first request that runs it.
func TestOpenChecksQueries(t *testing.T) {
	_, s, _ := teststores.Open(t)
	if err := s.Check(t.Context(), "SELECT 1 FROM blobs"); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context(), "SELECT 1 FROM blobz"); err == nil {
		t.Fatal("a query of a table that does not exist compiled")
	}
	if w, r := s.WriterStmts(), s.ReaderStmts(); w != 0 || r != 0 {
		t.Fatalf("%d statements left prepared on the writer and %d on the readers by the check, want none", w, r)
	}
}
