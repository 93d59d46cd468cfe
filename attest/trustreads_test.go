package attest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// TestReportsReadTrustInOneQuery: a listing page's reports (EvaluateMany)
// read the key ring and the trusted roots in one query (it was two: keys,
// then roots with their documents), and still see at once what another
// replica changed: a revoked key, a root added (whose document the first
// report after it reads, two queries more, once). No worker runs: every
// query counted is the page's.
func TestReportsReadTrustInOneQuery(t *testing.T) {
	_, meta, _ := teststores.Open(t)
	svc, other := attest.New(meta), attest.New(meta) // two replicas
	k := newSigner(t, "ecdsa-p256")
	key, err := other.AddKey(t.Context(), attest.KeyInput{Name: "release", PEM: k.pubPEM})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []attest.Subject
	for _, repo := range []string{"acme/a", "acme/b"} {
		d := digest.FromBytes(digest.SHA256, []byte(repo))
		rec := storage.AttestRecord{Kind: attest.KindSignature, Format: "cosign-tag", Subject: d, KeyID: key.ID,
			Algorithm: "ecdsa-sha256", SigHash: repo, Status: storage.SigVerified, Recorded: time.Now(), Checked: time.Now()}
		if err := meta.PutAttestRecords(t.Context(), repo, d, digest.FromBytes(digest.SHA256, []byte("sig "+repo)), []storage.AttestRecord{rec}); err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, attest.Subject{Repo: repo, Digest: d})
	}
	var queries atomic.Int64
	meta.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "query" {
			queries.Add(1)
		}
	})
	page := func() (string, int64) {
		t.Helper()
		queries.Store(0)
		reps, err := svc.EvaluateMany(t.Context(), subjects, attest.MaxSupersededShown)
		if err != nil || len(reps) != len(subjects) {
			t.Fatalf("EvaluateMany: %d reports, %v", len(reps), err)
		}
		return reps[0].Verification, queries.Load()
	}
	// The records of the page: two queries (current and superseded).
	const records = 2
	if v, n := page(); v != "verified" || n != records+1 {
		t.Fatalf("a page of %d reports: %s, %d queries, want verified and %d", len(subjects), v, n, records+1)
	}
	if _, err := other.AddTrustedRoot(t.Context(), "ci", newSigstore(t).trustedRoot()); err != nil {
		t.Fatal(err)
	}
	if _, n := page(); n != records+3 {
		t.Fatalf("the first page after a root was added: %d queries, want %d (its document read)", n, records+3)
	}
	if _, n := page(); n != records+1 {
		t.Fatalf("the next page: %d queries, want %d", n, records+1)
	}
	if _, err := other.RevokeKey(t.Context(), key.ID); err != nil {
		t.Fatal(err)
	}
	if v, _ := page(); v == "verified" {
		t.Fatal("a key revoked on another replica still verifies")
	}
}
