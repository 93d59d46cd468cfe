package attest_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

const predProvenance = "https://slsa.dev/provenance/v1"

// TestVerification is the table of what must and must not verify. Every
// row pushes a fresh version in its own repository, signs it its way, and
// checks the one-word verdict and the findings. The negative rows are the
// classic false positives: none of them may ever read "verified".
func TestVerification(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{
		{Repositories: []string{"needs-prov/*"}, RequiredAttestations: []string{predProvenance}},
	}})
	trusted := newSigner(t, "ecdsa-p256")
	stranger := newSigner(t, "ecdsa-p256")
	e.addKey(trusted)
	keyed := map[string]*signer{}
	for _, k := range []string{"rsa-2048", "rsa-3072-pss", "rsa-4096", "ecdsa-p384", "ed25519ph", "ed25519"} {
		keyed[k] = newSigner(t, k)
		e.addKey(keyed[k])
	}
	other := digest.FromBytes(digest.SHA256, []byte("some other manifest"))

	cases := []struct {
		name string
		repo string
		sign func(e *env, repo string, d digest.Digest)
		want string   // verification word
		have []string // current findings: "kind status key-prefix"
	}{
		{"unsigned", "t/unsigned", func(*env, string, digest.Digest) {}, attest.Unsigned, nil},
		{"tag schema, trusted key", "t/tag", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Verified, []string{"signature verified " + trusted.id[:8]}},
		{"oci-1-1 referrer, trusted key", "t/oci11", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signOCI11(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Verified, []string{"signature verified " + trusted.id[:8]}},
		{"bundle DSSE signature, trusted key", "t/bundle", func(e *env, r string, d digest.Digest) {
			env := envelope(trusted, oci.PayloadTypeInToto, statement(attest.PredicateCosignSign, d), "")
			e.bundle(r, d, dsseContent(env), trusted.hint())
		}, attest.Verified, []string{"signature verified " + trusted.id[:8]}},
		{"bundle message signature, trusted key", "t/msg", func(e *env, r string, d digest.Digest) {
			m, _ := e.reg.Manifest(context.Background(), r, d.String())
			e.bundle(r, d, messageContent(trusted, m.Payload), trusted.hint())
		}, attest.Verified, []string{"signature verified " + trusted.id[:8]}},
		{"untrusted key", "t/stranger", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, stranger.sign(p)))
		}, attest.Untrusted, []string{"signature unverifiable "}},
		{"bundle naming an unknown key", "t/stranger-bundle", func(e *env, r string, d digest.Digest) {
			env := envelope(stranger, oci.PayloadTypeInToto, statement(attest.PredicateCosignSign, d), "")
			e.bundle(r, d, dsseContent(env), stranger.hint())
		}, attest.Untrusted, []string{"signature unverifiable "}},
		{"tampered payload (signature over the original)", "t/tampered", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			sig := trusted.sign(p)
			altered := []byte(strings.Replace(string(p), `"optional":null`, `"optional":{"approved":"yes"}`, 1))
			e.signTag(r, d, e.sigLayer(r, altered, sig))
		}, attest.Untrusted, []string{"signature unverifiable "}},
		{"payload about another digest", "t/other-digest", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, other)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Invalid, []string{"signature failed " + trusted.id[:8]}},
		{"referrer whose payload is about another digest", "t/other-digest-oci", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, other)
			e.signOCI11(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Invalid, []string{"signature failed " + trusted.id[:8]}},
		{"bundle that its named key does not verify", "t/bad-bundle", func(e *env, r string, d digest.Digest) {
			env := envelope(stranger, oci.PayloadTypeInToto, statement(attest.PredicateCosignSign, d), "")
			e.bundle(r, d, dsseContent(env), trusted.hint())
		}, attest.Invalid, []string{"signature failed " + trusted.id[:8]}},
		{"bundle statement about another digest", "t/bundle-other", func(e *env, r string, d digest.Digest) {
			env := envelope(trusted, oci.PayloadTypeInToto, statement(attest.PredicateCosignSign, other), "")
			e.bundle(r, d, dsseContent(env), trusted.hint())
		}, attest.Invalid, []string{"signature failed " + trusted.id[:8]}},
		{"bundle message digest of another manifest", "t/msg-other", func(e *env, r string, d digest.Digest) {
			e.bundle(r, d, messageContent(trusted, []byte("another manifest")), trusted.hint())
		}, attest.Invalid, []string{"signature failed "}},
		{"signature without its annotation", "t/no-annotation", func(e *env, r string, d digest.Digest) {
			e.signTag(r, d, e.layer(r, oci.MediaTypeCosignSimpleSigning, simplePayload(r, d), nil))
		}, attest.Invalid, []string{"signature failed "}},
		{"malformed payload", "t/malformed", func(e *env, r string, d digest.Digest) {
			p := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + string(d) + `"},"type":"cosign container image signature"},"critical":{}}`)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Invalid, []string{"signature failed "}},
		{"attestation about another digest", "t/att-other", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
			e.attestTag(r, d, predProvenance, envelope(trusted, oci.PayloadTypeInToto, statement(predProvenance, other), ""))
		}, attest.Invalid, []string{"signature verified " + trusted.id[:8], "attestation failed " + trusted.id[:8]}},
		{"DSSE signature over the payload, not the PAE", "t/att-nopae", func(e *env, r string, d digest.Digest) {
			st := statement(predProvenance, d)
			bad := []byte(fmt.Sprintf(`{"payloadType":%q,"payload":%q,"signatures":[{"sig":%q}]}`,
				oci.PayloadTypeInToto, base64.StdEncoding.EncodeToString(st), base64.StdEncoding.EncodeToString(trusted.sign(st))))
			e.attestTag(r, d, predProvenance, bad)
		}, attest.Unsigned, []string{"attestation unverifiable "}},
		{"required attestation missing", "needs-prov/missing", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
		}, attest.Unsigned, []string{"signature verified " + trusted.id[:8], "attestation missing "}},
		{"required attestation by an untrusted key", "needs-prov/untrusted", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
			e.attestTag(r, d, predProvenance, envelope(stranger, oci.PayloadTypeInToto, statement(predProvenance, d), ""))
		}, attest.Unsigned, []string{"signature verified " + trusted.id[:8], "attestation unverifiable ", "attestation missing "}},
		{"required attestation of another type", "needs-prov/other-type", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
			e.attestTag(r, d, "https://spdx.dev/Document", envelope(trusted, oci.PayloadTypeInToto, statement("https://spdx.dev/Document", d), ""))
		}, attest.Unsigned, []string{"signature verified " + trusted.id[:8], "attestation verified " + trusted.id[:8], "attestation missing "}},
		{"required attestation present", "needs-prov/ok", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
			e.attestTag(r, d, predProvenance, envelope(trusted, oci.PayloadTypeInToto, statement(predProvenance, d), ""))
		}, attest.Verified, []string{"signature verified " + trusted.id[:8], "attestation verified " + trusted.id[:8]}},
		{"required attestation in a bundle", "needs-prov/bundle", func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, trusted.sign(p)))
			e.bundle(r, d, dsseContent(envelope(trusted, oci.PayloadTypeInToto, statement(predProvenance, d), "")), trusted.hint())
		}, attest.Verified, []string{"signature verified " + trusted.id[:8], "attestation verified " + trusted.id[:8]}},
	}
	for name, s := range keyed {
		cases = append(cases, struct {
			name string
			repo string
			sign func(e *env, repo string, d digest.Digest)
			want string
			have []string
		}{"key " + name, "keys/" + name, func(e *env, r string, d digest.Digest) {
			p := simplePayload(r, d)
			e.signTag(r, d, e.sigLayer(r, p, s.sign(p)))
			e.attestTag(r, d, predProvenance, envelope(s, oci.PayloadTypeInToto, statement(predProvenance, d), ""))
		}, attest.Verified, []string{"signature verified " + s.id[:8], "attestation verified " + s.id[:8]}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			d := e.pushPack(c.repo, "1.0.0")
			c.sign(e, c.repo, d)
			rep := e.report(c.repo, "1.0.0")
			got := statuses(rep)
			if rep.Verification != c.want || strings.Join(got, "|") != strings.Join(c.have, "|") {
				t.Fatalf("verification %q with %q, want %q with %q\n%+v", rep.Verification, got, c.want, c.have, rep)
			}
			if c.want != attest.Verified && rep.Policy.Satisfied && rep.Policy.Matched {
				t.Fatalf("policy satisfied by a %s version", rep.Verification)
			}
		})
	}
}
