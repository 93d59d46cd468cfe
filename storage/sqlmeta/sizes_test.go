package sqlmeta

import (
	"math/bits"
	"testing"
)

// The compliance writes and the audit insert keep one statement per power
// of two up to their most rows, not one per count: each count was one
// more prepared statement on the writer, 1.3-1.5 MiB of SQLite's memory
// for the 32 of each compliance write, ~0.6 MiB for the audit inserts.
func TestStatementsByPowersOfTwo(t *testing.T) {
	for name, c := range map[string]struct {
		f    sizedQueries
		most int
	}{
		"compliance put":          {qPutCompliance, complianceRows},
		"compliance delete types": {qDeleteComplianceTypes, complianceRows},
		"audit insert":            {qAuditInsert, auditRows},
	} {
		if want := bits.Len(uint(c.most)); len(c.f) != want {
			t.Errorf("%s: %d statements, want %d (1, 2, 4... %d rows)", name, len(c.f), want, c.most)
		}
		for n := 1; n <= 3*c.most; n++ {
			left, pieces := n, 0
			for left > 0 {
				_, k := c.f.fit(left)
				if k > left || k > c.most || k&(k-1) != 0 {
					t.Fatalf("%s, %d rows: a piece of %d with %d left", name, n, k, left)
				}
				left -= k
				pieces++
			}
			if most := n/c.most + bits.OnesCount(uint(n%c.most)); pieces != most {
				t.Fatalf("%s: %d rows in %d statements, want %d", name, n, pieces, most)
			}
		}
	}
}
