package bundle

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/packreg/packreg/storage"
)

// TestOneByteChangedAnywhere: a bundle with any one byte changed, in a
// header, a blob, index.json, the padding between entries or the end
// blocks, is refused whole. Every byte of a small signed bundle is tried.
func TestOneByteChangedAnywhere(t *testing.T) {
	good, sg := smallBundle(t)
	b := newSite(t)
	b.trust(sg, "bundles")
	ctx := context.Background()
	read := func(archive []byte) error {
		_, err := readBundle(ctx, bytes.NewReader(archive), newSpool(&memFile{}), readOptions{Limits: DefaultLimits,
			admit: func(h *Header) error {
				_, err := verifyHeader(ctx, b.keys, h)
				return err
			}})
		return err
	}
	if err := read(good); err != nil {
		t.Fatalf("the bundle itself: %v", err)
	}
	bad := bytes.Clone(good)
	for i := range bad {
		bad[i] ^= 0x01
		if err := read(bad); err == nil {
			t.Fatalf("byte %d of %d changed (%q → %q): accepted", i, len(bad), good[i], bad[i])
		}
		bad[i] = good[i]
	}
	t.Logf("%d one-byte changes, all refused", len(good))
	// And through the service: nothing visible, the record says why.
	bad[len(bad)/2] ^= 0x80
	if _, err := b.importBundle(bad, ImportOptions{}); err == nil {
		t.Fatal("a changed bundle imported")
	}
	if len(b.repos()) != 0 {
		t.Fatalf("a changed bundle published %v", b.repos())
	}
}

// TestSignatures: an unsigned bundle, or one signed by a key trusted for
// signatures only, or by an unknown key, is refused unless the import
// allows it, and the audit trail says when it did.
func TestSignatures(t *testing.T) {
	sg := newTestSigner(t)
	signed := newSite(t, WithSigner(sg))
	signed.pack("acme/rules", "1.0.0", 10)
	_, signedTar := signed.export(ExportRequest{})
	unsigned := newSite(t)
	unsigned.pack("acme/rules", "1.0.0", 10)
	_, unsignedTar := unsigned.export(ExportRequest{})

	for _, c := range []struct {
		name  string
		tar   []byte
		trust []string // usage of sg on the importing site; nil: not added
	}{
		{"unsigned", unsignedTar, []string{"bundles"}},
		{"signed by a key trusted for signatures only", signedTar, []string{"signatures"}},
		{"signed by an unknown key", signedTar, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newSite(t)
			if c.trust != nil {
				b.trust(sg, c.trust...)
			}
			_, err := b.importBundle(c.tar, ImportOptions{})
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "--allow-unsigned") {
				t.Fatalf("got %v, want it refused as untrusted", err)
			}
			if len(b.repos()) != 0 {
				t.Fatalf("published %v", b.repos())
			}
			rep := b.mustImport(c.tar, ImportOptions{AllowUnsigned: true})
			if rep.State != storage.ImportSucceeded || !rep.Bundle.Unsigned || rep.Bundle.SignatureProblem == "" {
				t.Fatalf("allowed: %+v", rep.Bundle)
			}
			recs := b.audits(ActionImport)
			if len(recs) != 1 || recs[0].Details["allowUnsigned"] != "true" {
				t.Fatalf("the trail does not say the import allowed it: %+v", recs)
			}
		})
	}
}
