package sqlmeta

import "math/bits"

// sizedQueries is a statement written for a number of rows, one query per
// power of two up to its largest: a run of rows goes out as the fewest
// statements of those sizes (largest first; 31 rows are 16+8+4+2+1).
// A query per count from 1 (queriesUpTo) is one prepared statement per
// count on each connection that runs it, and a statement's program grows
// with its rows: SQLite held 1.3-1.5 MiB for the 32 compliance INSERTs
// and DELETEs on the writer alone, where 6 of each hold a fifth of it.
type sizedQueries []*Query

// queriesPow2 is text's query for 1, 2, 4... up to most rows (a power of
// two).
func queriesPow2(most int, text func(int) string) sizedQueries {
	out := make(sizedQueries, bits.Len(uint(most)))
	for k := range out {
		out[k] = query(text(1 << k))
	}
	return out
}

// fit is the query for the largest size that n rows fill, and that size.
func (f sizedQueries) fit(n int) (*Query, int) {
	k := min(bits.Len(uint(n)), len(f)) - 1
	return f[k], 1 << k
}
