package metatest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

func complianceRecord(name, version, verification string, compliant bool, types ...string) storage.ComplianceRecord {
	var f []storage.ComplianceFinding
	if !compliant {
		f = []storage.ComplianceFinding{{Rule: "signature", Status: "fail", Reason: "unsigned"}}
	}
	return storage.ComplianceRecord{Name: name, Version: version, Digest: dg(name + version), Lifecycle: storage.PackActive,
		Verification: verification, Attestations: types, Compliant: compliant, Findings: f,
		Evaluated: time.Now().UTC().Truncate(time.Millisecond)}
}

var complianceCases = []testCase{
	{"ComplianceRecordsManyAtOnce", func(t *testing.T, s storage.Store) {
		// More records than one statement writes (sqlmeta: 32), one
		// version twice: the last record of it is the one kept.
		c := ctx(t)
		var recs []storage.ComplianceRecord
		for i := range 70 {
			recs = append(recs, complianceRecord("acme/m", fmt.Sprintf("1.0.%d", i), "verified", true, "https://slsa.dev/provenance/v1"))
		}
		recs = append(recs, complianceRecord("acme/m", "1.0.3", "unsigned", false))
		ok(t, s.PutComplianceRecords(c, recs), "PutComplianceRecords")
		got, err := s.ListComplianceRecords(c, storage.ComplianceQuery{NamePrefix: "acme/m"})
		ok(t, err, "ListComplianceRecords")
		if len(got) != 70 {
			t.Fatalf("%d records read back, want 70", len(got))
		}
		for _, r := range got {
			if want := r.Version != "1.0.3"; r.Compliant != want || (len(r.Attestations) == 1) != want {
				t.Fatalf("%s read back as %+v", r.Version, r)
			}
		}
		cs, err := s.ComplianceCoverage(c)
		ok(t, err, "ComplianceCoverage")
		if len(cs) != 1 || cs[0].Versions != 69 {
			t.Fatalf("coverage %+v, want 69 versions of one type", cs)
		}
	}},
	{"ComplianceRecordsListPageAndReplace", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		deleted := complianceRecord("acme/b", "0.9.0", "verified", true)
		deleted.Lifecycle = storage.PackDeleted
		ok(t, s.PutComplianceRecords(c, []storage.ComplianceRecord{
			complianceRecord("acme/a", "1.0.0", "verified", true, "https://slsa.dev/provenance/v1"),
			complianceRecord("acme/a", "1.1.0", "unsigned", false),
			complianceRecord("acme/b", "1.0.0", "verified", true, "https://spdx.dev/Document", "https://slsa.dev/provenance/v1"),
			complianceRecord("other/c", "2.0.0", "invalid", false),
			deleted,
		}), "PutComplianceRecords")
		keys := func(q storage.ComplianceQuery) []string {
			recs, err := s.ListComplianceRecords(c, q)
			ok(t, err, "ListComplianceRecords %+v", q)
			var out []string
			for _, r := range recs {
				out = append(out, r.Name+":"+r.Version)
			}
			return out
		}
		if got, want := keys(storage.ComplianceQuery{}), []string{"acme/a:1.0.0", "acme/a:1.1.0", "acme/b:1.0.0", "other/c:2.0.0"}; !slices.Equal(got, want) {
			t.Fatalf("all (deleted left out): %v, want %v", got, want)
		}
		no := false
		if got, want := keys(storage.ComplianceQuery{Compliant: &no}), []string{"acme/a:1.1.0", "other/c:2.0.0"}; !slices.Equal(got, want) {
			t.Fatalf("failing: %v, want %v", got, want)
		}
		if got, want := keys(storage.ComplianceQuery{NamePrefix: "acme/", AfterName: "acme/a", AfterVersion: "1.0.0", Limit: 2}), []string{"acme/a:1.1.0", "acme/b:1.0.0"}; !slices.Equal(got, want) {
			t.Fatalf("page after acme/a:1.0.0: %v, want %v", got, want)
		}
		recs, err := s.ListComplianceRecords(c, storage.ComplianceQuery{NamePrefix: "acme/b"})
		ok(t, err, "list acme/b")
		if len(recs) != 1 || !slices.Equal(recs[0].Attestations, []string{"https://spdx.dev/Document", "https://slsa.dev/provenance/v1"}) || !recs[0].Compliant {
			t.Fatalf("acme/b read back as %+v", recs)
		}

		cov := func() map[string]int64 {
			cs, err := s.ComplianceCoverage(c)
			ok(t, err, "ComplianceCoverage")
			m := map[string]int64{}
			for _, x := range cs {
				m[x.PredicateType] += x.Versions
			}
			return m
		}
		if got := cov(); got["https://slsa.dev/provenance/v1"] != 2 || got["https://spdx.dev/Document"] != 1 {
			t.Fatalf("coverage %v", got)
		}
		// Replacing a record replaces its attestation types too.
		ok(t, s.PutComplianceRecords(c, []storage.ComplianceRecord{complianceRecord("acme/b", "1.0.0", "unsigned", false)}), "replace")
		if got := cov(); got["https://slsa.dev/provenance/v1"] != 1 || got["https://spdx.dev/Document"] != 0 {
			t.Fatalf("coverage after replace %v", got)
		}
		ts, err := s.ComplianceTallies(c)
		ok(t, err, "ComplianceTallies")
		var versions, compliant, attested int64
		for _, x := range ts {
			versions += x.Versions
			if x.Compliant {
				compliant += x.Versions
			}
			if x.Attested {
				attested += x.Versions
			}
		}
		if versions != 4 || compliant != 1 || attested != 1 {
			t.Fatalf("tallies: %d versions, %d compliant, %d attested; want 4, 1, 1 (%+v)", versions, compliant, attested, ts)
		}
	}},
	{"ComplianceRulesAndSnapshots", func(t *testing.T, s storage.Store) {
		c := ctx(t)
		_, _, err := s.ComplianceRules(c)
		is(t, err, storage.ErrNotFound, "rules never put")
		at := time.Now().UTC().Truncate(time.Millisecond)
		ok(t, s.PutComplianceRules(c, `{"rules":[]}`, at), "PutComplianceRules")
		ok(t, s.PutComplianceRules(c, `{"rules":[1]}`, at.Add(time.Second)), "PutComplianceRules again")
		doc, upd, err := s.ComplianceRules(c)
		ok(t, err, "ComplianceRules")
		if doc != `{"rules":[1]}` || !upd.Equal(at.Add(time.Second)) {
			t.Fatalf("rules %q at %v", doc, upd)
		}
		for i := range 3 {
			ok(t, s.PutComplianceSnapshot(c, storage.ComplianceSnapshot{At: at.Add(time.Duration(i) * time.Hour), Counts: `{"i":` + string(rune('0'+i)) + `}`}), "snapshot %d", i)
		}
		snaps, err := s.ComplianceSnapshots(c, at.Add(time.Minute), at.Add(3*time.Hour), 10)
		ok(t, err, "ComplianceSnapshots")
		if len(snaps) != 2 || snaps[0].Counts != `{"i":1}` || !snaps[1].At.Equal(at.Add(2*time.Hour)) {
			t.Fatalf("snapshots %+v", snaps)
		}
	}},
}
