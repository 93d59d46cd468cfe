package metatest

import (
	"database/sql"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// rawDB is the database under a SQL store, for the tests that play the
// attacker and edit rows behind the store's back.
func rawDB(t *testing.T, s storage.Store) *sql.DB {
	t.Helper()
	d, isSQL := s.(interface{ DB() *sql.DB })
	if !isSQL {
		t.Skipf("%T has no SQL database to tamper with", s)
	}
	return d.DB()
}

func appendN(t *testing.T, a storage.AuditLog, n int) {
	t.Helper()
	for i := range n {
		err := a.AppendAudit(ctx(t), &storage.AuditRecord{
			Actor: "anonymous@127.0.0.1:1", Action: []string{"blob.push", "manifest.push", "tag.move"}[i%3],
			Target: fmt.Sprintf("repo%d:tag", i%2), Digest: dg(fmt.Sprint(i)),
			Details: map[string]string{"size": fmt.Sprint(i), "mediaType": "x"},
		})
		ok(t, err, "AppendAudit %d", i)
	}
}

func verifies(t *testing.T, a storage.AuditLog, wantOK bool, wantBroken int64) storage.AuditVerification {
	t.Helper()
	v, err := storage.VerifyAudit(ctx(t), a)
	ok(t, err, "VerifyAudit")
	if v.OK != wantOK || v.FirstBroken != wantBroken {
		t.Fatalf("VerifyAudit = %+v, want ok %v, first broken %d", v, wantOK, wantBroken)
	}
	return v
}

func tamper(t *testing.T, s storage.Store, stmt string) {
	t.Helper()
	res, err := rawDB(t, s).ExecContext(ctx(t), stmt)
	ok(t, err, "%s", stmt)
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows, want 1", stmt, n)
	}
}

var auditCases = []testCase{
	{"AuditAppendChains", func(t *testing.T, s storage.Store) {
		verifies(t, s, true, 0) // empty is a valid trail
		appendN(t, s, 3)
		batch := []*storage.AuditRecord{{Action: "x", Target: "t"}, {Action: "y", Target: "t", At: time.Unix(1700000000, 5)}}
		ok(t, s.AppendAudit(ctx(t), batch...), "AppendAudit batch")
		if batch[0].ID != 4 || batch[1].ID != 5 || batch[1].PrevHash != batch[0].Hash || batch[1].At != time.Unix(1700000000, 5).UTC() {
			t.Fatalf("batch filled as %+v / %+v", batch[0], batch[1])
		}
		recs, err := s.ScanAudit(ctx(t), 0, 100)
		ok(t, err, "ScanAudit")
		if len(recs) != 5 {
			t.Fatalf("ScanAudit returned %d records, want 5", len(recs))
		}
		for i, r := range recs {
			if r.ID != int64(i+1) || r.Hash != storage.AuditHash(&r) || (i > 0 && r.PrevHash != recs[i-1].Hash) {
				t.Fatalf("record %d out of chain: %+v", i+1, r)
			}
		}
		if recs[0].Details["size"] != "0" || recs[0].Actor != "anonymous@127.0.0.1:1" || recs[0].Digest != dg("0") {
			t.Fatalf("record 1 read back as %+v", recs[0])
		}
		v := verifies(t, s, true, 0)
		if v.Records != 5 || v.Head.ID != 5 || v.Head.Hash != recs[4].Hash {
			t.Fatalf("verification %+v", v)
		}
	}},
	{"AuditListFilters", func(t *testing.T, s storage.Store) {
		appendN(t, s, 10)
		mid := time.Now()
		time.Sleep(2 * time.Millisecond)
		appendN(t, s, 2)
		ids := func(q storage.AuditQuery) string {
			t.Helper()
			recs, err := s.ListAudit(ctx(t), q)
			ok(t, err, "ListAudit %+v", q)
			var out []string
			for _, r := range recs {
				out = append(out, fmt.Sprint(r.ID))
			}
			return strings.Join(out, ",")
		}
		for _, c := range []struct {
			q    storage.AuditQuery
			want string
		}{
			{storage.AuditQuery{}, "12,11,10,9,8,7,6,5,4,3,2,1"},
			{storage.AuditQuery{Limit: 3}, "12,11,10"},
			{storage.AuditQuery{Limit: 3, Before: 10}, "9,8,7"},
			{storage.AuditQuery{Action: "blob.push"}, "11,10,7,4,1"},
			{storage.AuditQuery{Action: "blob.push", Before: 7}, "4,1"},
			{storage.AuditQuery{TargetPrefix: "repo1"}, "12,10,8,6,4,2"},
			{storage.AuditQuery{TargetPrefix: "repo"}, "12,11,10,9,8,7,6,5,4,3,2,1"},
			{storage.AuditQuery{TargetPrefix: "repo1:tag", Action: "tag.move"}, "6"},
			{storage.AuditQuery{TargetPrefix: "repo2"}, ""},
			{storage.AuditQuery{Since: mid}, "12,11"},
			{storage.AuditQuery{Since: mid, Action: "blob.push"}, "11"},
			{storage.AuditQuery{Since: mid, Action: "tag.move"}, ""},
		} {
			if got := ids(c.q); got != c.want {
				t.Errorf("ListAudit %+v = [%s], want [%s]", c.q, got, c.want)
			}
		}
	}},
	{"AuditConcurrentAppendsStayOneChain", func(t *testing.T, s storage.Store) {
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				for i := range 15 {
					recs := []*storage.AuditRecord{{Actor: fmt.Sprint("w", w), Action: "a", Target: fmt.Sprint(i)}}
					if i%5 == 0 {
						recs = append(recs, &storage.AuditRecord{Actor: fmt.Sprint("w", w), Action: "b"})
					}
					if err := s.AppendAudit(ctx(t), recs...); err != nil {
						t.Errorf("AppendAudit: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		v := verifies(t, s, true, 0)
		if want := int64(12 * (15 + 3)); v.Records != want || v.Head.ID != want {
			t.Fatalf("verification %+v, want %d records", v, want)
		}
	}},
	{"AuditAppendIfChangedOnce", func(t *testing.T, s storage.Store) {
		// Replicas starting at once with one configuration each record
		// it if it changed: one record, whichever of them appends.
		appendN(t, s, 3)
		const replicas = 6
		config := func(target string, details map[string]string) int {
			t.Helper()
			var wg sync.WaitGroup
			appended := make([]bool, replicas)
			start := make(chan struct{})
			for i := range replicas {
				wg.Go(func() {
					<-start
					rec := &storage.AuditRecord{Actor: "system", Action: "config.change", Target: target, Details: maps.Clone(details)}
					var err error
					if appended[i], err = s.AppendAuditIfChanged(ctx(t), rec); err != nil {
						t.Errorf("AppendAuditIfChanged: %v", err)
					} else if appended[i] && (rec.ID == 0 || rec.Hash == "") {
						t.Errorf("appended record not filled: %+v", rec)
					}
				})
			}
			close(start)
			wg.Wait()
			n := 0
			for _, ok := range appended {
				if ok {
					n++
				}
			}
			return n
		}
		for i, c := range []struct {
			target  string
			details map[string]string
			want    int
		}{
			{"attest.policies", map[string]string{"count": "1", "max": "8"}, 1},
			{"attest.policies", map[string]string{"count": "1", "max": "8"}, 0},
			{"attest.policiesx", map[string]string{"count": "1", "max": "8"}, 1}, // another target
			{"attest.policies", map[string]string{"count": "1", "max": "9"}, 1},
			{"attest.policies", map[string]string{"count": "1", "max": "8"}, 1}, // compared with the newest only
			{"packs.policy", nil, 1},
			{"packs.policy", map[string]string{}, 0}, // none and empty are the same details
		} {
			if got := config(c.target, c.details); got != c.want {
				t.Fatalf("step %d: %d of %d concurrent callers appended %s %v, want %d", i, got, replicas, c.target, c.details, c.want)
			}
		}
		// The same details under another action are not a config.change.
		ok(t, s.AppendAudit(ctx(t), &storage.AuditRecord{Action: "other", Target: "packs.policy", Details: map[string]string{"x": "1"}}), "other action")
		if got := config("packs.policy", nil); got != 0 {
			t.Fatalf("a record of another action in between: %d appended, want 0", got)
		}
		recs, err := s.ListAudit(ctx(t), storage.AuditQuery{Action: "config.change"})
		ok(t, err, "ListAudit")
		if len(recs) != 5 {
			t.Fatalf("%d config.change records, want 5", len(recs))
		}
		verifies(t, s, true, 0)
	}},
	{"AuditEditedRowDetected", func(t *testing.T, s storage.Store) {
		appendN(t, s, 6)
		tamper(t, s, `UPDATE audit_log SET actor = 'mallory' WHERE id = 4`)
		v := verifies(t, s, false, 4)
		if !strings.Contains(v.Reason, "changed") || v.Records != 3 {
			t.Fatalf("verification %+v", v)
		}
	}},
	{"AuditEditedDetailsDetected", func(t *testing.T, s storage.Store) {
		appendN(t, s, 3)
		tamper(t, s, `UPDATE audit_log SET details = '{"mediaType":"x","size":"999"}' WHERE id = 2`)
		verifies(t, s, false, 2)
	}},
	{"AuditDeletedRowDetected", func(t *testing.T, s storage.Store) {
		appendN(t, s, 6)
		tamper(t, s, `DELETE FROM audit_log WHERE id = 3`)
		v := verifies(t, s, false, 3)
		if !strings.Contains(v.Reason, "missing") {
			t.Fatalf("verification %+v", v)
		}
	}},
	{"AuditDeletedTailDetected", func(t *testing.T, s storage.Store) {
		appendN(t, s, 4)
		tamper(t, s, `DELETE FROM audit_log WHERE id = 4`)
		verifies(t, s, false, 4)
	}},
	{"AuditRechainedRowDetected", func(t *testing.T, s storage.Store) {
		// An edit that recomputes the edited row's own hash still breaks
		// the link to the next row.
		appendN(t, s, 4)
		recs, err := s.ScanAudit(ctx(t), 1, 1)
		ok(t, err, "ScanAudit")
		r := recs[0]
		r.Actor = "mallory"
		tamper(t, s, fmt.Sprintf(`UPDATE audit_log SET actor = 'mallory', hash = '%s' WHERE id = 2`, storage.AuditHash(&r)))
		verifies(t, s, false, 3)
	}},
}
