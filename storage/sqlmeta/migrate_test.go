package sqlmeta_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// sqliteAt is a SQLite database at path migrated up to version, as an
// older release left it; the caller closes db.
func sqliteAt(t *testing.T, version int) (path string, db *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "meta.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlmeta.MigrateTo(t.Context(), db, sqlite.Dialect, version); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return path, db
}

// A database written before migration 6 keeps what it knew: its pack
// versions become claims, its manifests' created times their first push,
// and its attest records move to the table keyed by subject.
func TestMigration6KeepsData(t *testing.T) {
	path, db := sqliteAt(t, 5)
	ctx := t.Context()
	d := digest.FromBytes(digest.SHA256, []byte("pack"))
	subject := digest.FromBytes(digest.SHA256, []byte("subject"))
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO repositories (id, name) VALUES (1, 'acme/rules')`, nil},
		{`INSERT INTO manifests (repo_id, digest, media_type, artifact_type, size, payload, subject, refs, created)
			VALUES (1, ?, 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.packreg.pack.v1', 2, X'7b7d', '', '', ?)`, []any{string(d), created}},
		{`INSERT INTO pack_versions (name, version, digest, media_type, artifact_type, size, total_size, status,
			status_reason, description, labels, files, created, updated)
			VALUES ('acme/rules', '1.0.0', ?, '', '', 2, 2, 'archived', '', '', '{}', '[]', ?, ?)`, []any{string(d), created, created}},
		{`INSERT INTO attest_records (repo, referrer, idx, kind, format, subject, key_id, algorithm, predicate_type,
			sig_hash, payload_digest, status, reason, recorded, checked, superseded)
			VALUES ('acme/rules', ?, 0, 'signature', 'cosign-tag', ?, 'k', 'ecdsa', '', 'h', 'p', 'verified', '', ?, ?, 0)`,
			[]any{string(d), string(subject), created, created}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.ClaimedDigest(ctx, "acme/rules", "1.0.0"); err != nil || got != d {
		t.Fatalf("claim of the published version: %s %v", got, err)
	}
	m, err := s.GetManifest(ctx, "acme/rules", d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifest(ctx, "acme/rules", d, storage.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	m.Created = time.Now()
	if err := s.PutManifest(ctx, m, nil, storage.PutManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	if again, err := s.GetManifest(ctx, "acme/rules", d); err != nil || again.Created.UnixNano() != created {
		t.Fatalf("re-pushed manifest created %v (%v), want the first push", again.Created, err)
	}
	recs, err := s.AttestRecordsBySubject(ctx, "acme/rules", subject, 10)
	if err != nil || len(recs) != 1 || recs[0].Referrer != d || recs[0].Status != "verified" || recs[0].Recorded.UnixNano() != created {
		t.Fatalf("attest records after migration: %+v %v", recs, err)
	}
}

// A SQLite database written before migration 9 keeps its pending events,
// with their ids, and from then on never gives an id again: not after its
// newest event was acknowledged, not after a restart.
func TestMigration9KeepsEventsAndNeverReusesIDs(t *testing.T) {
	path, db := sqliteAt(t, 8)
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO event_consumers (name) VALUES ('attest')`,
		`INSERT INTO event_queue (id, consumer, at, actor, action, target, digest, details)
			VALUES (7, 'attest', 1, 'a', 'manifest.push', 'r', 'sha256:x', '{}'),
			       (8, 'audit', 1, 'a', 'manifest.push', 'r', 'sha256:x', '{}'),
			       (9, 'audit', 2, 'a', 'tag.move', 'r:v1', 'sha256:x', '{"size":"3"}')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(consumer string) []int64 {
		t.Helper()
		evs, err := s.PendingEvents(ctx, consumer, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	if got := fmt.Sprint(ids("attest"), ids("audit")); got != "[7] [8 9]" {
		t.Fatalf("pending after migration: %s, want [7] [8 9]", got)
	}
	evs, err := s.PendingEvents(ctx, "audit", 0)
	if err != nil || evs[1].Action != "tag.move" || evs[1].Details["size"] != "3" {
		t.Fatalf("event read back after migration: %+v %v", evs, err)
	}
	// The newest rows acknowledged, the next event still takes new ids.
	if err := s.AckEvents(ctx, "audit", 8, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte("b")), 1, storage.Event{Action: "blob.push", Target: "r"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids("attest"), ids("audit")); got != "[7 10] [11]" {
		t.Fatalf("pending after a new event: %s, want [7 10] [11]", got)
	}
	if err := s.AckEvents(ctx, "attest", 7, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AckEvents(ctx, "audit", 11); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Empty, and reopened: the ids go on.
	if s, err = sqlite.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.LinkBlob(ctx, "r", digest.FromBytes(digest.SHA256, []byte("c")), 1, storage.Event{Action: "blob.push", Target: "r"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids("attest"), ids("audit")); got != "[12] [13]" {
		t.Fatalf("pending after a restart with an empty queue: %s, want [12] [13]", got)
	}
}

// A key added before migration 11, when keys had no usage, vouches for
// signatures after it, as it did, and never for bundles.
func TestMigration11KeysVouchForSignatures(t *testing.T) {
	path, db := sqliteAt(t, 10)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `INSERT INTO attest_keys (id, name, pem, algorithm, state, not_before, not_after, created, updated)
		VALUES ('aa', 'release', 'pem', 'ecdsa-p256', 'active', 0, 0, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.GetKey(ctx, "aa")
	if err != nil {
		t.Fatal(err)
	}
	if !k.HasUsage(storage.KeyUsageSignatures) || k.HasUsage(storage.KeyUsageBundles) || len(k.Usage) != 1 {
		t.Fatalf("usage of a key from before migration 11: %v", k.Usage)
	}
}

// A SQLite database written before migration 17 keeps its blob links,
// their sizes and times, in a blobs table rebuilt WITHOUT ROWID, where a
// link writes one b-tree page fewer (storage/sqlite's Dialect.Steps).
func TestMigration17KeepsBlobLinksWithoutRowid(t *testing.T) {
	path, db := sqliteAt(t, 16)
	ctx := t.Context()
	a := digest.FromBytes(digest.SHA256, []byte("a"))
	b := digest.FromBytes(digest.SHA256, []byte("b"))
	if _, err := db.ExecContext(ctx, `INSERT INTO repositories (id, name) VALUES (1, 'acme/rules'), (2, 'acme/other')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO blobs (repo_id, digest, size, created, linked)
		VALUES (1, ?, 3, 10, 20), (2, ?, 5, 11, 21)`, string(a), string(b)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if size, err := s.BlobSize(ctx, "acme/rules", a); err != nil || size != 3 {
		t.Fatalf("blob a after migration: size %d, %v", size, err)
	}
	if repo, size, err := s.FindBlob(ctx, b); err != nil || repo != "acme/other" || size != 5 {
		t.Fatalf("FindBlob(b) after migration: %s %d %v", repo, size, err)
	}
	if _, err := s.BlobSize(ctx, "acme/rules", b); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("blob b in acme/rules after migration: %v, want not found", err)
	}
	if err := s.LinkBlob(ctx, "acme/rules", b, 5); err != nil {
		t.Fatal(err)
	}
	if size, err := s.BlobSize(ctx, "acme/rules", b); err != nil || size != 5 {
		t.Fatalf("blob b linked after migration: size %d, %v", size, err)
	}
	db2, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var times string
	if err := db2.QueryRowContext(ctx, `SELECT group_concat(created || '/' || linked, ' ') FROM
		(SELECT created, linked FROM blobs WHERE digest IN (?, ?) AND created < 100 ORDER BY created)`, string(a), string(b)).Scan(&times); err != nil || times != "10/20 11/21" {
		t.Fatalf("created/linked after migration: %q %v, want the rows' own", times, err)
	}
	var ddl string
	if err := db2.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'blobs'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Fatalf("blobs after migration 17 is a rowid table:\n%s", ddl)
	}
	var idx int
	if err := db2.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'blobs_digest' AND tbl_name = 'blobs'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("blobs_digest after migration: %d %v", idx, err)
	}
}

// Migration 18 keeps referrers answerable from manifests_subject, now
// partial (manifests with a subject only), and manifest_first_push's
// rows, in a table rebuilt WITHOUT ROWID on SQLite.
func TestMigration18PartialSubjectIndex(t *testing.T) {
	path, db := sqliteAt(t, 17)
	ctx := t.Context()
	subject := digest.FromBytes(digest.SHA256, []byte("image"))
	sig := digest.FromBytes(digest.SHA256, []byte("signature"))
	first := digest.FromBytes(digest.SHA256, []byte("deleted"))
	for _, q := range []string{
		`INSERT INTO repositories (id, name) VALUES (1, 'acme/app')`,
		`INSERT INTO manifests (repo_id, digest, media_type, artifact_type, size, payload, subject, refs, created, pushed)
			VALUES (1, '` + string(subject) + `', 'm', '', 1, x'7b7d', '', '', 10, 10),
			(1, '` + string(sig) + `', 'm', 'application/vnd.sig', 1, x'7b7d', '` + string(subject) + `', '', 11, 11)`,
		`INSERT INTO manifest_first_push (repo, digest, at) VALUES ('acme/app', '` + string(first) + `', 5)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openSQLite(t, path)
	for _, typ := range []string{"", "application/vnd.sig"} {
		refs, err := s.Referrers(ctx, "acme/app", subject, typ)
		if err != nil || len(refs) != 1 || string(refs[0].Digest) != string(sig) {
			t.Fatalf("referrers of type %q after migration: %v %v", typ, refs, err)
		}
	}
	// A re-push takes its created time from the first push kept.
	body := []byte("{}")
	m := &storage.Manifest{Repo: "acme/app", Digest: first, MediaType: "m", Size: int64(len(body)), Payload: body}
	if err := s.PutManifest(ctx, m, nil, storage.PutManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetManifest(ctx, "acme/app", first); err != nil || got.Created.UnixNano() != 5 {
		t.Fatalf("re-pushed manifest after migration: %v %v, want created at 5ns", got, err)
	}

	db2, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var ddl string
	if err := db2.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'manifest_first_push'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Fatalf("manifest_first_push after migration 18 is a rowid table:\n%s", ddl)
	}
	var entries int
	if err := db2.QueryRowContext(ctx, `SELECT count(*) FROM manifests INDEXED BY manifests_subject WHERE subject <> ''`).Scan(&entries); err != nil || entries != 1 {
		t.Fatalf("manifests_subject after migration: %d entries, %v; want the referrer's alone", entries, err)
	}
	// The planner uses the partial index only if the query implies its
	// WHERE: without it, a referrers list of a type reads the
	// repository's manifests. The list of every type read them all by
	// primary key, for its digest order, until it sorted by an expression.
	for _, q := range sqlmeta.ReferrersQueries() {
		rows, err := db2.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, "acme/app", string(subject), "t")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "INDEX manifests_subject") {
			t.Errorf("plan of %s:\n%s\nwants manifests_subject", q, strings.Join(plan, "\n"))
		}
	}
}
