package s3

import (
	"context"
	"testing"
	"time"
)

// TestIdlePartsDropped: once no upload has held a part for a while, the
// idle part buffers go to the GC. Kept, they stayed resident after the
// last big push for as long as the process lived.
func TestIdlePartsDropped(t *testing.T) {
	s := newTestStore(t, smallParts)
	// A part held by the test keeps the timer off through the push and
	// its commit: on a loaded machine they can outlast partIdle, and the
	// buffers were dropped before the check below could see them.
	held, err := s.partBuffer(context.Background(), s.cfg.PartSize)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(26, 11*mib)
	commit(t, s, push(t, s, newUpload(), data, 6*mib, 5*mib), data)
	if len(s.parts) == 0 {
		t.Fatal("no idle part buffer after a multi-part push: nothing to drop")
	}
	s.releasePart(held) // the last part in use: the timer starts
	// Waits for the drop itself, however late a loaded machine runs it.
	deadline := time.Now().Add(30 * time.Second)
	for len(s.parts) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle part buffers kept 30 s after the last upload", len(s.parts))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTrimKeepsPartsInUse: a trim that fires while a part is in use keeps
// the idle buffers (that part's release arms the timer again); once none
// is, it drops them and returns the memory, once: a trim with nothing to
// drop forces no collection.
func TestTrimKeepsPartsInUse(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	frees := 0
	s.freeMemory = func() { frees++ }
	a, err := s.partBuffer(ctx, s.cfg.PartSize)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.partBuffer(ctx, s.cfg.PartSize)
	if err != nil {
		t.Fatal(err)
	}
	s.releasePart(b)
	s.trimParts()
	if n := len(s.parts); n != 1 {
		t.Fatalf("%d idle part buffers after a trim with a part in use, want the 1 released", n)
	}
	s.releasePart(a)
	s.trimParts()
	if n := len(s.parts); n != 0 {
		t.Fatalf("%d idle part buffers after a trim with no part in use, want 0", n)
	}
	s.trimParts()
	if frees != 1 {
		t.Fatalf("memory returned %d times by three trims of which one dropped buffers, want 1", frees)
	}
}
