package sqlmeta_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The writes of a batch that record events leave their audit records with
// the batch, which appends them all at once: the chain head is updated
// twice a batch (the bump, then its hash), not twice a write. A write of
// the batch that fails leaves no record, one that appends to the trail
// itself (AppendAudit) finds the records of the writes before it in the
// chain, and the chain verifies, record for record. Before, each of the
// eight puts moved the head twice (16 updates).
func TestBatchAppendsItsAuditRecordsAtOnce(t *testing.T) {
	s := openGroup(t)
	ctx := t.Context()
	s.AuditInline()
	cfg := digest.FromBytes(digest.SHA256, []byte("config"))
	if err := s.LinkBlob(ctx, "r", cfg, 1); err != nil {
		t.Fatal(err)
	}
	// Counts the updates of the head on the writer connection (the pool
	// has one): TEMP objects are the connection's own.
	for _, q := range []string{
		`CREATE TEMP TABLE head_updates (n INTEGER)`,
		`CREATE TEMP TRIGGER count_head_updates AFTER UPDATE ON audit_head BEGIN INSERT INTO head_updates VALUES (1); END`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	release := holdWriter(t, s, &wg)
	const puts = 8
	var want []string
	for i := range puts {
		body := fmt.Sprintf(`{"n":%d}`, i)
		m := &storage.Manifest{Repo: "r", Digest: digest.FromBytes(digest.SHA256, []byte(body)),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Payload: []byte(body)}
		tag := fmt.Sprint("v", i)
		evs := []storage.Event{{Actor: "a", Action: "manifest.push", Target: "r", Digest: m.Digest},
			{Actor: "a", Action: "tag.move", Target: "r:" + tag, Digest: m.Digest}}
		present := []digest.Digest{cfg}
		if i == 3 { // references a blob that is not there: rolled back alone
			present = []digest.Digest{digest.FromBytes(digest.SHA256, []byte("gone"))}
		} else {
			want = append(want, "manifest.push r "+string(m.Digest), "tag.move r:"+tag+" "+string(m.Digest))
		}
		wg.Go(func() {
			err := s.PutManifest(ctx, m, []string{tag}, storage.PutManifestOptions{Events: evs, Present: present})
			var gone *storage.RefGoneError
			if i == 3 && !errors.As(err, &gone) {
				t.Errorf("put %d referencing a missing blob: err = %v, want a RefGoneError", i, err)
			} else if i != 3 && err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if err := s.AppendAudit(ctx, &storage.AuditRecord{Actor: "a", Action: "note", Target: "t"}); err != nil {
			t.Error(err)
		}
	})
	want = append(want, "note t ")
	awaitWriters(t, s, 1+puts+1)
	release()
	wg.Wait()

	recs, err := s.ScanAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" "+r.Target+" "+string(r.Digest))
	}
	// The batch's order is the order the writes reached the loop.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("trail:\n%v\nwant:\n%v", got, want)
	}
	v, err := storage.VerifyAudit(ctx, s)
	if err != nil || !v.OK {
		t.Errorf("VerifyAudit = %+v, %v", v, err)
	}
	// The puts before the AppendAudit in the batch (if any) are appended
	// before it, the others after: two head updates each side at most.
	var updates int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM head_updates`).Scan(&updates); err != nil {
		t.Fatal(err)
	}
	if updates > 6 {
		t.Errorf("the head was updated %d times for %d puts and a note in one batch, want at most 6", updates, puts)
	}
}

// Records appended in runs of odd counts (several insert statements each
// on SQLite, whose inserts go by powers of two) are all there, in order,
// and chain.
func TestAuditRunsOfAnyCountChain(t *testing.T) {
	s := openGroup(t)
	ctx := t.Context()
	var want int64
	for _, n := range []int{1, 3, 31, 32, 33, 70} {
		recs := make([]*storage.AuditRecord, n)
		for i := range recs {
			recs[i] = &storage.AuditRecord{Actor: "a", Action: "note", Target: fmt.Sprint(want + int64(i))}
		}
		if err := s.AppendAudit(ctx, recs...); err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		want += int64(n)
	}
	v, err := storage.VerifyAudit(ctx, s)
	if err != nil || !v.OK || v.Records != want {
		t.Fatalf("verify = %+v, %v; want %d records chained", v, err, want)
	}
	got, err := s.ScanAudit(ctx, 0, int(want)+1)
	if err != nil || int64(len(got)) != want {
		t.Fatalf("scan: %d records, %v; want %d", len(got), err, want)
	}
	for i, r := range got {
		if r.Target != fmt.Sprint(i) {
			t.Fatalf("record %d is %q, want %q", i, r.Target, fmt.Sprint(i))
		}
	}
}
