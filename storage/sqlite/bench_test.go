package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/metatest"
	"github.com/packreg/packreg/storage/sqlite"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// The store's share of the registry targets (manifest PUT ≥ 1,000/s from 16
// clients, GET ≥ 6,000/s, a 1,000-tag page of 10,000 ≤ 3 ms, PUT cost flat
// from 10 to 100,000 tags). Run: go test -run '^$' -bench . ./storage/sqlite/

func openBench(b *testing.B) *sqlmeta.Store {
	b.Helper()
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchManifest is a realistic ~1 KiB image manifest, unique per i.
func benchManifest(repo string, i int) *storage.Manifest {
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","n":%d,"layers":[%s]}`,
		i, strings.Repeat(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":12345,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},`, 6))
	return &storage.Manifest{
		Repo: repo, Digest: digest.FromBytes(digest.SHA256, []byte(body)),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Payload: []byte(body),
		Refs: []digest.Digest{digest.FromBytes(digest.SHA256, []byte("config"))},
	}
}

func BenchmarkPutManifest(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := openBench(b)
			b.ResetTimer()
			metatest.FromClients(b, clients, func(i int) error {
				return s.PutManifest(b.Context(), benchManifest("bench/repo", i), []string{fmt.Sprint("v", i)}, storage.PutManifestOptions{})
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// BenchmarkPutManifestAudited is BenchmarkPutManifest as the server runs
// it: audited inline, with the events of the push and its tag queued for
// two other consumers (metatest.PutManifestAudited). It reports the
// process's CPU per put too, which the machine's load moves less than the
// rate.
func BenchmarkPutManifestAudited(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			report := teststores.ReportCPU(b)
			metatest.PutManifestAudited(b, openBench(b), clients)
			report()
		})
	}
}

func BenchmarkGetManifest(b *testing.B) {
	s := openBench(b)
	const n = 1000
	ds := make([]digest.Digest, n)
	for i := range n {
		m := benchManifest("bench/repo", i)
		ds[i] = m.Digest
		if err := s.PutManifest(b.Context(), m, []string{fmt.Sprint("v", i)}, storage.PutManifestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(8) // 16 concurrent readers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			if _, err := s.GetManifest(b.Context(), "bench/repo", ds[r.IntN(n)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkListTags: a 1,000-tag repository listed whole, and 1,000-tag
// pages of a 10,000-tag one (metatest.BenchListTags).
func BenchmarkListTags(b *testing.B) {
	metatest.BenchListTags(b, func(b *testing.B) storage.Store { return openBench(b) })
}

// PutManifest must cost the same whatever the number of tags already there.
func BenchmarkPutManifestExistingTags(b *testing.B) {
	for _, existing := range []int{10, 100000} {
		b.Run(fmt.Sprintf("tags=%d", existing), func(b *testing.B) {
			s := openBench(b)
			metatest.FillTags(b, s, "bench/repo", existing)
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := s.PutManifest(b.Context(), benchManifest("bench/repo", i), []string{fmt.Sprint("new", i)}, storage.PutManifestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "us/put")
		})
	}
}

// BenchmarkLinkBlob is the metadata half of a 1 KiB blob push (one link,
// committed durably) from 1 and 16 writers. Besides ns/op it reports the
// process's CPU and context switches per link (getrusage), which the
// machine's load moves far less than the rate: a hand-off to the group
// commit loop costs a switch and a futex wake-up each way.
func BenchmarkLinkBlob(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := openBench(b)
			report := teststores.ReportCPU(b)
			b.ResetTimer()
			metatest.FromClients(b, clients, func(i int) error {
				return s.LinkBlob(b.Context(), "bench/repo", digest.FromBytes(digest.SHA256, fmt.Appendf(nil, "blob %d", i)), 1024)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "links/s")
			report()
		})
	}
}
