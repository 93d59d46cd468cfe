package sqlmeta_test

import (
	"path/filepath"
	"testing"
	"time"
)

// A push's link on SQLite, of a blob no collection touched, reads
// nothing: the tombstones' answer is a statement's count, and the audit
// head is where the store's last append left it. Each query in a write
// transaction costs database/sql a goroutine and a thread woken for it.
func TestConfirmedLinkWithoutTombstoneReadsNothing(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	s.AuditInline()
	linkAudited(t, s, "a") // the repository and the head, known from here on
	counted := countStatements(s)
	for _, within := range []time.Duration{time.Minute, time.Hour, 0} {
		counted()
		blob := "b" + within.String()
		c, err := s.LinkBlobConfirmed(t.Context(), "acme/rules", blobDigest(blob), 1, within, pushEvent(blob))
		if err != nil || !c.Serial || c.Deleting || c.Begun != (within == 0) {
			t.Fatalf("link within %v: %+v, %v", within, c, err)
		}
		if q, e := counted(); q != 0 || e != 5 {
			t.Fatalf("link within %v ran %d queries and %d other statements; want none and 5 (link, queue, head, record, tombstones)", within, q, e)
		}
	}
	verified(t, s, 4)
}
