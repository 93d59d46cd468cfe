package attest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Real documents written by cosign v2.6.5 against a packreg server (see
// CLIENTS.md): the parsers must accept them byte for byte.
const (
	cosignSubject = "sha256:3887eaab51c2900f03ccd39adc912b16ebad657206ab379d739db5069212e438"
	cosignPayload = `{"critical":{"identity":{"docker-reference":"127.0.0.1:5391/packs/tag"},"image":{"docker-manifest-digest":"sha256:3887eaab51c2900f03ccd39adc912b16ebad657206ab379d739db5069212e438"},"type":"cosign container image signature"},"optional":null}`
	cosignAttEnv  = `{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjAuMSIsInByZWRpY2F0ZVR5cGUiOiJodHRwczovL3BhY2tyZWcuZGV2L2F0dGVzdGF0aW9ucy9wYWNrL3YxIiwic3ViamVjdCI6W3sibmFtZSI6IjEyNy4wLjAuMTo1MzkxL3BhY2tzL3RhZyIsImRpZ2VzdCI6eyJzaGEyNTYiOiIzODg3ZWFhYjUxYzI5MDBmMDNjY2QzOWFkYzkxMmIxNmViYWQ2NTcyMDZhYjM3OWQ3MzlkYjUwNjkyMTJlNDM4In19XSwicHJlZGljYXRlIjp7ImJ1aWxkZXIiOiJ4In19","signatures":[{"keyid":"","sig":"MEQCIEy3HUPFBNMUdfQmhu+mh6dnpqwEl6rI/aKzuFujUJQWAiBpZhseniN2DOcnjXgng3NcS3bIl9NfEWF8AXN4tKBurA=="}]}`
	cosignBundle  = `{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {"publicKey": {"hint": "TPABO2wzdpO0w0Nj/fpivhr1yBN1Vsxpj8HtVziPg0Q="}},
  "dsseEnvelope": {
    "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCAic3ViamVjdCI6W3siZGlnZXN0Ijp7InNoYTI1NiI6IjM4ODdlYWFiNTFjMjkwMGYwM2NjZDM5YWRjOTEyYjE2ZWJhZDY1NzIwNmFiMzc5ZDczOWRiNTA2OTIxMmU0MzgifX1dLCAicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIn0=",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [{"sig": "MEYCIQCn3FKFVT9djF7oDxfiXwm75s36p+FouEJ1jHMzSCoTgQIhAN6eXCnxk7ng1ocPADBpTCGQhSIb+pa1GWp4R5l5/yXw"}]
  }
}`
	cosignSigManifest    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:7a1026fed23522593f0930dec8a4d3a49405148921d43eeefa082b4d85473db0"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":240,"digest":"sha256:a0a7f951849bb5a72dc629b3c9590917b9db349f180e37d493cc4d4f30b07e75","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQDyeNa+fmS77Nc4X2tvz/uOsiEoES64+Q+haBE7VXKnogIgBZSCpGptdr4vNy9p1CiemGF6a4nsJ9tzMvAXjLG0i4M="}}]}`
	cosignOCI11Manifest  = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","size":233,"digest":"sha256:70a0510d65d5b1ed1c7758e458057a194e3b4987174ffce29c3f09957373258b"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":240,"digest":"sha256:31da36db04f97ec9c4dea21c773449ebdc875ef1fc8e44c6bf5d7f08d493d8b8","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQCbOb84IUYpQ3vZcBsiV1kluMzMUHA/XNFsp0NCf8JjIQIgDFkQiHfAT6k5pDM2e4uHMjaVHjhp4DrTW0LQ51dUoQM="}}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":585,"digest":"sha256:3887eaab51c2900f03ccd39adc912b16ebad657206ab379d739db5069212e438"},"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json"}`
	cosignBundleManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":623,"digest":"sha256:4e106856a680eaa9f561a91ad8ca60ef5900299997e55002a5707ce034501f13"}],"annotations":{"dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1","org.opencontainers.image.created":"2026-11-28T15:00:13Z"},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":585,"digest":"sha256:3887eaab51c2900f03ccd39adc912b16ebad657206ab379d739db5069212e438"},"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`
)

func TestParseSimpleSigning(t *testing.T) {
	_, d, err := ParseSimpleSigning([]byte(cosignPayload))
	if err != nil || d != cosignSubject {
		t.Fatalf("cosign payload: %v, %s", err, d)
	}
	bad := map[string]string{
		"empty":            ``,
		"not an object":    `[]`,
		"null":             `null`,
		"trailing data":    cosignPayload + `{}`,
		"trailing garbage": cosignPayload + `x`,
		"duplicate digest": `{"critical":{"identity":{},"image":{"docker-manifest-digest":"` + cosignSubject +
			`","docker-manifest-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		"duplicate critical": `{"critical":{"type":"x"},"critical":{"image":{"docker-manifest-digest":"` + cosignSubject + `"},"type":"cosign container image signature"}}`,
		// Go's decoder matches struct fields case-insensitively, so these
		// are duplicates to it: the last one would win.
		"case-variant critical": `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject + `"},"type":"cosign container image signature"},` +
			`"Critical":{"image":{"docker-manifest-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		"case-variant digest": `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject +
			`","DOCKER-MANIFEST-DIGEST":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		// U+212A KELVIN SIGN folds to k and U+017F LONG S to s, as in Go's decoder.
		"kelvin digest": `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject +
			`","doc` + "\u212a" + `er-manifest-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		"long-s digest": `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject +
			`","docker-manife` + "\u017f" + `t-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		"escaped kelvin digest": `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject +
			`","doc\u212Aer-manifest-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`,
		"wrong type":        strings.Replace(cosignPayload, "cosign container image signature", "something else", 1),
		"no type":           `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject + `"}}}`,
		"uppercase digest":  strings.Replace(cosignPayload, "3887eaab", "3887EAAB", 1),
		"short digest":      strings.Replace(cosignPayload, "3887eaab", "3887", 1),
		"md5 digest":        strings.Replace(cosignPayload, "sha256:", "md5:", 1),
		"digest not string": `{"critical":{"image":{"docker-manifest-digest":42},"type":"cosign container image signature"}}`,
		"deep nesting":      `{"optional":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`,
	}
	for name, in := range bad {
		if _, _, err := ParseSimpleSigning([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := ParseSimpleSigning(make([]byte, maxDocument+1)); err == nil {
		t.Error("oversized payload accepted")
	}
}

// The case-variant rows above matter because Go's decoder, which reads
// the document after the duplicate check, takes them as one field and
// keeps the last: here the payload would be about another digest.
func TestFoldedKeysAreOneFieldToGo(t *testing.T) {
	zero := "sha256:" + strings.Repeat("0", 64)
	for _, key := range []string{"DOCKER-MANIFEST-DIGEST", "doc\u212aer-manifest-digest", "docker-manife\u017ft-digest"} {
		doc := `{"critical":{"image":{"docker-manifest-digest":"` + cosignSubject + `","` + key + `":"` + zero + `"}}}`
		var p SimpleSigning
		if err := json.Unmarshal([]byte(doc), &p); err != nil || p.Critical.Image.DockerManifestDigest != zero {
			t.Fatalf("%s: Go decoded %q (%v); the duplicate check no longer needs folding?", key, p.Critical.Image.DockerManifestDigest, err)
		}
		if err := checkJSON([]byte(doc)); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("%s: checkJSON = %v", key, err)
		}
	}
	// Keys that differ by more than case stay distinct.
	if err := checkJSON([]byte(`{"a-b":1,"a_b":2,"ab":3}`)); err != nil {
		t.Fatal(err)
	}
}

func TestParseEnvelopeAndStatement(t *testing.T) {
	env, err := ParseEnvelope([]byte(cosignAttEnv))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(env.PayloadType, env.PayloadBytes())
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != "https://packreg.dev/attestations/pack/v1" || !st.About(cosignSubject) {
		t.Fatalf("statement: %+v", st)
	}
	if st.About(digest.Digest("sha256:" + strings.Repeat("0", 64))) {
		t.Fatal("statement About another digest")
	}
	if want := fmt.Sprintf("DSSEv1 28 application/vnd.in-toto+json %d {", len(env.PayloadBytes())); !strings.HasPrefix(string(env.PAE()), want) {
		t.Fatalf("PAE: %q", env.PAE()[:60])
	}
	bad := map[string]string{
		"no signatures":     `{"payloadType":"x","payload":"e30=","signatures":[]}`,
		"no payloadType":    `{"payload":"e30=","signatures":[{"sig":"AA=="}]}`,
		"bad base64":        `{"payloadType":"x","payload":"e30","signatures":[{"sig":"!!"}]}`,
		"empty payload":     `{"payloadType":"x","payload":"","signatures":[{"sig":"AA=="}]}`,
		"newline base64":    `{"payloadType":"x","payload":"e3\n0=","signatures":[{"sig":"AA=="}]}`,
		"dup signatures":    `{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AA=="}],"signatures":[]}`,
		"sig not string":    `{"payloadType":"x","payload":"e30=","signatures":[{"sig":1}]}`,
		"too many sigs":     `{"payloadType":"x","payload":"e30=","signatures":[` + strings.Repeat(`{"sig":"AA=="},`, maxEnvelopeSigs) + `{"sig":"AA=="}]}`,
		"trailing object":   cosignAttEnv + `{}`,
		"case-variant sigs": `{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AA=="}],"Signatures":[{"sig":"AQ=="}]}`,
	}
	for name, in := range bad {
		if _, err := ParseEnvelope([]byte(in)); err == nil {
			t.Errorf("envelope %s: accepted", name)
		}
	}
	b64 := func(s string) []byte { return []byte(s) }
	badSt := map[string][]byte{
		"wrong _type":    b64(`{"_type":"https://example.com/x","predicateType":"p","subject":[{"digest":{"sha256":"aa"}}]}`),
		"no subject":     b64(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[]}`),
		"no predicate":   b64(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}]}`),
		"dup predicate":  b64(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"a","predicateType":"b","subject":[{"digest":{"sha256":"aa"}}]}`),
		"dup digest":     b64(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"a","subject":[{"digest":{"sha256":"aa","sha256":"bb"}}]}`),
		"case predicate": b64(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"a","PREDICATETYPE":"b","subject":[{"digest":{"sha256":"aa"}}]}`),
	}
	for name, in := range badSt {
		if _, err := ParseStatement(oci.PayloadTypeInToto, in); err == nil {
			t.Errorf("statement %s: accepted", name)
		}
	}
	if _, err := ParseStatement("text/plain", env.PayloadBytes()); err == nil {
		t.Error("statement with a foreign payloadType accepted")
	}
	// A sha512 entry says nothing about a sha256 digest.
	st, err = ParseStatement(oci.PayloadTypeInToto, []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"digest":{"sha512":"`+digest.Digest(cosignSubject).Hex()+`"}}]}`))
	if err != nil || st.About(cosignSubject) {
		t.Fatalf("sha512 subject matched a sha256 digest (%v)", err)
	}
}

func TestParseBundle(t *testing.T) {
	bu, err := ParseBundle([]byte(cosignBundle))
	if err != nil {
		t.Fatal(err)
	}
	if bu.KeyHint() != "4cf0013b6c337693b4c34363fdfa62be1af5c8137556cc698fc1ed57388f8344" || bu.DSSEEnvelope == nil || bu.Keyless() {
		t.Fatalf("bundle: hint %q", bu.KeyHint())
	}
	msg := `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},
		"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"},"signature":"AA=="}}`
	bu, err = ParseBundle([]byte(msg))
	if err != nil || bu.KeyHint() != "" || len(bu.messageDigest) != 32 {
		t.Fatalf("message bundle: %v, hint %q", err, bu.KeyHint())
	}
	bad := map[string]string{
		"both":          strings.Replace(msg, `"messageSignature"`, `"dsseEnvelope":{"payloadType":"x","payload":"e30=","signatures":[{"sig":"AA=="}]},"messageSignature"`, 1),
		"neither":       `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`,
		"media type":    strings.Replace(cosignBundle, "v0.3", "v9", 1),
		"sha512 digest": strings.Replace(msg, "SHA2_256", "SHA2_512", 1),
		"short digest":  strings.Replace(msg, base64.StdEncoding.EncodeToString(make([]byte, 32)), "AAAA", 1),
		"bad envelope":  strings.Replace(cosignBundle, `"signatures": [`, `"signatures": [], "x": [`, 1),
		"dup envelope":  strings.Replace(cosignBundle, `"dsseEnvelope"`, `"dsseEnvelope": {}, "dsseEnvelope"`, 1),
		"array":         `[]`,
	}
	for name, in := range bad {
		if _, err := ParseBundle([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	keyless := `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="}},
		"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"},"signature":"AA=="}}`
	if bu, err := ParseBundle([]byte(keyless)); err != nil || !bu.Keyless() {
		t.Fatalf("keyless bundle: %v", err)
	}
}

func TestParseSignatureManifest(t *testing.T) {
	cases := []struct {
		name, manifest, format string
		subject                digest.Digest
		items                  int
	}{
		{"tag schema", cosignSigManifest, FormatCosignTag, "", 1},
		{"oci-1-1", cosignOCI11Manifest, FormatCosignOCI11, cosignSubject, 1},
		{"bundle", cosignBundleManifest, FormatBundle, cosignSubject, 1},
	}
	for _, c := range cases {
		sm, err := ParseSignatureManifest([]byte(c.manifest))
		if err != nil || sm == nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sm.Format != c.format || sm.Subject != c.subject || len(sm.Items) != c.items || sm.Layers != c.items {
			t.Errorf("%s: %+v", c.name, sm)
		}
		if c.format != FormatBundle && len(sm.Items[0].Signature) == 0 {
			t.Errorf("%s: no signature decoded", c.name)
		}
	}
	// Not a signature manifest: an oras artifact.
	sm, err := ParseSignatureManifest([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json"},"layers":[{"mediaType":"application/json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2}]}`))
	if err != nil || sm != nil {
		t.Fatalf("SBOM manifest: %+v, %v", sm, err)
	}
	noSig := strings.Replace(cosignSigManifest, `"dev.cosignproject.cosign/signature"`, `"other"`, 1)
	sm, err = ParseSignatureManifest([]byte(noSig))
	if err != nil || sm.Items[0].SignatureErr == "" {
		t.Fatalf("layer without signature annotation: %+v, %v", sm, err)
	}
	bad := map[string]string{
		"not JSON":       `{`,
		"bad subject":    strings.Replace(cosignOCI11Manifest, `"digest":"sha256:3887`, `"digest":"sha256:XX87`, 1),
		"bad layer":      strings.Replace(cosignSigManifest, `"sha256:a0a7`, `"sha256:a0`, 1),
		"negative size":  strings.Replace(cosignSigManifest, `"size":240`, `"size":-1`, 1),
		"too many items": `{"layers":[` + strings.Repeat(`{"mediaType":"`+oci.MediaTypeDSSE+`","digest":"sha256:`+strings.Repeat("a", 64)+`","size":1},`, maxItems) + `{"mediaType":"` + oci.MediaTypeDSSE + `","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}]}`,
	}
	for name, in := range bad {
		if _, err := ParseSignatureManifest([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTagSubject(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for tag, want := range map[string]string{
		"sha256-" + h + ".sig": "sha256:" + h + " signature",
		"sha256-" + h + ".att": "sha256:" + h + " attestation",
		// cosign's sha512-<128 hex>.sig is 139 characters: no registry
		// holds such a tag, and oci.ParseCosignTag's one rule says so.
		"sha512-" + h + h + ".sig":              "",
		"sha256-" + h + ".sbom":                 "",
		"sha256-" + h:                           "",
		"sha256-" + strings.ToUpper(h) + ".sig": "",
		"sha256-" + h[:10] + ".sig":             "",
		"md5-" + h + ".sig":                     "",
		"v1.0.0":                                "",
		".sig":                                  "",
		"sha256-" + h + ".sig.sig":              "",
	} {
		d, kind, ok := TagSubject(tag)
		got := ""
		if ok {
			got = string(d) + " " + kind
		}
		if got != want {
			t.Errorf("TagSubject(%q) = %q, want %q", tag, got, want)
		}
		if ok && SchemaTag(d, kind) != tag {
			t.Errorf("SchemaTag does not invert TagSubject for %q", tag)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	for in, want := range map[string]string{"aGk=": "hi", "aGk": "hi", "-_8": "\xfb\xff", "-_8=": "\xfb\xff", "+/8=": "\xfb\xff"} {
		got, err := decodeBase64(in)
		if err != nil || string(got) != want {
			t.Errorf("decodeBase64(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "a", "aGk= ", "aG\nk=", "aGl=", "-/8=", "!!!!"} {
		if _, err := decodeBase64(in); err == nil {
			t.Errorf("decodeBase64(%q) accepted", in)
		}
	}
}

// TestCosignDocumentsVerify checks the real cosign signatures above with
// the real key: the exact bytes cosign signs are the bytes attest checks.
func TestCosignDocumentsVerify(t *testing.T) {
	pk, err := ParsePublicKey(testPEM)
	if err != nil {
		t.Fatal(err)
	}
	if pk.ID != "4cf0013b6c337693b4c34363fdfa62be1af5c8137556cc698fc1ed57388f8344" || pk.Algorithm != "ecdsa-p256" {
		t.Fatalf("key %s %s", pk.ID, pk.Algorithm)
	}
	v, err := verifiersFor(pk.Key)
	if err != nil {
		t.Fatal(err)
	}
	rk := &ringKey{key: &storage.Key{ID: pk.ID}, verifiers: v}
	r := &ring{keys: []*ringKey{rk}, byID: map[string]*ringKey{pk.ID: rk}}

	sm, _ := ParseSignatureManifest([]byte(cosignSigManifest))
	if m := r.check(sm.Items[0].Signature, []byte(cosignPayload), ""); !m.ok || m.keyID != pk.ID || m.alg != "ecdsa-sha256" {
		t.Fatalf("tag-schema signature: %+v", m)
	}
	if m := r.check(sm.Items[0].Signature, []byte(strings.Replace(cosignPayload, "null", "{}", 1)), ""); m.ok {
		t.Fatal("signature verified over an altered payload")
	}
	env, _ := ParseEnvelope([]byte(cosignAttEnv))
	if m := r.check(env.sigs[0], env.PAE(), ""); !m.ok {
		t.Fatal(".att envelope does not verify")
	}
	if m := r.check(env.sigs[0], env.PayloadBytes(), ""); m.ok {
		t.Fatal("DSSE signature verified over the payload instead of the PAE")
	}
	bu, _ := ParseBundle([]byte(cosignBundle))
	if m := r.check(bu.DSSEEnvelope.sigs[0], bu.DSSEEnvelope.PAE(), bu.KeyHint()); !m.ok || !m.claimed {
		t.Fatalf("bundle envelope: %+v", m)
	}
}
