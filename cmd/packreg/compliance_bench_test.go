package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// BenchmarkCompliance10k is issue 13's figures over 10,000 versions, three
// in four signed and attested (verified records judged by attest's report
// against the key ring, as in serve): the p99 of the summary and of the
// first page of failing versions, and how long the worker takes to
// evaluate every version again after a rule change. It prints figures;
// it asserts none.
func BenchmarkCompliance10k(b *testing.B) {
	const repos, perRepo = 100, 100
	ctx := context.Background()
	_, st, _ := teststores.Open(b)
	now := time.Now().UTC()
	key := &storage.Key{ID: "benchkey", Name: "bench", PEM: "-", Algorithm: "ecdsa-p256", State: storage.KeyActive,
		Usage: []string{storage.KeyUsageSignatures}, Created: now, Updated: now}
	if err := st.CreateKey(ctx, key); err != nil {
		b.Fatal(err)
	}
	const slsa = "https://slsa.dev/provenance/v1"
	for r := range repos {
		repo := fmt.Sprintf("bench/pack%03d", r)
		for v := range perRepo {
			d := digest.FromBytes(digest.SHA256, fmt.Appendf(nil, "%s:%d", repo, v))
			if _, err := st.PutPackVersion(ctx, &storage.PackVersion{Name: repo, Version: fmt.Sprintf("1.0.%d", v), Digest: d,
				MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.packreg.pack.v1"}, nil); err != nil {
				b.Fatal(err)
			}
			if v%4 == 3 {
				continue // unsigned: failing
			}
			ref := digest.FromBytes(digest.SHA256, fmt.Appendf(nil, "sig %s:%d", repo, v))
			recs := []storage.AttestRecord{
				{Repo: repo, Referrer: ref, Index: 0, Kind: attest.KindSignature, Format: "cosign-tag", Subject: d, KeyID: key.ID,
					Algorithm: "ecdsa-p256", SigHash: ref.String() + "0", Status: storage.SigVerified, Recorded: now, Checked: now},
				{Repo: repo, Referrer: ref, Index: 1, Kind: attest.KindAttestation, Format: "cosign-tag", Subject: d, KeyID: key.ID,
					Algorithm: "ecdsa-p256", PredicateType: slsa, SigHash: ref.String() + "1", Status: storage.SigVerified, Recorded: now, Checked: now},
			}
			if err := st.PutAttestRecords(ctx, repo, d, ref, recs); err != nil {
				b.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	att := attest.New(st, attest.WithLogger(log))
	svc := compliance.New(st, evidence{att}, compliance.Config{Rules: []compliance.Rule{{Name: "signed",
		Repositories: []string{"**"}, RequireSignature: true}}}, compliance.WithLogger(log))
	if err := svc.Subscribe(ctx); err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(wctx) })
	defer func() { stop(); wg.Wait() }()
	srv := httptest.NewServer(svc.Handler(log))
	defer srv.Close()

	// The first pass evaluates everything; wait for it through the API.
	awaitVersions := func(want int64, compliant int64) {
		for {
			sum, err := svc.Summary(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			if sum.Versions == want && sum.Compliant == compliant {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	start := time.Now()
	awaitVersions(repos*perRepo, repos*perRepo*3/4)
	first := time.Since(start)

	// A rule change: every version evaluated again (attestation required
	// too: the same three in four pass).
	start = time.Now()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+compliance.Prefix+"/rules",
		stringsReader(`{"rules":[{"name":"provenance","repositories":["**"],"requireSignature":true,"requiredAttestations":["`+slsa+`"]}]}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("PUT rules: %v %v", resp, err)
	}
	if err := svc.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	reeval := time.Since(start)

	var sumLat, pageLat []time.Duration
	get := func(path string, into *[]time.Duration) {
		t0 := time.Now()
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %v %v", path, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		*into = append(*into, time.Since(t0))
	}
	for b.Loop() {
		get(compliance.Prefix+"/summary", &sumLat)
		get(compliance.Prefix+"/packs?status=failing", &pageLat)
	}
	b.ReportMetric(float64(p99(sumLat).Microseconds())/1000, "summary-p99-ms")
	b.ReportMetric(float64(p99(pageLat).Microseconds())/1000, "failing-page-p99-ms")
	b.ReportMetric(reeval.Seconds(), "rule-change-reeval-s")
	b.ReportMetric(first.Seconds(), "first-eval-s")
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}
