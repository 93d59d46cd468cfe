package sqlmeta_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// bothStores opens a store of each database the compliance worker runs on.
var bothStores = map[string]func(testing.TB) *sqlmeta.Store{
	"sqlite":   func(t testing.TB) *sqlmeta.Store { _, s, _ := teststores.Open(t); return s },
	"postgres": func(t testing.TB) *sqlmeta.Store { _, s, _ := teststores.OpenPostgres(t); return s },
}

// PendingEventsAfter pages a consumer's queue by ID, oldest first, and
// leaves it as it was: the compliance worker reads its backlog this way
// before acknowledging any of it.
func TestPendingEventsAfter(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if err := s.AddEventConsumer(t.Context(), "pager"); err != nil {
				t.Fatal(err)
			}
			evs := make([]storage.Event, 5)
			for i := range evs {
				evs[i] = storage.Event{Action: "manifest.push", Target: "acme/p", Digest: digest.FromBytes(digest.SHA256, []byte{byte(i)})}
			}
			if err := s.LinkBlob(t.Context(), "acme/p", evs[0].Digest, 1, evs...); err != nil {
				t.Fatal(err)
			}
			all, err := s.PendingEvents(t.Context(), "pager", 0)
			if err != nil || len(all) != 5 {
				t.Fatalf("pending %d, %v; want 5", len(all), err)
			}
			page, err := s.PendingEventsAfter(t.Context(), "pager", all[1].ID, 2)
			if err != nil || len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID || page[0].Digest != evs[2].Digest {
				t.Fatalf("page after the second: %+v, %v; want the third and fourth", page, err)
			}
			if rest, err := s.PendingEventsAfter(t.Context(), "pager", all[4].ID, 2); err != nil || len(rest) != 0 {
				t.Fatalf("after the last: %+v, %v", rest, err)
			}
			if n, err := s.CountPendingEvents(t.Context(), "pager"); err != nil || n != 5 {
				t.Fatalf("queue %d, %v after reading: want 5", n, err)
			}
		})
	}
}

// PutComplianceRecords stores every record of a write, whatever its
// count: the rows go out in statements of powers of two.
func TestPutComplianceRecordsEveryCount(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			for _, n := range []int{1, 3, 31, 32, 33, 70} {
				prefix := fmt.Sprintf("acme/n%d", n)
				recs := make([]storage.ComplianceRecord, n)
				for i := range recs {
					recs[i] = storage.ComplianceRecord{Name: prefix, Version: fmt.Sprintf("1.0.%03d", i), Digest: digest.FromBytes(digest.SHA256, []byte{byte(i)}),
						Lifecycle: "published", Verification: "verified", Attestations: []string{"slsa"}, Compliant: true,
						Findings: []storage.ComplianceFinding{}, Evaluated: time.Unix(1, 0)}
				}
				if err := s.PutComplianceRecords(t.Context(), recs); err != nil {
					t.Fatal(err)
				}
				got, err := s.ListComplianceRecords(t.Context(), storage.ComplianceQuery{NamePrefix: prefix})
				if err != nil || len(got) != n {
					t.Fatalf("%d records written, %d read back (%v)", n, len(got), err)
				}
				for i, r := range got {
					if r.Version != recs[i].Version || len(r.Attestations) != 1 {
						t.Fatalf("record %d of %d: %+v, want %+v", i, n, r, recs[i])
					}
				}
			}
		})
	}
}
