package compliance

import (
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Blob events are not queued for compliance: no verdict depends on a
// blob, and each would cost a repository's evaluation and a snapshot.
func TestBlobEventsAreNotQueuedForCompliance(t *testing.T) {
	f := newFixture(t, Config{})
	record := func(action string) {
		body := []byte(action)
		ev := storage.Event{Action: action, Target: "acme/rules", Digest: digest.FromBytes(digest.SHA256, body)}
		if err := f.st.LinkBlob(t.Context(), "acme/rules", ev.Digest, int64(len(body)), ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"blob.push", "blob.mount", "blob.delete"} {
		record(a)
	}
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 0 {
		t.Fatalf("after blob events compliance has %d queued (%v), want 0", n, err)
	}
	record("manifest.push")
	if n, err := f.st.CountPendingEvents(t.Context(), Consumer); err != nil || n != 1 {
		t.Fatalf("after a manifest event compliance has %d queued (%v), want 1", n, err)
	}
}
