package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// putChecked is a put of a manifest referencing cfg into repository r
// by tag v, whose CheckPresent refuses cfg missing or of another size
// than claimed, as the registry's does, and records the sizes it saw.
// sized: the put gives cfg's claimed size (PresentBlobSizes).
func putChecked(body string, cfg digest.Digest, claimed int64, sized bool) (*storage.Manifest, storage.PutManifestOptions, *[]int64) {
	m := &storage.Manifest{Repo: "r", Digest: pgDigest(body), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(body)), Payload: []byte(body), Refs: []digest.Digest{cfg}}
	seen := new([]int64)
	o := storage.PutManifestOptions{Present: m.Refs,
		Events: []storage.Event{pgEvent("manifest.push", "r"), pgEvent("tag.move", "r:v")},
		CheckPresent: func(found []storage.PresentRef) error {
			*seen = append(*seen, found[0].Size)
			if found[0].Size != claimed {
				return fmt.Errorf("config of %d bytes, want %d: %w", found[0].Size, claimed, errRefused)
			}
			return nil
		}}
	if sized {
		o.PresentBlobSizes = []int64{claimed}
	}
	return m, o, seen
}

var errRefused = errors.New("refused")

// nothingStored fails t unless the put of m left no manifest, tag or
// event behind.
func nothingStored(t *testing.T, s storage.Store, m *storage.Manifest) {
	t.Helper()
	ctx := t.Context()
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

// A reference a collector deletes between the put's read of it and its
// one statement (sqlmeta's manifestone.go), or before the statement of a
// put that gives its blobs' sizes: the statement waits for the
// collector's lock, then finds the row gone and writes nothing, and the
// put runs again as a transaction, whose check refuses it. Nothing of it
// is stored, and no event is queued.
func TestPutReferenceGoneBeforeItsStatement(t *testing.T) {
	for _, sized := range []bool{false, true} {
		t.Run(fmt.Sprintf("sized=%v", sized), func(t *testing.T) {
			ctx := t.Context()
			s := watched(t)
			cfg := pgDigest("cfg")
			if err := s.LinkBlob(ctx, "r", cfg, 3); err != nil { // the repository's id remembered
				t.Fatal(err)
			}
			m, o, seen := putChecked(`{"n":1}`, cfg, 3, sized)
			collector, blocked := holdTx(t, s, `DELETE FROM blobs WHERE digest = '`+string(cfg)+`'`)
			done := make(chan error, 1)
			go func() { done <- s.PutManifest(ctx, m, []string{"v"}, o) }()
			waitFor(func() bool { return blocked() == 1 })
			if err := collector.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, errRefused) {
				t.Fatalf("put with its config deleted meanwhile: %v, want the check's refusal", err)
			}
			if n := len(*seen); n == 0 || (*seen)[n-1] != -1 {
				t.Fatalf("sizes the check saw: %v, want the config gone at the last", *seen)
			}
			nothingStored(t, s, m)
		})
	}
}

// A put whose blobs' sizes (PresentBlobSizes) are not those stored:
// its statement writes nothing, and the transaction's check refuses it.
func TestPutBlobSizeOtherThanClaimed(t *testing.T) {
	ctx := t.Context()
	s := watched(t)
	cfg := pgDigest("cfg")
	if err := s.LinkBlob(ctx, "r", cfg, 3); err != nil {
		t.Fatal(err)
	}
	m, o, seen := putChecked(`{"n":1}`, cfg, 4, true)
	if err := s.PutManifest(ctx, m, []string{"v"}, o); !errors.Is(err, errRefused) {
		t.Fatalf("put claiming 4 bytes of a 3-byte config: %v, want the check's refusal", err)
	}
	if len(*seen) != 1 || (*seen)[0] != 3 {
		t.Fatalf("sizes the check saw: %v, want the stored 3", *seen)
	}
	nothingStored(t, s, m)
}

// A manifest put locks no row of its repository: concurrent puts into
// one repository each took it FOR KEY SHARE (the check of manifests'
// foreign key to repositories), a new multixact and a WAL record every
// time. A session holding the row FOR UPDATE, which conflicts with that
// lock, must not keep a put waiting. Both ways of a put: with its audit
// records inline, alone, a transaction; else one statement
// (manifestone.go).
func TestPutLocksNoRepositoryRow(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			ctx := t.Context()
			s := watched(t)
			if inline {
				s.AuditInline()
			}
			cfg := pgDigest("cfg")
			if err := s.LinkBlob(ctx, "r", cfg, 3); err != nil { // the repository's row, and its id remembered
				t.Fatal(err)
			}
			blocked, release := holdLock(t, s, `SELECT 1 FROM repositories WHERE name = 'r' FOR UPDATE`)
			defer release()
			m, o, _ := putChecked(`{"n":1}`, cfg, 3, true)
			writeWithoutWaiting(t, blocked, 0, func() error { return s.PutManifest(ctx, m, []string{"v"}, o) })
			if _, err := s.GetManifest(ctx, "r", m.Digest); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A queued event costs one index entry: every statement on event_queue
// looks rows up by consumer and id, and a key on id alone beside that
// index was a second entry (a WAL record) per row that nothing read.
func TestEventQueueHasOneIndex(t *testing.T) {
	s := watched(t)
	var idx []string
	rows, err := s.ReadDB().QueryContext(t.Context(), `SELECT indexdef FROM pg_indexes
		WHERE tablename = 'event_queue' AND schemaname = current_schema() ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, def)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(idx) != 1 || !strings.Contains(idx[0], "(consumer, id)") {
		t.Fatalf("indexes of event_queue: %q, want the one on (consumer, id)", idx)
	}
}
