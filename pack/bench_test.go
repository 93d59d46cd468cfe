package pack_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/storage"
)

// Benchmarks run in process over the real embedded stores (disk blobs,
// SQLite with synchronous=FULL), through the HTTP handler, so JSON,
// multipart and every fsync are in the figures; only the network is not.
//
//	go test -run '^$' -bench . -benchtime 200x ./pack/

// BenchmarkPublish publishes small packs (two 1 KiB files) one after the
// other: the rate one client gets from REST publish.
func BenchmarkPublish(b *testing.B) {
	e := newEnv(b, pack.DefaultPolicy())
	files := []file{{name: "rules.yaml", data: make([]byte, 1024)}, {name: "policy.rego", data: make([]byte, 1024)}}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		// Distinct content per version, so every publish stores new blobs.
		files[0].data[0], files[0].data[1] = byte(i), byte(i>>8)
		w := e.publish(pack.Metadata{Name: "bench/rules", Version: fmt.Sprintf("1.%d.%d", i/1000, i%1000)}, files...)
		if w.Code != http.StatusCreated {
			b.Fatalf("publish %d: %d %s", i, w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
}

// BenchmarkList10k lists an index of 10,000 versions (200 packs of 50
// versions, a third deprecated, a label on every tenth) and reports the
// latency of one page (100 versions) as p50 and p99, for the queries a
// dashboard or CLI makes, plus the time to walk every page.
func BenchmarkList10k(b *testing.B) {
	const versions = 10000
	e := newEnv(b, pack.DefaultPolicy())
	fill(b, e.store, versions)
	var cursor string // the cursor of page 50 of the full listing
	{
		q := pack.Prefix + "?status=all&limit=100"
		for range 50 {
			cursor = decode[pack.VersionList](b, e.do("GET", q, nil)).Next
			q = pack.Prefix + "?status=all&limit=100&cursor=" + cursor
		}
	}
	for _, c := range []struct{ name, query string }{
		{"first-page", "?limit=100"},
		{"all-first-page", "?status=all&limit=100"},
		{"page-50", "?status=all&limit=100&cursor=" + cursor},
		{"deprecated", "?status=deprecated&limit=100"},
		{"name-prefix", "?name=pack-01&limit=100"},
		{"label", "?label=tier=gold&limit=100"},
	} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				w := e.do("GET", pack.Prefix+c.query, nil)
				lat = append(lat, time.Since(t0))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", c.query, w.Code, w.Body)
				}
			}
			reportPercentiles(b, lat)
		})
	}
	b.Run("walk-all", func(b *testing.B) {
		for b.Loop() {
			n, q := 0, pack.Prefix+"?status=all&limit=1000"
			for {
				l := decode[pack.VersionList](b, e.do("GET", q, nil))
				n += len(l.Items)
				if l.Next == "" {
					break
				}
				q = pack.Prefix + "?status=all&limit=1000&cursor=" + l.Next
			}
			if n != versions {
				b.Fatalf("walked %d versions, want %d", n, versions)
			}
		}
	})
}

// BenchmarkPacksPage is the server's work for the first page (100
// versions) of GET /api/v1/packs over SQLite: reading the rows back
// (their files and labels columns) and writing the JSON reply. Its
// allocs/op and ns/op are the CPU a page costs, without the latencies
// BenchmarkList10k adds up.
func BenchmarkPacksPage(b *testing.B) {
	e := newEnv(b, pack.DefaultPolicy())
	fill(b, e.store, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if w := e.do("GET", pack.Prefix+"?limit=100", nil); w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// fill records n versions straight into the index, from many goroutines so
// SQLite's group commit keeps the setup short.
func fill(b *testing.B, p storage.Packs, n int) {
	b.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				v := &storage.PackVersion{
					Name: fmt.Sprintf("pack-%03d", i%200), Version: fmt.Sprintf("1.%d.0", i/200),
					Digest:    sha([]byte(fmt.Sprint(i))),
					MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: oci.ArtifactTypePack,
					Size: 600, TotalSize: 4000, Description: "benchmark pack",
					Files: []storage.PackFile{{Name: "rules.yaml", Digest: sha([]byte(fmt.Sprint("f", i))), Size: 3400, MediaType: oci.MediaTypePackFile}},
				}
				if i%10 == 0 {
					v.Labels = map[string]string{"tier": "gold"}
				}
				if _, err := p.PutPackVersion(b.Context(), v, nil); err != nil {
					b.Error(err)
					return
				}
				if i%3 == 0 {
					err := p.ChangePackStatus(b.Context(), []storage.PackStatusChange{{Name: v.Name, Version: v.Version,
						From: storage.PackActive, To: storage.PackDeprecated, Reason: "bench"}}, nil)
					if err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}
