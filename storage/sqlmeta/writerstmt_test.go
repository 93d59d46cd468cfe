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
