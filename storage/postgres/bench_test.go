package postgres_test

import (
	"fmt"
	"testing"

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
			metatest.PutManifestAudited(b, s, clients)
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
