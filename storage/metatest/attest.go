package metatest

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func testKey(id, name string) *storage.Key {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &storage.Key{ID: id, Name: name, PEM: "-----BEGIN PUBLIC KEY-----\n" + id + "\n-----END PUBLIC KEY-----\n",
		Algorithm: "ecdsa-p256", State: storage.KeyActive, Usage: []string{storage.KeyUsageSignatures}, Created: now, Updated: now}
}

func attestRecord(subject digest.Digest, idx int, status string, at time.Time) storage.AttestRecord {
	return storage.AttestRecord{Index: idx, Kind: "signature", Format: "cosign-tag", Subject: subject,
		KeyID: "k1", Algorithm: "ecdsa-sha256", SigHash: fmt.Sprintf("sig%d", idx), PayloadDigest: dg(fmt.Sprint("payload", idx)),
		Status: status, Reason: "why " + status, Recorded: at, Checked: at}
}

func referrersOf(recs []storage.AttestRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s/%d", r.Referrer, r.Index))
	}
	return out
}

var attestCases = []testCase{
	{"AttestTrustedRoots", func(t *testing.T, s storage.Store) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		a := &storage.TrustedRoot{Name: "public-good", JSON: []byte(`{"mediaType":"a"}`), Digest: "d1", Created: now}
		ok(t, s.CreateTrustedRoot(ctx(t), a, ev("trusted_root.add", "trusted_root:public-good", "")), "CreateTrustedRoot")
		is(t, s.CreateTrustedRoot(ctx(t), &storage.TrustedRoot{Name: "public-good", JSON: []byte("{}"), Digest: "d2", Created: now}),
			storage.ErrConflict, "same name")
		ok(t, s.CreateTrustedRoot(ctx(t), &storage.TrustedRoot{Name: "acme", JSON: []byte("{}"), Digest: "d3", Created: now}), "second root")
		roots, err := s.ListTrustedRoots(ctx(t))
		ok(t, err, "ListTrustedRoots")
		if len(roots) != 2 || roots[0].Name != "acme" || roots[1].Name != "public-good" ||
			string(roots[1].JSON) != `{"mediaType":"a"}` || roots[1].Digest != "d1" || !roots[1].Created.Equal(now) {
			t.Fatalf("ListTrustedRoots = %+v", roots)
		}
		ok(t, s.DeleteTrustedRoot(ctx(t), "acme"), "DeleteTrustedRoot")
		is(t, s.DeleteTrustedRoot(ctx(t), "acme"), storage.ErrNotFound, "delete twice")
		roots, err = s.ListTrustedRoots(ctx(t))
		ok(t, err, "ListTrustedRoots")
		if len(roots) != 1 || roots[0].Name != "public-good" {
			t.Fatalf("after delete: %+v", roots)
		}
	}},
	{"AttestListTrust", func(t *testing.T, s storage.Store) {
		tl, isLister := s.(storage.TrustLister)
		if !isLister {
			t.Skip("not a storage.TrustLister")
		}
		keys, roots, err := tl.ListTrust(ctx(t))
		ok(t, err, "ListTrust of none")
		if len(keys) != 0 || len(roots) != 0 {
			t.Fatalf("ListTrust of an empty store = %+v, %+v", keys, roots)
		}
		a, b := testKey("k-a", "first"), testKey("k-b", "second")
		b.Created = a.Created.Add(-time.Hour) // listed first, as ListKeys does
		b.Usage = []string{storage.KeyUsageSignatures, "other"}
		ok(t, s.CreateKey(ctx(t), a), "CreateKey")
		ok(t, s.CreateKey(ctx(t), b), "CreateKey")
		for _, r := range []*storage.TrustedRoot{{Name: "zeta", JSON: []byte("{}"), Digest: "dz"}, {Name: "alpha", JSON: []byte("{}"), Digest: "da"}} {
			r.Created = time.Now().UTC()
			ok(t, s.CreateTrustedRoot(ctx(t), r), "CreateTrustedRoot")
		}
		keys, roots, err = tl.ListTrust(ctx(t))
		ok(t, err, "ListTrust")
		want, err := s.ListKeys(ctx(t))
		ok(t, err, "ListKeys")
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("ListTrust keys = %+v, ListKeys %+v", keys, want)
		}
		if wantRoots := []storage.RootRef{{Name: "alpha", Digest: "da"}, {Name: "zeta", Digest: "dz"}}; !reflect.DeepEqual(roots, wantRoots) {
			t.Fatalf("ListTrust roots = %+v, want %+v", roots, wantRoots)
		}
	}},
	{"AttestRecordKeylessRoundTrip", func(t *testing.T, s storage.Store) {
		subj, ref := dg("subject"), dg("referrer")
		at := time.Now().UTC().Truncate(time.Millisecond)
		rec := attestRecord(subj, 0, storage.SigVerified, at)
		rec.KeyID, rec.Keyless = "", `{"issuer":"https://token.actions.githubusercontent.com"}`
		key := attestRecord(subj, 1, storage.SigVerified, at)
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, ref, []storage.AttestRecord{rec, key}), "put")
		got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, 10)
		ok(t, err, "BySubject")
		if len(got) != 2 || got[0].Keyless != rec.Keyless || got[1].Keyless != "" {
			t.Fatalf("keyless not kept: %+v", got)
		}
		rec.Keyless = `{"issuer":"other"}`
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, ref, []storage.AttestRecord{rec, key}), "re-check")
		got, err = s.AttestRecordsBySubject(ctx(t), "r", subj, 10)
		ok(t, err, "BySubject")
		if len(got) != 2 || got[0].Keyless != rec.Keyless {
			t.Fatalf("a re-check did not replace keyless: %+v", got)
		}
	}},
	{"AttestKeys", func(t *testing.T, s storage.Store) {
		k := testKey("aa", "release-2026")
		ok(t, s.CreateKey(ctx(t), k), "CreateKey")
		is(t, s.CreateKey(ctx(t), testKey("aa", "other")), storage.ErrConflict, "same id")
		is(t, s.CreateKey(ctx(t), testKey("bb", "release-2026")), storage.ErrConflict, "same name")
		bb := testKey("bb", "release-2027")
		bb.Usage = []string{storage.KeyUsageBundles, storage.KeyUsageSignatures}
		ok(t, s.CreateKey(ctx(t), bb), "second key")
		got, err := s.GetKey(ctx(t), "aa")
		ok(t, err, "GetKey")
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("GetKey = %+v, want %+v", got, k)
		}
		_, err = s.GetKey(ctx(t), "cc")
		is(t, err, storage.ErrNotFound, "unknown key")

		k.State, k.NotAfter, k.Updated = storage.KeyRetired, k.Created.Add(time.Hour), k.Created.Add(time.Hour)
		ok(t, s.UpdateKey(ctx(t), k), "UpdateKey")
		is(t, s.UpdateKey(ctx(t), testKey("cc", "x")), storage.ErrNotFound, "update unknown key")
		keys, err := s.ListKeys(ctx(t))
		ok(t, err, "ListKeys")
		if len(keys) != 2 || !reflect.DeepEqual(keys[0], k) || !reflect.DeepEqual(keys[1], bb) {
			t.Fatalf("ListKeys = %+v", keys)
		}
	}},
	{"AttestKeyUsageDefaultsToSignatures", func(t *testing.T, s storage.Store) {
		// A key given no usage is stored as the keys of earlier releases
		// are read: trusted for signatures, never for bundles.
		k := testKey("aa", "old")
		k.Usage = nil
		ok(t, s.CreateKey(ctx(t), k), "CreateKey")
		got, err := s.GetKey(ctx(t), "aa")
		ok(t, err, "GetKey")
		equal(t, got.Usage, []string{storage.KeyUsageSignatures}, "usage")
		if got.HasUsage(storage.KeyUsageBundles) || !got.HasUsage(storage.KeyUsageSignatures) {
			t.Fatalf("HasUsage: %v", got.Usage)
		}
	}},
	{"AttestRecordsReplaceKeepsRecorded", func(t *testing.T, s storage.Store) {
		subj, ref := dg("subject"), dg("referrer")
		first := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, ref, []storage.AttestRecord{
			attestRecord(subj, 0, storage.SigUnverifiable, first), attestRecord(subj, 16, storage.SigVerified, first)}), "put")
		later := first.Add(30 * time.Minute)
		again := attestRecord(subj, 0, storage.SigVerified, later)
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, ref, []storage.AttestRecord{again, attestRecord(subj, 32, storage.SigFailed, later)}), "replace")
		got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, 100)
		ok(t, err, "BySubject")
		if len(got) != 2 {
			t.Fatalf("after replace: %d records, want 2 (index 16 dropped): %v", len(got), referrersOf(got))
		}
		for _, r := range got {
			want := later
			if r.Index == 0 {
				want = first // seen before: keeps when it was first recorded
			}
			if !r.Recorded.Equal(want) || !r.Checked.Equal(later) || r.Repo != "r" || r.Referrer != ref {
				t.Errorf("record %d: recorded %v checked %v, want recorded %v checked %v", r.Index, r.Recorded, r.Checked, want, later)
			}
		}
		if got[0].Status != storage.SigVerified || got[0].KeyID != "k1" || got[0].PayloadDigest != dg("payload0") {
			t.Errorf("record 0 not replaced: %+v", got[0])
		}
		other, err := s.AttestRecordsBySubject(ctx(t), "other", subj, 100)
		ok(t, err, "other repository")
		if len(other) != 0 {
			t.Fatalf("records leaked across repositories: %v", referrersOf(other))
		}
		ok(t, s.DeleteAttestRecords(ctx(t), "r", "", ref), "delete")
		ok(t, s.DeleteAttestRecords(ctx(t), "r", "", ref), "delete again")
		got, err = s.AttestRecordsBySubject(ctx(t), "r", subj, 100)
		ok(t, err, "after delete")
		if len(got) != 0 {
			t.Fatalf("records after delete: %v", referrersOf(got))
		}
	}},
	{"AttestRecordsKeyedBySubject", func(t *testing.T, s storage.Store) {
		// One .sig manifest re-tagged as the signature of a second subject:
		// checking it for the second leaves the first's findings alone.
		first, second, ref := dg("first"), dg("second"), dg("referrer")
		now := time.Now().UTC().Truncate(time.Millisecond)
		ok(t, s.PutAttestRecords(ctx(t), "r", first, ref, []storage.AttestRecord{attestRecord(first, 0, storage.SigVerified, now)}), "put first")
		ok(t, s.PutAttestRecords(ctx(t), "r", second, ref, []storage.AttestRecord{attestRecord(second, 0, storage.SigFailed, now.Add(time.Minute))}), "put second")
		got, err := s.AttestRecordsBySubject(ctx(t), "r", first, 100)
		ok(t, err, "first")
		if len(got) != 1 || got[0].Status != storage.SigVerified || !got[0].Recorded.Equal(now) {
			t.Fatalf("the first subject's records after the second's were put: %+v", got)
		}
		byRef, err := s.AttestRecordsByReferrer(ctx(t), "r", ref, 100)
		ok(t, err, "ByReferrer")
		if len(byRef) != 2 || byRef[0].Subject == byRef[1].Subject {
			t.Fatalf("ByReferrer: %+v", byRef)
		}
		if err := s.PutAttestRecords(ctx(t), "r", first, ref, []storage.AttestRecord{attestRecord(second, 1, storage.SigVerified, now)}); err == nil {
			t.Fatal("a record about another subject was put under the first")
		}
		ok(t, s.DeleteAttestRecords(ctx(t), "r", second, ref), "delete second")
		if got, err := s.AttestRecordsBySubject(ctx(t), "r", first, 100); err != nil || len(got) != 1 {
			t.Fatalf("deleting the second subject's records touched the first's: %v %v", got, err)
		}
		if got, err := s.AttestRecordsBySubject(ctx(t), "r", second, 100); err != nil || len(got) != 0 {
			t.Fatalf("second subject's records after delete: %v %v", got, err)
		}
		ok(t, s.PutAttestRecords(ctx(t), "r", second, ref, []storage.AttestRecord{attestRecord(second, 0, storage.SigFailed, now)}), "put second again")
		ok(t, s.DeleteAttestRecords(ctx(t), "r", "", ref), "delete the referrer")
		if byRef, err := s.AttestRecordsByReferrer(ctx(t), "r", ref, 100); err != nil || len(byRef) != 0 {
			t.Fatalf("records of a deleted referrer: %v %v", byRef, err)
		}
	}},
	{"AttestRecordsReadsAreBounded", func(t *testing.T, s storage.Store) {
		subj := dg("subject")
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i := range 5 {
			ok(t, s.PutAttestRecords(ctx(t), "r", subj, dg(fmt.Sprint("ref", i)),
				[]storage.AttestRecord{attestRecord(subj, 0, storage.SigVerified, now.Add(time.Duration(i)*time.Second))}), "put %d", i)
		}
		got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, 3)
		ok(t, err, "BySubject")
		if len(got) != 3 || got[0].Referrer != dg("ref0") || got[2].Referrer != dg("ref2") {
			t.Fatalf("BySubject n=3: %v, want the 3 oldest", referrersOf(got))
		}
		if got, err := s.AttestRecordsByReferrer(ctx(t), "r", dg("ref1"), 1); err != nil || len(got) != 1 {
			t.Fatalf("ByReferrer n=1: %v %v", got, err)
		}
	}},
	{"AttestRecordsConcurrentPut", func(t *testing.T, s storage.Store) {
		// The API and the push event may check one referrer at once.
		subj, ref := dg("subject"), dg("referrer")
		now := time.Now().UTC().Truncate(time.Millisecond)
		recs := []storage.AttestRecord{attestRecord(subj, 0, storage.SigVerified, now), attestRecord(subj, 16, storage.SigVerified, now)}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = s.PutAttestRecords(ctx(t), "r", subj, ref, recs) })
		}
		wg.Wait()
		for i, err := range errs {
			ok(t, err, "put %d", i)
		}
		got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, 100)
		ok(t, err, "BySubject")
		if len(got) != 2 {
			t.Fatalf("%d records after concurrent puts, want 2", len(got))
		}
	}},
	{"AttestRecordsSupersede", func(t *testing.T, s storage.Store) {
		subj := dg("subject")
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i, name := range []string{"old", "new", "oci"} {
			r := attestRecord(subj, 0, storage.SigVerified, now.Add(time.Duration(i)*time.Second))
			if name == "oci" {
				r.Format = "cosign-oci11"
			}
			ok(t, s.PutAttestRecords(ctx(t), "r", subj, dg(name), []storage.AttestRecord{r}), "put %s", name)
		}
		att := attestRecord(subj, 0, storage.SigVerified, now)
		att.Kind = "attestation"
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, dg("att"), []storage.AttestRecord{att}), "put attestation")

		n, err := s.SupersedeAttestRecords(ctx(t), "r", subj, "signature", "cosign-tag", dg("new"), now.Add(time.Minute))
		ok(t, err, "supersede tag format")
		if n != 1 {
			t.Fatalf("superseded %d, want 1 (old only)", n)
		}
		n, err = s.SupersedeAttestRecords(ctx(t), "r", subj, "signature", "cosign-tag", dg("new"), now.Add(2*time.Minute))
		ok(t, err, "supersede again")
		if n != 0 {
			t.Fatalf("superseding twice marked %d again", n)
		}
		n, err = s.SupersedeAttestRecords(ctx(t), "r", subj, "signature", "", dg("new"), now.Add(3*time.Minute))
		ok(t, err, "supersede any format")
		if n != 1 {
			t.Fatalf("superseded %d, want 1 (oci)", n)
		}
		got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, 100)
		ok(t, err, "BySubject")
		old, err := s.SupersededAttestRecords(ctx(t), "r", subj, 100)
		ok(t, err, "Superseded")
		when := map[digest.Digest]time.Time{}
		for _, r := range append(got, old...) {
			when[r.Referrer] = r.Superseded
		}
		if !when[dg("old")].Equal(now.Add(time.Minute)) || !when[dg("oci")].Equal(now.Add(3*time.Minute)) ||
			!when[dg("new")].IsZero() || !when[dg("att")].IsZero() {
			t.Fatalf("superseded times: %v", when)
		}
	}},
	{"AttestRecordsBySubjectsAnswerAsOneByOne", func(t *testing.T, s storage.Store) {
		// More subjects than one batched query names, in two
		// repositories (the same digest in both), some without records,
		// some with superseded ones: each list must be what the
		// per-subject queries give, in their order and within their caps.
		now := time.Now().UTC().Truncate(time.Millisecond)
		var subjects []storage.AttestSubject
		for i := range 110 {
			sub := storage.AttestSubject{Repo: fmt.Sprint("repo", i%2), Subject: dg(fmt.Sprint("subject", i/2))}
			subjects = append(subjects, sub)
			if i%3 == 0 {
				continue
			}
			for j := range i%4 + 1 {
				ref := dg(fmt.Sprint("sig", i, "-", j))
				at := now.Add(time.Duration(j) * time.Minute)
				recs := []storage.AttestRecord{attestRecord(sub.Subject, 0, storage.SigVerified, at), attestRecord(sub.Subject, 16, storage.SigFailed, at)}
				ok(t, s.PutAttestRecords(ctx(t), sub.Repo, sub.Subject, ref, recs), "put %v %d", sub, j)
				if i%2 == 1 {
					_, err := s.SupersedeAttestRecords(ctx(t), sub.Repo, sub.Subject, "signature", "", ref, at)
					ok(t, err, "supersede %v %d", sub, j)
				}
			}
		}
		for _, caps := range [][2]int{{3, 3}, {100, 100}, {1, 0}} {
			cur, old, err := s.AttestRecordsBySubjects(ctx(t), subjects, caps[0], caps[1])
			ok(t, err, "AttestRecordsBySubjects %v", caps)
			records := 0
			for _, sub := range subjects {
				wantCur, err := s.AttestRecordsBySubject(ctx(t), sub.Repo, sub.Subject, caps[0])
				ok(t, err, "BySubject")
				wantOld, err := s.SupersededAttestRecords(ctx(t), sub.Repo, sub.Subject, caps[1])
				ok(t, err, "Superseded")
				records += len(wantCur) + len(wantOld)
				if !reflect.DeepEqual(cur[sub], wantCur) || !reflect.DeepEqual(old[sub], wantOld) {
					t.Fatalf("caps %v, %v: batched current %v superseded %v, one by one %v and %v", caps, sub,
						referrersOf(cur[sub]), referrersOf(old[sub]), referrersOf(wantCur), referrersOf(wantOld))
				}
				if _, in := cur[sub]; in != (len(wantCur) > 0) {
					t.Fatalf("caps %v, %v: an entry for no current records", caps, sub)
				}
			}
			if records == 0 {
				t.Fatal("no records compared")
			}
		}
		cur, old, err := s.AttestRecordsBySubjects(ctx(t), nil, 10, 10)
		ok(t, err, "no subjects")
		if len(cur)+len(old) != 0 {
			t.Fatalf("no subjects: %v %v", cur, old)
		}
	}},
	{"AttestRecordsSupersededCountForNothing", func(t *testing.T, s storage.Store) {
		// cosign's tag schema: each signing writes a .sig manifest that
		// repeats every earlier signature, and the tag moves to it.
		subj := dg("subject")
		now := time.Now().UTC().Truncate(time.Millisecond)
		sigs := func(n int, at time.Time) []storage.AttestRecord {
			var out []storage.AttestRecord
			for i := range n {
				out = append(out, attestRecord(subj, 16*i, storage.SigVerified, at))
			}
			return out
		}
		for i := 1; i <= 4; i++ {
			ref := dg(fmt.Sprint("sig", i))
			at := now.Add(time.Duration(i) * time.Minute)
			ok(t, s.PutAttestRecords(ctx(t), "r", subj, ref, sigs(i, at)), "put signing %d", i)
			_, err := s.SupersedeAttestRecords(ctx(t), "r", subj, "signature", "cosign-tag", ref, at)
			ok(t, err, "supersede at signing %d", i)
		}
		current := func(n int, want digest.Digest, count int) {
			t.Helper()
			got, err := s.AttestRecordsBySubject(ctx(t), "r", subj, n)
			ok(t, err, "BySubject")
			if len(got) != count {
				t.Fatalf("BySubject n=%d: %v, want the %d records of %s (the others are superseded)", n, referrersOf(got), count, want)
			}
			for _, r := range got {
				if r.Referrer != want || !r.Superseded.IsZero() {
					t.Fatalf("BySubject n=%d: %v, want only %s's records", n, referrersOf(got), want)
				}
			}
		}
		current(4, dg("sig4"), 4)
		current(100, dg("sig4"), 4)
		old, err := s.SupersededAttestRecords(ctx(t), "r", subj, 4)
		ok(t, err, "Superseded")
		if len(old) != 4 || old[0].Referrer != dg("sig3") || old[3].Referrer != dg("sig2") || old[0].Superseded.IsZero() {
			t.Fatalf("Superseded n=4: %v, want sig3's 3 records then one of sig2's (most recently superseded first)", referrersOf(old))
		}

		// A re-check of a superseded manifest, with a record it did not
		// have before, brings none of it back.
		ok(t, s.PutAttestRecords(ctx(t), "r", subj, dg("sig2"), sigs(3, now)), "re-check sig2")
		current(100, dg("sig4"), 4)
		again, err := s.AttestRecordsByReferrer(ctx(t), "r", dg("sig2"), 100)
		ok(t, err, "ByReferrer")
		for _, r := range again {
			if !r.Superseded.Equal(now.Add(3 * time.Minute)) {
				t.Fatalf("re-checked record %d of sig2: superseded %v, want when sig3 superseded it", r.Index, r.Superseded)
			}
		}
		// The tag moved back to sig2: it is current, the rest history.
		n, err := s.SupersedeAttestRecords(ctx(t), "r", subj, "signature", "cosign-tag", dg("sig2"), now.Add(time.Hour))
		ok(t, err, "move back to sig2")
		if n != 4 {
			t.Fatalf("moving back superseded %d records, want sig4's 4", n)
		}
		current(100, dg("sig2"), 3)
	}},
	{"AttestRecordsLookups", func(t *testing.T, s storage.Store) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		var want []string
		for i := range 7 {
			// Subjects in the opposite order of referrers: the walk is
			// in (repo, subject, referrer) order.
			r := attestRecord(dg(fmt.Sprint("s", 6-i)), 0, storage.SigUnverifiable, now)
			if i%2 == 0 {
				r.Status, r.KeyID = storage.SigVerified, "k2"
			}
			repo := fmt.Sprintf("r%d", i%3)
			ok(t, s.PutAttestRecords(ctx(t), repo, r.Subject, dg(fmt.Sprint("ref", i)), []storage.AttestRecord{r}), "put %d", i)
			if i%2 == 1 {
				want = append(want, fmt.Sprintf("%s %s %s", repo, r.Subject, dg(fmt.Sprint("ref", i))))
			}
		}
		byKey, err := s.AttestRecordsByKey(ctx(t), "k2")
		ok(t, err, "ByKey")
		if len(byKey) != 4 {
			t.Fatalf("ByKey: %d records, want 4", len(byKey))
		}
		bySig, err := s.AttestRecordsBySigHash(ctx(t), "sig0")
		ok(t, err, "BySigHash")
		if len(bySig) != 7 {
			t.Fatalf("BySigHash: %d records, want 7", len(bySig))
		}
		// Walk the unverifiable ones two at a time: every one, once, in order.
		var got []string
		var after storage.AttestCursor
		for {
			page, err := s.AttestRecordsWithStatus(ctx(t), storage.SigUnverifiable, after, 2)
			ok(t, err, "WithStatus")
			for _, r := range page {
				got = append(got, fmt.Sprintf("%s %s %s", r.Repo, r.Subject, r.Referrer))
			}
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = storage.AttestCursor{Repo: last.Repo, Subject: last.Subject, Referrer: last.Referrer, Index: last.Index}
		}
		slices.Sort(want)
		equal(t, got, want, "unverifiable records")
	}},
}
