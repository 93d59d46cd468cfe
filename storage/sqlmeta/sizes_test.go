package sqlmeta

import (
	"math/bits"
	"testing"
)

// The compliance writes keep one statement per power of two up to
// complianceRows, not one per count: each count was one more prepared
// statement on the writer, 1.3-1.5 MiB of SQLite's memory for the 32 of
// each.
func TestComplianceStatementsByPowersOfTwo(t *testing.T) {
	want := bits.Len(uint(complianceRows))
	for name, f := range map[string]sizedQueries{"put": qPutCompliance, "delete types": qDeleteComplianceTypes} {
		if len(f) != want {
			t.Errorf("%s: %d statements, want %d (1, 2, 4... %d rows)", name, len(f), want, complianceRows)
		}
	}
	for n := 1; n <= 3*complianceRows; n++ {
		left, pieces := n, 0
		for left > 0 {
			_, k := qPutCompliance.fit(left)
			if k > left || k > complianceRows || k&(k-1) != 0 {
				t.Fatalf("%d rows: a piece of %d with %d left", n, k, left)
			}
			left -= k
			pieces++
		}
		if most := n/complianceRows + bits.OnesCount(uint(n%complianceRows)); pieces != most {
			t.Fatalf("%d rows in %d statements, want %d", n, pieces, most)
		}
	}
}
