package metatest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/packreg/packreg/storage"
)

// BenchListTags times ListTags on a store open gives, the SQLite and
// PostgreSQL benchmarks' shared body:
//
//   - whole=1000: the listing, all of a 1,000-tag repository in
//     one page (GET tags/list?n=1000 asks the store for n+1 names);
//   - deep=10000: 1,000-tag pages of a 10,000-tag repository, half of
//     them starting deep in the list.
func BenchListTags(b *testing.B, open func(b *testing.B) storage.Store) {
	b.Run("whole=1000", func(b *testing.B) {
		s := open(b)
		FillTags(b, s, "bench/repo", 1000)
		listTags(b, func(int) (string, int) { return "", 1001 }, 1000, s)
	})
	b.Run("deep=10000", func(b *testing.B) {
		s := open(b)
		tags := FillTags(b, s, "bench/repo", 10000)
		listTags(b, func(i int) (string, int) {
			if i%2 == 1 {
				return tags[rand.IntN(len(tags)-1000)], 1000
			}
			return "", 1000
		}, 1000, s)
	})
}

// listTags lists the page page(i) gives, b.N times, and checks it holds
// want names.
func listTags(b *testing.B, page func(i int) (last string, n int), want int, s storage.Store) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		last, n := page(i)
		got, err := s.ListTags(b.Context(), "bench/repo", last, n)
		if err != nil || len(got) != want {
			b.Fatalf("ListTags: %d tags, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
}

// FillTags gives repo n tags (in byte order as in push order), 1,000 per
// manifest, and returns them; the store benchmarks' repository of many
// tags.
func FillTags(b *testing.B, s storage.Store, repo string, n int) []string {
	b.Helper()
	tags := make([]string, 0, n)
	for i := 0; i < n; i += 1000 {
		batch := make([]string, 0, 1000)
		for j := i; j < min(n, i+1000); j++ {
			batch = append(batch, fmt.Sprintf("v%07d", j))
		}
		if err := s.PutManifest(b.Context(), manifest(repo, fmt.Sprint("tags ", i)), batch, storage.PutManifestOptions{}); err != nil {
			b.Fatal(err)
		}
		tags = append(tags, batch...)
	}
	return tags
}
