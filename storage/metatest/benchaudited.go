package metatest

import (
	"context"
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// PutManifestAudited is the metadata half of a manifest PUT by tag as the
// server runs it, for a store benchmark: audited inline, two other
// consumers' rows queued (attest and compliance, which skip blob pushes),
// and the audit drain run after every commit that queued for the trail
// (audit.Recorder.Watch), from clients writers. Shared by the SQLite and
// PostgreSQL benchmarks; s is fresh, and the caller closes it.
func PutManifestAudited(b *testing.B, s storage.Store, clients int) {
	ctx := b.Context()
	for _, c := range []string{"attest", "compliance"} {
		if err := s.AddEventConsumer(ctx, c, "blob.push"); err != nil {
			b.Fatal(err)
		}
	}
	ia, ok := s.(storage.InlineAuditor)
	if !ok {
		b.Fatalf("%T does not audit inline", s)
	}
	ia.AuditInline()
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
	FromClients(b, clients, func(i int) error {
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
	// On PostgreSQL the last drains run behind the answers, maybe still
	// now: a read of the trail records what is queued first.
	if _, err := s.AuditHead(ctx); err != nil {
		b.Fatal(err)
	}
	if n, err := s.CountPendingEvents(ctx, storage.AuditConsumer); err != nil || n != 0 {
		b.Fatalf("%d events still queued for the trail (%v)", n, err)
	}
}
