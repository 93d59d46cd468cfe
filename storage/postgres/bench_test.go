package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/metatest"
	"github.com/packreg/packreg/storage/postgres"
)

// BenchmarkPutManifestAudited is the metadata half of a manifest PUT by
// tag on PostgreSQL as the server runs it: audited inline, two other
// consumers' rows queued, and the audit drain run after every commit
// that queued for the trail (audit.Recorder.Watch), from 1 and 16
// writers. Run: go test -run '^$' -bench . ./storage/postgres/ (with
// PACKREG_TEST_POSTGRES; .ci/pg.sh).
func BenchmarkPutManifestAudited(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, err := postgres.Open(b.Context(), teststores.PostgresSchema(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			for _, c := range []string{"attest", "compliance"} {
				if err := s.AddEventConsumer(ctx, c, "blob.push"); err != nil {
					b.Fatal(err)
				}
			}
			s.AuditInline()
			s.OnEvents(func(ctx context.Context) {
				for {
					n, err := s.AuditEvents(ctx, 256)
					if err != nil {
						b.Error(err)
					}
					if err != nil || n < 256 {
						return
					}
				}
			})
			cfg := digest.FromBytes(digest.SHA256, []byte("config"))
			if err := s.LinkBlob(ctx, "bench/repo", cfg, 100); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			metatest.FromClients(b, clients, func(i int) error {
				body := fmt.Sprintf(`{"schemaVersion":2,"n":%d}`, i)
				m := &storage.Manifest{Repo: "bench/repo", Digest: digest.FromBytes(digest.SHA256, []byte(body)),
					MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), Payload: []byte(body),
					Refs: []digest.Digest{cfg}}
				tag := fmt.Sprint("v", i)
				evs := []storage.Event{{Actor: "b", Action: "manifest.push", Target: "bench/repo", Digest: m.Digest},
					{Actor: "b", Action: "tag.move", Target: "bench/repo:" + tag, Digest: m.Digest}}
				return s.PutManifest(ctx, m, []string{tag}, storage.PutManifestOptions{Events: evs, Present: m.Refs})
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
			if n, err := s.CountPendingEvents(ctx, storage.AuditConsumer); err != nil || n != 0 {
				b.Fatalf("%d events still queued for the trail (%v)", n, err)
			}
		})
	}
}

// BenchmarkListTags: a 1,000-tag repository listed whole, and 1,000-tag
// pages of a 10,000-tag one (metatest.BenchListTags), each in a fresh
// schema: the tables are as a fill leaves them, not yet analyzed or
// vacuumed, as in the bench run.
func BenchmarkListTags(b *testing.B) {
	metatest.BenchListTags(b, func(b *testing.B) storage.Store {
		s, err := postgres.Open(b.Context(), teststores.PostgresSchema(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
