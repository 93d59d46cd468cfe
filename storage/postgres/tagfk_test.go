package postgres_test

import (
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// A manifest put runs no check of a foreign key from tags to manifests:
// it was a query and a row lock (a WAL record) in every put, on the row
// the put had just written (migration 21).
func TestTagsHaveNoForeignKey(t *testing.T) {
	s := watched(t)
	var n int
	if err := s.ReadDB().QueryRowContext(t.Context(), `SELECT count(*) FROM pg_constraint
		WHERE contype = 'f' AND conrelid = 'tags'::regclass`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("tags has %d foreign keys, want none", n)
	}
}

// A delete of a manifest that meets a put of it under way, with a new
// tag, takes that tag too once the put commits: no tag is left pointing
// at no manifest. The put is held open in a transaction of its own,
// having written the manifest's row and the tag, as a put does.
func TestDeleteManifestTakesTheTagOfAPutUnderWay(t *testing.T) {
	ctx := t.Context()
	s := watched(t)
	m, o, _ := putChecked(`{"n":1}`, pgDigest("cfg"), 3, true)
	if err := s.LinkBlob(ctx, "r", pgDigest("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, m, []string{"v"}, o); err != nil {
		t.Fatal(err)
	}
	holder, blocked := holdTx(t, s, `UPDATE manifests SET pushed = pushed + 1 WHERE digest = '`+string(m.Digest)+`';
		INSERT INTO tags (repo_id, name, digest, updated) SELECT repo_id, 'w', digest, 0 FROM manifests
		WHERE digest = '`+string(m.Digest)+`'`)
	done := make(chan error, 1)
	go func() { done <- s.DeleteManifest(ctx, "r", m.Digest, storage.DeleteOptions{}) }()
	for deadline := time.Now().Add(10 * time.Second); blocked() == 0; time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the delete did not wait for the put under way: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the delete never waited for the put under way")
		}
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("delete: %v", err)
	}
	var left int
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM tags t WHERE NOT EXISTS
		(SELECT 1 FROM manifests m WHERE m.repo_id = t.repo_id AND m.digest = t.digest)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d tags point at no manifest", left)
	}
}
