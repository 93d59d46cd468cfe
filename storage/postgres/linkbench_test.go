package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage/postgres"
)

// BenchmarkLinkBlobAudited is the metadata half of a 1 KiB push on
// PostgreSQL from one client: a blob link with its event, audited
// inline, then the tombstone read the registry makes after it. It
// reports this process's CPU per push (cpu-us/op, getrusage), which on a
// shared machine moves less than the rate. Run: go test -run '^$' -bench
// LinkBlob ./storage/postgres/ (with PACKREG_TEST_POSTGRES; .ci/pg.sh).
func BenchmarkLinkBlobAudited(b *testing.B) {
	s, err := postgres.Open(b.Context(), teststores.PostgresSchema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.AuditInline()
	ctx := b.Context()
	b.ReportAllocs()
	cpu0 := teststores.ProcessCPU(b)
	i := 0
	for b.Loop() {
		i++
		d := pgDigest(fmt.Sprint(i))
		if err := s.LinkBlob(ctx, "bench/small", d, 1024, pgEvent("blob.push", "bench/small@"+string(d))); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.BlobDeletingWithin(ctx, d, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((teststores.ProcessCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}
