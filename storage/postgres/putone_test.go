package postgres_test

import (
	"errors"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// A reference a collector deletes between the put's read of it and its
// one statement (sqlmeta's manifestone.go): the statement waits for the
// collector's lock, then finds the row gone and writes nothing, and the
// put runs again as a transaction, whose check refuses it. Nothing of it
// is stored, and no event is queued.
func TestPutReferenceGoneBeforeItsStatement(t *testing.T) {
	ctx := t.Context()
	s := watched(t)
	cfg := pgDigest("cfg")
	if err := s.LinkBlob(ctx, "r", cfg, 3); err != nil { // the repository's id remembered
		t.Fatal(err)
	}
	body := `{"n":1}`
	m := &storage.Manifest{Repo: "r", Digest: pgDigest(body), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(body)), Payload: []byte(body), Refs: []digest.Digest{cfg}}
	gone := errors.New("config gone")
	var seen []int64 // the config's size at each check
	o := storage.PutManifestOptions{Present: m.Refs,
		Events: []storage.Event{pgEvent("manifest.push", "r"), pgEvent("tag.move", "r:v")},
		CheckPresent: func(found []storage.PresentRef) error {
			seen = append(seen, found[0].Size)
			if found[0].Size < 0 {
				return gone
			}
			return nil
		}}
	collector, blocked := holdTx(t, s, `DELETE FROM blobs WHERE digest = '`+string(cfg)+`'`)
	done := make(chan error, 1)
	go func() { done <- s.PutManifest(ctx, m, []string{"v"}, o) }()
	waitFor(func() bool { return blocked() == 1 })
	if err := collector.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, gone) {
		t.Fatalf("put with its config deleted meanwhile: %v, want the check's refusal", err)
	}
	if len(seen) == 0 || seen[len(seen)-1] != -1 {
		t.Fatalf("sizes the check saw: %v, want the config gone at the last", seen)
	}
	if _, err := s.GetManifest(ctx, "r", m.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("manifest of the refused put: %v, want not found", err)
	}
	if _, err := s.ResolveTag(ctx, "r", "v"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("tag of the refused put: %v, want not found", err)
	}
	if evs, err := s.PendingEvents(ctx, "watcher", 0); err != nil || len(evs) != 0 {
		t.Fatalf("events queued by the refused put: %v, %v; want none", evs, err)
	}
}
