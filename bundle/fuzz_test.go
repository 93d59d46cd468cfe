package bundle

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"testing"

	"github.com/packreg/packreg/digest"
)

// FuzzReadBundle: the bundle reader over any bytes. Whatever it is given
// it ends, within its caps, with a refusal (a *Problem: the bundle's
// fault, named) or with a bundle that a key trusted here signed, which
// can only be the seed's: the signature covers the manifest, the
// manifest the document, the document every digest, so a changed byte
// that still reads is one that changes nothing signed. Everything staged
// is what its digest says.
func FuzzReadBundle(f *testing.F) {
	sg := newTestSigner(f)
	a := newSite(f, WithSigner(sg))
	p := a.pack("acme/rules", "1.0.0", 300)
	a.referrer("acme/rules", p, "application/vnd.example.sbom", `{"sbom":true}`)
	a.cosignSig("acme/rules", p, "sig")
	x, good := a.export(ExportRequest{})
	b := newSite(f)
	b.trust(sg, "bundles")

	f.Add(good)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	f.Add(gz.Bytes())
	f.Add(good[:len(good)/2])
	f.Add(good[:1024])
	files := entriesOf(f, good)
	f.Add(build(f, files)) // archive/tar's framing of the same files
	files[1], files[2] = files[2], files[1]
	f.Add(build(f, files))

	limits := Limits{MaxSize: 4 << 20, MaxEntries: 500}
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		sp := newSpool(&memFile{})
		st, err := readBundle(ctx, bytes.NewReader(in), sp, readOptions{Limits: limits, admit: func(h *Header) error {
			if _, err := verifyHeader(ctx, b.keys, h); err != nil {
				return problem(ErrUntrusted, "", h.Digest, "%v", err)
			}
			return nil
		}})
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("refused without saying what in the bundle is at fault: %v", err)
			}
			return
		}
		if st.hdr.Digest != x.Digest {
			t.Fatalf("read a bundle %s signed by the trusted key, but the key signed %s only", st.hdr.Digest, x.Digest)
		}
		for _, d := range sp.digests() {
			got, err := sp.bytes(d, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if digest.FromBytes(d.Algorithm(), got) != d {
				t.Fatalf("staged %s holds other bytes", d)
			}
		}
	})
}
