package metatest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

var manifestCases = []testCase{
	{"PutGetManifest", func(t *testing.T, s storage.Store) {
		m := manifest("r", `{"schemaVersion":2}`)
		m.ArtifactType = oci.ArtifactTypePack
		m.Subject = dg("subject")
		m.Annotations = map[string]string{"org.opencontainers.image.title": "x", "k": "ü"}
		m.Refs = []digest.Digest{dg("config"), dg("layer1"), dg("layer2")}
		m.IndexDepth = 3
		m.Created = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
		put(t, s, m)
		got, err := s.GetManifest(ctx(t), "r", m.Digest)
		ok(t, err, "GetManifest")
		if got.Repo != m.Repo || got.Digest != m.Digest || got.MediaType != m.MediaType ||
			got.ArtifactType != m.ArtifactType || got.Size != m.Size || got.Subject != m.Subject ||
			got.IndexDepth != m.IndexDepth {
			t.Fatalf("GetManifest = %+v\nwant %+v", got, m)
		}
		if !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("payload = %q, want %q", got.Payload, m.Payload)
		}
		if !maps.Equal(got.Annotations, m.Annotations) {
			t.Fatalf("annotations = %v, want %v", got.Annotations, m.Annotations)
		}
		equal(t, got.Refs, m.Refs, "refs")
		if !got.Created.Equal(m.Created) {
			t.Fatalf("created = %v, want %v", got.Created, m.Created)
		}
	}},
	{"PayloadIsByteExact", func(t *testing.T, s storage.Store) {
		var p []byte
		for i := range 256 { // every byte value, NUL and invalid UTF-8 included
			p = append(p, byte(i))
		}
		p = append(p, 0xff, 0xfe, 0x00, 0xc3, 0x28, '\r', '\n', ' ')
		p = append(p, bytes.Repeat([]byte{0x80, 0x00}, 40000)...) // bigger than a page
		m := &storage.Manifest{Repo: "r", Digest: digest.FromBytes(digest.SHA256, p),
			MediaType: "application/octet-stream", Size: int64(len(p)), Payload: p}
		put(t, s, m)
		got, err := s.GetManifest(ctx(t), "r", m.Digest)
		ok(t, err, "GetManifest")
		if !bytes.Equal(got.Payload, p) {
			t.Fatalf("payload differs: got %d bytes, want %d", len(got.Payload), len(p))
		}
		if got.Size != int64(len(p)) {
			t.Fatalf("size = %d, want %d", got.Size, len(p))
		}
	}},
	{"ManifestNotFound", func(t *testing.T, s storage.Store) {
		put(t, s, manifest("a", "m"))
		_, err := s.GetManifest(ctx(t), "a", dg("other"))
		is(t, err, storage.ErrNotFound, "unknown digest")
		_, err = s.GetManifest(ctx(t), "b", dg("m"))
		is(t, err, storage.ErrNotFound, "digest of another repository")
		_, err = s.GetManifest(ctx(t), "a/b", dg("m"))
		is(t, err, storage.ErrNotFound, "digest under a longer name")
	}},
	{"RePutKeepsManifestAndAddsTags", func(t *testing.T, s storage.Store) {
		m := manifest("r", "first")
		put(t, s, m, "one")
		again := *m
		again.Payload = []byte("something else") // same digest: the store keeps what it has
		again.MediaType = "changed"
		put(t, s, &again, "two", "three")
		got, err := s.GetManifest(ctx(t), "r", m.Digest)
		ok(t, err, "GetManifest")
		if string(got.Payload) != "first" || got.MediaType != m.MediaType {
			t.Fatalf("re-put replaced the manifest: %q %q", got.Payload, got.MediaType)
		}
		for _, tag := range []string{"one", "two", "three"} {
			resolves(t, s, "r", tag, m.Digest)
		}
	}},
	{"PutManifestWithoutTags", func(t *testing.T, s storage.Store) {
		m := manifest("r", "m")
		put(t, s, m)
		if _, err := s.GetManifest(ctx(t), "r", m.Digest); err != nil {
			t.Fatalf("GetManifest: %v", err)
		}
		tags, err := s.ListTags(ctx(t), "r", "", 10)
		ok(t, err, "ListTags")
		equal(t, tags, nil, "tags of an untagged manifest")
		repos, err := s.ListRepositories(ctx(t), "", 10)
		ok(t, err, "ListRepositories")
		equal(t, repos, []string{"r"}, "a manifest put creates its repository")
	}},
	{"SameManifestInTwoRepositories", func(t *testing.T, s storage.Store) {
		put(t, s, manifest("a", "m"), "t")
		put(t, s, manifest("b", "m"), "t")
		ok(t, s.DeleteManifest(ctx(t), "a", dg("m"), storage.DeleteOptions{}), "DeleteManifest in a")
		if _, err := s.GetManifest(ctx(t), "b", dg("m")); err != nil {
			t.Fatalf("deleting from a removed it from b: %v", err)
		}
		resolves(t, s, "b", "t", dg("m"))
	}},
	{"DeleteManifestRemovesItsTags", func(t *testing.T, s storage.Store) {
		m1, m2 := manifest("r", "one"), manifest("r", "two")
		put(t, s, m1, "a", "b")
		put(t, s, m2, "c")
		ok(t, s.DeleteManifest(ctx(t), "r", m1.Digest, storage.DeleteOptions{}), "DeleteManifest")
		_, err := s.GetManifest(ctx(t), "r", m1.Digest)
		is(t, err, storage.ErrNotFound, "GetManifest after delete")
		for _, tag := range []string{"a", "b"} {
			_, err := s.ResolveTag(ctx(t), "r", tag)
			is(t, err, storage.ErrNotFound, "tag %s of the deleted manifest", tag)
		}
		resolves(t, s, "r", "c", m2.Digest)
		tags, err := s.ListTags(ctx(t), "r", "", 10)
		ok(t, err, "ListTags")
		equal(t, tags, []string{"c"}, "tags after delete")
		is(t, s.DeleteManifest(ctx(t), "r", m1.Digest, storage.DeleteOptions{}), storage.ErrNotFound, "second delete")
		is(t, s.DeleteManifest(ctx(t), "nope", m2.Digest, storage.DeleteOptions{}), storage.ErrNotFound, "delete in unknown repository")
	}},
	{"DeleteManifestKeepsBlobs", func(t *testing.T, s storage.Store) {
		m := manifest("r", "m")
		m.Refs = []digest.Digest{dg("config"), dg("layer")}
		link(t, s, "r", dg("config"), 2)
		link(t, s, "r", dg("layer"), 3)
		put(t, s, m, "t")
		ok(t, s.DeleteManifest(ctx(t), "r", m.Digest, storage.DeleteOptions{}), "DeleteManifest")
		for _, d := range m.Refs {
			if _, err := s.BlobSize(ctx(t), "r", d); err != nil {
				t.Fatalf("DeleteManifest unlinked %s (that is GC's job): %v", d, err)
			}
		}
		if exists, _ := s.RepositoryExists(ctx(t), "r"); !exists {
			t.Fatal("repository with blobs left reported missing")
		}
	}},
}

var referrerCases = []testCase{
	{"ReferrersFilter", func(t *testing.T, s storage.Store) {
		subject := manifest("r", "subject")
		put(t, s, subject, "v1")
		var all []oci.Descriptor
		for i, at := range []string{"sig", "sbom", "sig", "attest", "sig"} {
			m := referrer("r", fmt.Sprint("ref", i), subject.Digest, at)
			m.MediaType = fmt.Sprint("media", i)
			m.Annotations = map[string]string{"i": fmt.Sprint(i)}
			put(t, s, m)
			d := oci.NewDescriptor(m.MediaType, m.Digest, m.Size)
			d.ArtifactType, d.Annotations = at, m.Annotations
			all = append(all, d)
		}
		put(t, s, referrer("r", "unrelated", dg("another subject"), "sig"))
		put(t, s, referrer("other", "elsewhere", subject.Digest, "sig")) // same subject, other repo
		slices.SortFunc(all, func(a, b oci.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })

		got, err := s.Referrers(ctx(t), "r", subject.Digest, "")
		ok(t, err, "Referrers")
		sameDescriptors(t, got, all)

		var sigs []oci.Descriptor
		for _, d := range all {
			if d.ArtifactType == "sig" {
				sigs = append(sigs, d)
			}
		}
		got, err = s.Referrers(ctx(t), "r", subject.Digest, "sig")
		ok(t, err, "Referrers sig")
		sameDescriptors(t, got, sigs)

		got, err = s.Referrers(ctx(t), "r", subject.Digest, "none")
		ok(t, err, "Referrers none")
		sameDescriptors(t, got, nil)
	}},
	{"ReferrersOfMissingSubject", func(t *testing.T, s storage.Store) {
		ghost := dg("pushed later")
		r := referrer("r", "sig", ghost, "sig")
		put(t, s, r)
		got, err := s.Referrers(ctx(t), "r", ghost, "")
		ok(t, err, "Referrers")
		if len(got) != 1 || digest.Digest(got[0].Digest) != r.Digest {
			t.Fatalf("Referrers of an absent subject = %+v, want %s", got, r.Digest)
		}
		got, err = s.Referrers(ctx(t), "r", dg("nothing refers to this"), "")
		ok(t, err, "Referrers with none")
		if len(got) != 0 {
			t.Fatalf("Referrers = %+v, want none", got)
		}
	}},
	{"DeleteReferrer", func(t *testing.T, s storage.Store) {
		subject := manifest("r", "subject")
		put(t, s, subject)
		r1, r2 := referrer("r", "r1", subject.Digest, "sig"), referrer("r", "r2", subject.Digest, "sig")
		put(t, s, r1, "sha256-x.sig")
		put(t, s, r2)
		ok(t, s.DeleteManifest(ctx(t), "r", r1.Digest, storage.DeleteOptions{}), "DeleteManifest")
		got, err := s.Referrers(ctx(t), "r", subject.Digest, "")
		ok(t, err, "Referrers")
		if len(got) != 1 || digest.Digest(got[0].Digest) != r2.Digest {
			t.Fatalf("Referrers after deleting r1 = %+v, want only %s", got, r2.Digest)
		}
		// Deleting the subject leaves its referrers listed (OCI allows either;
		// GC decides), but must not fail.
		ok(t, s.DeleteManifest(ctx(t), "r", subject.Digest, storage.DeleteOptions{}), "delete subject")
	}},
}

func sameDescriptors(t *testing.T, got, want []oci.Descriptor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d descriptors, want %d:\n got  %+v\n want %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.MediaType != w.MediaType || g.Digest != w.Digest || g.Size != w.Size ||
			g.ArtifactType != w.ArtifactType || !maps.Equal(g.Annotations, w.Annotations) {
			t.Fatalf("descriptor %d = %+v, want %+v", i, g, w)
		}
	}
}
