package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

type testCase struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}

// Run runs the suite; newStore returns a fresh, empty store for each subtest.
// newStore may register its own cleanup (dropping a schema, say); Run closes
// the store before that cleanup runs.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	for _, group := range [][]testCase{repoCases, blobCases, manifestCases, referrerCases, tagCases, claimCases, uploadCases, leaseCases, packCases, packIndexCases, tagWasCases, auditCases, auditOrderCases, attestCases, mirrorCases, bundleCases, eventCases, outboxCases, inlineAuditCases, robotCases, complianceCases, pingCases, gcCases, retentionCases} {
		for _, c := range group {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
				c.fn(t, s)
			})
		}
	}
}

// pingCases hold a backend with the optional Pinger ability to its
// meaning: a readiness probe that says unavailable when the store is.
var pingCases = []testCase{
	{"PingAnswersUntilClosed", func(t *testing.T, s storage.Store) {
		p, isPinger := s.(storage.Pinger)
		if !isPinger {
			t.Skipf("%T has no Ping", s)
		}
		ok(t, p.Ping(ctx(t)), "Ping")
		ok(t, s.Close(), "Close")
		is(t, p.Ping(ctx(t)), storage.ErrUnavailable, "Ping after Close")
	}},
}

// dg is the sha256 digest of s: distinct inputs, distinct digests.
func dg(s string) digest.Digest { return digest.FromBytes(digest.SHA256, []byte(s)) }

// manifest builds a manifest of repo whose payload is body.
func manifest(repo, body string) *storage.Manifest {
	return &storage.Manifest{
		Repo:      repo,
		Digest:    dg(body),
		MediaType: oci.MediaTypeImageManifest,
		Size:      int64(len(body)),
		Payload:   []byte(body),
		Created:   time.Now().UTC().Truncate(time.Millisecond),
	}
}

// referrer builds a manifest of repo whose subject is subject.
func referrer(repo, body string, subject digest.Digest, artifactType string) *storage.Manifest {
	m := manifest(repo, body)
	m.Subject = subject
	m.ArtifactType = artifactType
	return m
}

func ok(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", fmt.Sprintf(what, args...), err)
	}
}

func is(t *testing.T, err, want error, what string, args ...any) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, want)
	}
}

func put(t *testing.T, s storage.Store, m *storage.Manifest, tags ...string) {
	t.Helper()
	ok(t, s.PutManifest(ctx(t), m, tags, storage.PutManifestOptions{}), "PutManifest %s in %s", m.Digest, m.Repo)
}

func link(t *testing.T, s storage.Store, repo string, d digest.Digest, size int64) {
	t.Helper()
	ok(t, s.LinkBlob(ctx(t), repo, d, size), "LinkBlob %s in %s", d, repo)
}

func resolves(t *testing.T, s storage.Store, repo, tag string, want digest.Digest) {
	t.Helper()
	got, err := s.ResolveTag(ctx(t), repo, tag)
	ok(t, err, "ResolveTag %s:%s", repo, tag)
	if got != want {
		t.Fatalf("ResolveTag %s:%s = %s, want %s", repo, tag, got, want)
	}
}

func equal[T comparable](t *testing.T, got, want []T, what string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// pages walks a paginated listing n at a time and checks each page is
// short only at the end.
func pages(t *testing.T, n int, list func(last string, n int) ([]string, error)) []string {
	t.Helper()
	var all []string
	last := ""
	for i := 0; ; i++ {
		page, err := list(last, n)
		ok(t, err, "page %d after %q", i, last)
		if len(page) > n {
			t.Fatalf("page %d after %q has %d entries, asked for %d", i, last, len(page), n)
		}
		all = append(all, page...)
		if len(page) < n {
			return all
		}
		last = page[len(page)-1]
		if i > 100000 {
			t.Fatal("pagination does not end")
		}
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func isErr(err, target error) bool { return errors.Is(err, target) }
