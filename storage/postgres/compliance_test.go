package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// The compliance worker writes every version of each repository an event
// touches. A statement per record and one more for its attestation types
// were a round trip each: after 10,000 pushes, hundreds of thousands,
// while the first page of the packs API was being asked for. Records now
// go by 32 per statement.
func TestComplianceRecordsGoManyPerStatement(t *testing.T) {
	s := open(t, freshSchema(t))
	t.Cleanup(func() { s.Close() })
	recs := make([]storage.ComplianceRecord, 100)
	for i := range recs {
		recs[i] = storage.ComplianceRecord{Name: "acme/rules", Version: fmt.Sprintf("1.0.%d", i), Lifecycle: storage.PackActive,
			Verification: "unsigned", Findings: []storage.ComplianceFinding{}, Evaluated: time.Now()}
	}
	recs[7].Attestations = []string{"https://slsa.dev/provenance/v1"}
	n := countStatements(s)
	if err := s.PutComplianceRecords(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	// 4 chunks of up to 32: an upsert and a delete of the types each, and
	// the one type inserted.
	if got := n.Load(); got != 4*2+1 {
		t.Fatalf("%d statements for 100 records, want 9", got)
	}
	got, err := s.ListComplianceRecords(t.Context(), storage.ComplianceQuery{})
	if err != nil || len(got) != 100 {
		t.Fatalf("read back %d records, %v; want 100", len(got), err)
	}
}
