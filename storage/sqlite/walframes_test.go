package sqlite_test

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/metatest"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// walWatch counts the WAL frames written to the database at path from
// its start on, by b-tree. A read transaction opened at the start keeps
// checkpoints from resetting the WAL, so every frame stays in the file.
type walWatch struct {
	path string
	db   *sql.DB
	tx   *sql.Tx
}

func watchWAL(tb testing.TB, path string) *walWatch {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return &walWatch{path: path, db: db, tx: tx}
}

// frames ends the watch: the frames written since it began, by the name
// of the b-tree (table or index) their page belongs to now ("page1" for
// the header page, "free" for pages no b-tree holds), and the commits.
func (w *walWatch) frames(tb testing.TB) (byTree map[string]int, commits int) {
	tb.Helper()
	dir := tb.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		copyFile(tb, w.path+suffix, filepath.Join(dir, "meta.db"+suffix))
	}
	w.tx.Rollback()
	wal, err := os.ReadFile(filepath.Join(dir, "meta.db-wal"))
	if err != nil || len(wal) < 32 {
		tb.Fatalf("WAL of %d bytes: %v", len(wal), err)
	}
	// The WAL file format (sqlite.org/fileformat2.html#walformat): a
	// 32-byte header, then frames of a 24-byte header and a page. Frames
	// past the last one with the header's salts are left from before.
	ps := int(binary.BigEndian.Uint32(wal[8:]))
	salts := wal[16:24]
	var pages []uint32
	for off := 32; off+24+ps <= len(wal) && string(wal[off+8:off+16]) == string(salts); off += 24 + ps {
		pages = append(pages, binary.BigEndian.Uint32(wal[off:]))
		if binary.BigEndian.Uint32(wal[off+4:]) != 0 {
			commits++
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "meta.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	owner := map[uint32]string{1: "page1"}
	rows, err := db.Query("SELECT name, pageno FROM dbstat WHERE pageno <> 1")
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var name string
		var p uint32
		if err := rows.Scan(&name, &p); err != nil {
			tb.Fatal(err)
		}
		owner[p] = name
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
	byTree = map[string]int{}
	for _, p := range pages {
		name, ok := owner[p]
		if !ok {
			name = "free"
		}
		byTree[name]++
	}
	return byTree, commits
}

// openWatched opens a store in a new database, for watchWAL.
func openWatched(tb testing.TB) (string, *sqlmeta.Store) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "meta.db")
	s, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return path, s
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// A manifest PUT writes a page of no b-tree that no query of it reads:
// none of manifests_subject for a manifest without a subject (migration
// 18 made the index partial), and none of manifest_first_push, which a
// delete writes (the put reads it).
func TestManifestPutWritesNoUnreadPages(t *testing.T) {
	path, s := openWatched(t)
	put := func(i int) {
		body := fmt.Sprintf(`{"schemaVersion":2,"n":%d}`, i)
		m := &storage.Manifest{Repo: "acme/app", Digest: digest.FromBytes(digest.SHA256, []byte(body)),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Payload: []byte(body)}
		if err := s.PutManifest(t.Context(), m, []string{fmt.Sprint("v", i)}, storage.PutManifestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(0) // the repository's row
	w := watchWAL(t, path)
	put(1)
	byTree, _ := w.frames(t)
	for _, tree := range []string{"manifests_subject", "manifest_first_push", "sqlite_autoindex_manifest_first_push_1"} {
		if byTree[tree] != 0 {
			t.Errorf("a manifest PUT wrote %d pages of %s: %v", byTree[tree], tree, byTree)
		}
	}
}

// BenchmarkWALFrames is BenchmarkPutManifestAudited at 16 clients,
// reporting the WAL frames (pages) written per put; with -v it logs them
// by b-tree (walWatch).
func BenchmarkWALFrames(b *testing.B) {
	path, s := openWatched(b)
	w := watchWAL(b, path)
	metatest.PutManifestAudited(b, s, 16)
	byTree, commits := w.frames(b)
	n := float64(b.N)
	total := 0
	names := make([]string, 0, len(byTree))
	for name, k := range byTree {
		names = append(names, name)
		total += k
	}
	slices.SortFunc(names, func(x, y string) int { return byTree[y] - byTree[x] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d puts, %d commits, %d frames: %.2f a put\n", b.N, commits, total, float64(total)/n)
	for _, name := range names {
		fmt.Fprintf(&sb, "  %-40s %.3f\n", name, float64(byTree[name])/n)
	}
	b.Log(sb.String())
	b.ReportMetric(float64(total)/n, "frames/op")
	b.ReportMetric(n/float64(commits), "puts/commit")
}
