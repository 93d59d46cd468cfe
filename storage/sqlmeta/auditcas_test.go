package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

func pushEvent(blob string) storage.Event {
	return storage.Event{Actor: "test", Action: "blob.push", Target: "acme/rules", Digest: blobDigest(blob),
		Details: map[string]string{"size": "1"}}
}

// linkAudited links blob into acme/rules with its push event, the audit
// record appended inline, as a push does.
func linkAudited(t *testing.T, s *sqlmeta.Store, blob string) {
	t.Helper()
	if err := s.LinkBlob(t.Context(), "acme/rules", blobDigest(blob), 1, pushEvent(blob)); err != nil {
		t.Fatal(err)
	}
}

// verified fails t unless the trail of s is one chain of want records.
func verified(t *testing.T, s *sqlmeta.Store, want int64) {
	t.Helper()
	v, err := storage.VerifyAudit(t.Context(), s)
	if err != nil || !v.OK || v.Records != want {
		t.Fatalf("audit trail: %+v, %v; want %d records in one chain", v, err, want)
	}
}

// countStatements counts the statements s runs from now on; the result
// says how many since its last call: queries, and the others.
func countStatements(s *sqlmeta.Store) func() (queries, execs int64) {
	var q, e atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		switch op {
		case "query":
			q.Add(1)
		case "exec":
			e.Add(1)
		}
	})
	return func() (int64, int64) { return q.Swap(0), e.Swap(0) }
}

// An audited write after this store's own last append reads nothing: the
// head moves from where that append left it, by compare-and-set.
func TestAuditAppendAfterOwnReadsNoHead(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	s.AuditInline()
	linkAudited(t, s, "a") // the first after opening reads the head
	counted := countStatements(s)
	linkAudited(t, s, "b")
	if q, e := counted(); q != 0 || e != 4 {
		t.Fatalf("an audited link ran %d queries and %d other statements; want none and 4 (link, queue, head, record)", q, e)
	}
	verified(t, s, 2)
}

// Another process appending moves the head under the store's memory of
// it: the store's next append finds the head changed and reads it, so the
// trail stays one chain.
func TestAuditAppendAfterAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	a, b := openSQLite(t, path), openSQLite(t, path)
	a.AuditInline()
	b.AuditInline()
	for i, s := range []*sqlmeta.Store{a, b, a, a, b, a} {
		linkAudited(t, s, string(rune('a'+i)))
	}
	verified(t, a, 6)
}

// A write that appended and rolled back leaves the store remembering a
// head the database never had: the next append reads the real one.
func TestAuditAppendAfterRollback(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	s.AuditInline()
	linkAudited(t, s, "a")
	fail := errors.New("fails after its records")
	errs, _ := s.Batch(sqlmeta.BatchOp{Events: []storage.Event{pushEvent("b")},
		Then: func(context.Context, *sql.Tx) error { return fail }})
	if !errors.Is(errs[0], fail) {
		t.Fatalf("write: %v, want %v", errs[0], fail)
	}
	linkAudited(t, s, "c")
	linkAudited(t, s, "d")
	verified(t, s, 3)
	h, err := s.AuditHead(t.Context())
	if err != nil || h.ID != 3 {
		t.Fatalf("head %+v, %v; want record 3", h, err)
	}
}
