package postgres_test

import (
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// A manifest pushed again while a delete of it is under way keeps its
// first push's created time. The delete records that time as it removes
// the row (sqlmeta's firstPushCreated), so the put, whose snapshot was
// taken before the delete committed, does not see the record, and its
// insert, which waited for the delete, finds no row to keep: its created
// time comes from the row its snapshot still sees.
func TestRepushDuringDeleteKeepsFirstPush(t *testing.T) {
	ctx := t.Context()
	s := watched(t)
	first := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &storage.Manifest{Repo: "r", Digest: pgDigest(`{"n":1}`), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: 7, Payload: []byte(`{"n":1}`), Created: first}
	evs := storage.PutManifestOptions{Events: []storage.Event{pgEvent("manifest.push", "r")}}
	if err := s.PutManifest(ctx, m, []string{"v"}, evs); err != nil {
		t.Fatal(err)
	}
	// What DeleteManifest writes, held uncommitted.
	del, blocked := holdTx(t, s, `INSERT INTO manifest_first_push (repo, digest, at)
			SELECT 'r', digest, created FROM manifests WHERE digest = '`+string(m.Digest)+`';
		DELETE FROM tags WHERE digest = '`+string(m.Digest)+`';
		DELETE FROM manifests WHERE digest = '`+string(m.Digest)+`'`)
	again := *m
	again.Created = first.Add(24 * time.Hour)
	done := make(chan error, 1)
	go func() { done <- s.PutManifest(ctx, &again, []string{"v"}, evs) }()
	waitFor(func() bool { return blocked() == 1 })
	if err := del.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := s.GetManifest(ctx, "r", m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(first) {
		t.Fatalf("created after a re-push during the delete = %v, want the first push %v", got.Created, first)
	}
}
