package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// FuzzRekorBundle: cosign's Rekor bundle annotation is read strictly, and
// what is accepted carries its body and signed entry timestamp.
func FuzzRekorBundle(f *testing.F) {
	f.Add(`{"SignedEntryTimestamp":"MEUCIQ==","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoiaGFzaGVkcmVrb3JkIiwic3BlYyI6e319",` +
		`"integratedTime":1700000000,"logIndex":1,"logID":"` + hex.EncodeToString(make([]byte, 32)) + `"}}`)
	f.Add(`{"SignedEntryTimestamp":"","Payload":{}}`)
	f.Add(`{"Payload":{"body":"e30=","body":"e30="}}`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := rekorEntry(s)
		if err != nil {
			return
		}
		if !e.HasInclusionPromise() || len(e.TransparencyLogEntry().CanonicalizedBody) == 0 {
			t.Fatalf("accepted %q without a promise or a body", s)
		}
	})
}

// FuzzTrustedRoot: a trusted root is accepted only with a Fulcio CA, and
// its digest is the SHA-256 of the bytes given.
func FuzzTrustedRoot(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","mediaType":"x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, d, err := ParseTrustedRoot(b)
		if err != nil {
			return
		}
		sum := sha256.Sum256(b)
		if d != hex.EncodeToString(sum[:]) || len(tr.FulcioCertificateAuthorities()) == 0 {
			t.Fatalf("accepted %q: digest %s, %d CAs", b, d, len(tr.FulcioCertificateAuthorities()))
		}
	})
}
