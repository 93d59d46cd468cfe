package attest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Native fuzz targets for every parser of outside input. Each checks more
// than "no panic": what a parser accepts must be what encoding/json (the
// parser cosign uses) reads the same way.

func FuzzSimpleSigning(f *testing.F) {
	f.Add([]byte(cosignPayload))
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:` + strings.Repeat("0", 64) + `"},"type":"cosign container image signature"}}`))
	f.Add([]byte(`{"critical":{"critical":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, d, err := ParseSimpleSigning(b)
		if err != nil {
			return
		}
		if _, err := digest.Parse(string(d)); err != nil || p.Critical.Type != SimpleSigningType {
			t.Fatalf("accepted %q with digest %q type %q", b, d, p.Critical.Type)
		}
		var plain SimpleSigning
		if json.Unmarshal(b, &plain) != nil || plain.Critical.Image.DockerManifestDigest != string(d) {
			t.Fatalf("encoding/json reads %q differently", b)
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(cosignAttEnv))
	f.Add([]byte(`{"payloadType":"x","payload":"e30","signatures":[{"keyid":"k","sig":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		if len(env.sigs) != len(env.Signatures) || len(env.sigs) == 0 || env.PayloadType == "" {
			t.Fatalf("accepted %q: %d sigs", b, len(env.sigs))
		}
		pae := env.PAE()
		if !strings.HasPrefix(string(pae), "DSSEv1 ") || !strings.HasSuffix(string(pae), string(env.PayloadBytes())) {
			t.Fatalf("PAE of %q is %q", b, pae)
		}
		if st, err := ParseStatement(env.PayloadType, env.PayloadBytes()); err == nil && (st.PredicateType == "" || len(st.Subject) == 0) {
			t.Fatalf("statement accepted without predicate or subject: %q", env.PayloadBytes())
		}
	})
}

func FuzzStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatement(oci.PayloadTypeInToto, b)
		if err != nil {
			return
		}
		var plain Statement
		if json.Unmarshal(b, &plain) != nil || plain.PredicateType != st.PredicateType || len(plain.Subject) != len(st.Subject) {
			t.Fatalf("encoding/json reads %q differently", b)
		}
	})
}

func FuzzBundle(f *testing.F) {
	f.Add([]byte(cosignBundle))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"signature":"AA=="}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := ParseBundle(b)
		if err != nil {
			return
		}
		if (bu.MessageSignature == nil) == (bu.DSSEEnvelope == nil) {
			t.Fatalf("accepted %q with both or neither content", b)
		}
		if bu.MessageSignature != nil && len(bu.messageDigest) != 32 {
			t.Fatalf("accepted %q with a %d-byte digest", b, len(bu.messageDigest))
		}
		if h := bu.KeyHint(); h != "" && len(h) != 64 {
			t.Fatalf("key hint %q", h)
		}
	})
}

func FuzzSignatureManifest(f *testing.F) {
	for _, s := range []string{cosignSigManifest, cosignOCI11Manifest, cosignBundleManifest} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sm, err := ParseSignatureManifest(b)
		if err != nil || sm == nil {
			return
		}
		if len(sm.Items) == 0 || len(sm.Items) > maxItems || len(sm.Items) > sm.Layers || sm.Format == "" {
			t.Fatalf("accepted %q: %d items of %d layers, format %q", b, len(sm.Items), sm.Layers, sm.Format)
		}
		for _, it := range sm.Items {
			if _, err := digest.Parse(string(it.Digest)); err != nil || it.Size < 0 {
				t.Fatalf("item %+v", it)
			}
			if it.MediaType == oci.MediaTypeCosignSimpleSigning && (len(it.Signature) == 0) == (it.SignatureErr == "") {
				t.Fatalf("simple-signing item with signature %q and error %q", it.Signature, it.SignatureErr)
			}
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(testPEM)
	f.Add("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		pk, err := ParsePublicKey(s)
		if err != nil {
			if strings.Contains(s, "PRIVATE") && strings.Contains(err.Error(), strings.TrimSpace(s)) {
				t.Fatal("error repeats a private key")
			}
			return
		}
		if len(pk.ID) != 64 || pk.Algorithm == "unknown" {
			t.Fatalf("key %+v", pk)
		}
		again, err := ParsePublicKey(pk.PEM)
		if err != nil || again.ID != pk.ID {
			t.Fatalf("canonical PEM does not parse back to the same key: %v", err)
		}
	})
}

// testPEM is cosign.pub of the key that made the cosign documents above.
const testPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEK2iBap61JNqJWMhQcZfuyTrE3opA
XX8ZeEQSJbNMq11XzBdk8NeZ/qim+6maKN5k16kdAb80FnTaLvmDcBvASw==
-----END PUBLIC KEY-----
`
