package mirror_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
)

// TestCopyCosignTags: the engine copies the tags cosign attaches things
// by (oci.ParseCosignTag: sha256-<hex>.sig, .att, .sbom of the version)
// and leaves look-alikes home: they are nobody's signature.
func TestCopyCosignTags(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	p := a.pack("acme/tags", "1.0.0", []byte("rules"))
	h := p.Digest.Encoded()
	for _, c := range []struct {
		tag    string
		copied bool
	}{
		{"sha256-" + h + ".sig", true},
		{"sha256-" + h + ".att", true},
		{"sha256-" + h + ".sbom", true},
		{"sha256-" + strings.ToUpper(h) + ".sig", false},
		{"sha256-" + h + ".foo", false},
		{"sha256-" + h[:63] + ".sig", false},
		{"xsha256-" + h + ".sig", false},
	} {
		a.manifest("acme/tags", c.tag, map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
			"config": a.blob("acme/tags", []byte("{}")), "layers": []desc{a.blob("acme/tags", []byte(c.tag))}})
		defer func() {
			if got := b.resolve("acme/tags", c.tag) != ""; got != c.copied {
				t.Errorf("tag %.24s...%s on the sink: %v, want %v", c.tag, c.tag[len(c.tag)-6:], got, c.copied)
			}
		}()
	}
	if _, err := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{}).Copy(ctx, mirror.Job{"acme/tags", "acme/tags", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
}

// TestCopySHA512Referrers: a sink without the referrers API gets the
// fallback index of a sha512 subject under sha512-<the first 64 hex
// digits>, the tag the distribution spec names (the whole digest makes a
// tag longer than any registry holds), and reads it back there.
func TestCopySHA512Referrers(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	b.Handler = noReferrersAPI
	cfg := a.blob("acme/long", []byte("{}"))
	cfg.MediaType = oci.MediaTypeEmptyJSON
	body, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
		"config": cfg, "layers": []desc{a.blob("acme/long", []byte("rules"))}})
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA512, body)
	if _, err := a.Reg.PushManifest(ctx, "acme/long", d.String(), oci.MediaTypeImageManifest, body); err != nil {
		t.Fatal(err)
	}
	sbom := a.referrer("acme/long", oci.NewDescriptor(oci.MediaTypeImageManifest, d, int64(len(body))), "application/vnd.example.sbom", []byte("{}"))
	// By digest: a PUT by tag would be stored under the sink's sha256.
	if _, err := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{}).Copy(ctx, mirror.Job{"acme/long", "acme/long", d.String()}); err != nil {
		t.Fatal(err)
	}
	idx, err := b.Reg.Manifest(ctx, "acme/long", "sha512-"+d.Hex()[:64])
	if err != nil {
		t.Fatalf("no fallback index on the sink: %v", err)
	}
	var doc oci.Index
	if err := json.Unmarshal(idx.Payload, &doc); err != nil || len(doc.Manifests) != 1 || doc.Manifests[0].Digest != sbom.Digest {
		t.Fatalf("fallback index: %s", idx.Payload)
	}
	refs, err := b.remote().Referrers(ctx, "acme/long", d)
	if err != nil || len(refs) != 1 || refs[0].Digest != sbom.Digest {
		t.Fatalf("referrers read back through the fallback tag: %+v, %v", refs, err)
	}
}
