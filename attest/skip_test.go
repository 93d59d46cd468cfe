package attest_test

import (
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/internal/teststores"
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
