package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestAwaitQueuesEmpty: the packs setup waits until every outbox
// consumer's queue is 0 in the server's /metrics, and a scrape without
// one of them never counts as empty.
func TestAwaitQueuesEmpty(t *testing.T) {
	var scrapes atomic.Int64
	const drainedAt = 3 // the compliance queue empties at the third scrape
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		compliance := 0
		if n < drainedAt {
			compliance = 19000
		}
		fmt.Fprintf(w, "# TYPE packreg_outbox_pending_events gauge\n"+
			"packreg_outbox_pending_events{consumer=\"attest\"} 0\n"+
			"packreg_outbox_pending_events{consumer=\"audit\"} 0\n"+
			"packreg_outbox_pending_events{consumer=\"compliance\"} %d\n", compliance)
	}))
	defer srv.Close()
	c, err := newClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{c: c}
	if err := b.awaitQueuesEmpty(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := scrapes.Load(); got != drainedAt {
		t.Fatalf("returned after %d scrapes, want %d (when compliance's queue was empty)", got, drainedAt)
	}

	// A server that reports no compliance queue: the wait goes on until
	// its context ends.
	ctx, cancel := context.WithCancel(t.Context())
	var missing atomic.Int64
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if missing.Add(1) == 2 {
			cancel()
		}
		fmt.Fprint(w, "packreg_outbox_pending_events{consumer=\"attest\"} 0\n"+
			"packreg_outbox_pending_events{consumer=\"audit\"} 0\n")
	}))
	defer srv2.Close()
	c2, err := newClient(srv2.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&bench{c: c2}).awaitQueuesEmpty(ctx); err == nil {
		t.Fatal("a scrape without the compliance queue counted as empty")
	}
}
