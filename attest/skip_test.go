package attest_test

import (
	"fmt"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// Blob events are not queued for the indexer, which has nothing to do
// with them: a blob push costs it no wake-up, lease or acknowledgement.
// Manifest events still are.
func TestBlobEventsAreNotQueuedForIndexing(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	e := envOn(t, blobs, meta, attest.Config{}, false) // no worker: the queue stays as written
	e.pushBlob("acme/rules", []byte("a layer"))
	if n, err := meta.CountPendingEvents(t.Context(), attest.Consumer); err != nil || n != 0 {
		t.Fatalf("after a blob push the indexer has %d events queued (%v), want 0", n, err)
	}
	e.pushPack("acme/rules", "1.0.0")
	if n, err := meta.CountPendingEvents(t.Context(), attest.Consumer); err != nil || n == 0 {
		t.Fatalf("after a pack push the indexer has %d events queued (%v), want its manifest's", n, err)
	}
}

// Tag moves are queued for the indexer only for cosign's tags, the ones
// it reads a subject from: a push by any other tag queues its manifest's
// event alone, a row fewer per push.
func TestPlainTagMovesAreNotQueuedForIndexing(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	e := envOn(t, blobs, meta, attest.Config{}, false) // no worker: the queue stays as written
	d := e.pushPack("acme/rules", "1.0.0")
	if got := queued(t, meta); got != "[manifest.push acme/rules]" {
		t.Fatalf("after a push by tag the indexer has %s queued, want the manifest's event alone", got)
	}
	e.signTag("acme/rules", d)
	want := "[manifest.push acme/rules manifest.push acme/rules tag.move acme/rules:" + attest.SchemaTag(d, attest.KindSignature) + "]"
	if got := queued(t, meta); got != want {
		t.Fatalf("after a cosign signature the indexer has %s queued, want %s", got, want)
	}
}

// queued is the indexer's pending events, as "action target".
func queued(t *testing.T, meta storage.Outbox) string {
	t.Helper()
	evs, err := meta.PendingEvents(t.Context(), attest.Consumer, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Action+" "+e.Target)
	}
	return fmt.Sprint(names)
}
