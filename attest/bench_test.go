package attest_test

import (
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
)

// BenchmarkVerify is one signature checked as a push indexes it (read the
// manifest and layer, verify, store the record), key-based next to
// keyless: a cosign-tag signature by a trusted ECDSA P-256 key, the same
// layout signed keyless (certificate, Rekor signed entry timestamp and
// RFC 3161 timestamp checked against the trusted root), and a bundle v0.3
// whose Rekor entry also carries an inclusion proof and checkpoint. It
// prints verifications per second.
func BenchmarkVerify(b *testing.B) {
	sg := newSigstore(b)
	cfg := attest.Config{TrustedRoots: []attest.RootConfig{sg.rootFile("ci")},
		Policies: []attest.Policy{{Repositories: []string{"acme/**"}, Identities: []attest.Identity{releasePolicy()}}}}
	e := newEnvWorker(b, cfg, false)
	const repo = "acme/rules"
	k := newSigner(b, "ecdsa-p256")
	e.addKey(k)

	d := e.pushPack(repo, "1.0.0")
	p := simplePayload(repo, d)
	keyRef := e.signTag(repo, d, e.sigLayer(repo, p, k.sign(p)))
	d2 := e.pushPack(repo, "2.0.0")
	p2 := simplePayload(repo, d2)
	tagRef := e.signTag(repo, d2, e.keylessSigLayer(repo, p2, sg.sign(releaseWF, p2, how{})))
	d3 := e.pushPack(repo, "3.0.0")
	m := e.manifestBytes(repo, d3)
	s := sg.sign(releaseWF, m, how{proof: true})
	bundleRef := e.bundleReferrer(repo, d3, s.bundleJSON(b, s.messageSig(m)))

	for _, c := range []struct {
		name              string
		referrer, subject digest.Digest
		tagged            bool
	}{{"key", keyRef, d, true}, {"keyless-tag", tagRef, d2, true}, {"keyless-bundle", bundleRef, d3, false}} {
		b.Run(c.name, func(b *testing.B) {
			recs, err := e.svc.Index(b.Context(), repo, c.referrer, c.subject, c.tagged)
			if err != nil || len(recs) != 1 || recs[0].Status != "verified" {
				b.Fatalf("not verified: %v %+v", err, recs)
			}
			for b.Loop() {
				if _, err := e.svc.Index(b.Context(), repo, c.referrer, c.subject, c.tagged); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
	}
}
