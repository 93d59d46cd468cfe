package postgres_test

import (
	"testing"
)

// A drain of the audit trail's queue: a look for events, then BEGIN, the
// events taken with the chain head bumped by their count (one statement),
// the records inserted with the head's hash, COMMIT. The events were
// taken and the head bumped in two. The chain stays whole.
func TestDrainRoundTrips(t *testing.T) {
	ctx := t.Context()
	testDSN(t)
	dsn, trips := tripDSN(t, freshSchema(t))
	s := open(t, dsn)
	t.Cleanup(func() { s.Close() })
	link := func(blob string) {
		t.Helper()
		if err := s.LinkBlob(ctx, "r", pgDigest(blob), 1, pgEvent("blob.push", blob)); err != nil {
			t.Fatal(err)
		}
	}
	drain := func(want int) int64 {
		t.Helper()
		before := trips.trips.Load()
		if n, err := s.AuditEvents(ctx, 0); err != nil || n != want {
			t.Fatalf("AuditEvents = %d, %v; want %d recorded", n, err, want)
		}
		return trips.trips.Load() - before
	}
	link("a")
	link("a2")
	drain(2) // the statements prepared
	link("b")
	link("c")
	if n := drain(2); n != 5 {
		t.Fatalf("round trips of a drain of 2 events: %d, want 5", n)
	}
	verifiedChain(t, s, 4)
	if n := drain(0); n != 1 {
		t.Fatalf("round trips of a drain of none: %d, want the look alone", n)
	}
}
