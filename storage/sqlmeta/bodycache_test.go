package sqlmeta

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/storage"
)

// The pull cache keeps what it read until a write, within its budget: a
// write, by commit or by the writes count, drops everything; a put that
// would pass the budget starts over; a payload above bodyMax is never kept.
func TestBodyCacheBounds(t *testing.T) {
	var writes atomic.Int64
	c := newBodyCache(1000, &writes)
	body := func(n int) *storage.Manifest { return &storage.Manifest{Payload: bytes.Repeat([]byte("x"), n)} }
	kept := func(k bodyKey) bool { m, _ := c.get(k); return m != nil }
	a, b, big := bodyKey{"r", "a", ""}, bodyKey{"r", "b", ""}, bodyKey{"r", "big", ""}

	_, g := c.get(a)
	c.put(a, g, body(400))
	c.put(b, g, body(400))
	if !kept(a) || !kept(b) {
		t.Fatal("two puts within the budget: not kept")
	}
	c.wrote()
	if kept(a) || kept(b) {
		t.Fatal("kept across a commit")
	}
	_, g = c.get(a)
	c.put(a, g, body(400))
	writes.Add(1)
	if kept(a) {
		t.Fatal("kept across a counted write")
	}
	c.put(a, g, body(400)) // read before that write: stale
	if kept(a) {
		t.Fatal("a read from before a write was kept")
	}
	_, g = c.get(a)
	c.put(a, g, body(400))
	c.put(b, g, body(700)) // past the budget: starts over
	if kept(a) || !kept(b) {
		t.Fatalf("past the budget: a kept %v, b kept %v; want only b", kept(a), kept(b))
	}
	big1 := newBodyCache(1<<30, &writes)
	_, g = big1.get(big)
	big1.put(big, g, body(bodyMax+1))
	if m, _ := big1.get(big); m != nil {
		t.Fatal("a payload above bodyMax was kept")
	}
}
