package attest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// runPayload is what `cosign sign -a run=N` signs: each run's payload
// differs, so cosign appends its signature instead of finding a duplicate.
func runPayload(repo string, d digest.Digest, run int) []byte {
	return []byte(strings.Replace(string(simplePayload(repo, d)), `"optional":null`, fmt.Sprintf(`"optional":{"run":"%d"}`, run), 1))
}

// resign is n runs of `cosign sign` (and, with attestToo, of `cosign
// attest`) in the tag schema: each writes a manifest repeating every
// earlier signature, plus its own, and moves the tag to it.
func (e *env) resign(k *signer, repo string, d digest.Digest, n int, attestToo bool) {
	e.t.Helper()
	var sigs []desc
	var envs [][]byte
	for run := range n {
		p := runPayload(repo, d, run)
		sigs = append(sigs, e.sigLayer(repo, p, k.sign(p)))
		e.signTag(repo, d, sigs...)
		if attestToo {
			envs = append(envs, envelope(k, oci.PayloadTypeInToto, statement(predProvenance, d), ""))
			e.attestTag(repo, d, predProvenance, envs...)
		}
	}
}

// Re-signing one version in cosign's tag schema (key rotation, CI re-runs)
// never makes it invalid: sixty signings leave 1,830 records about it, of
// which only the sixty of the manifest the .sig tag points at are current,
// and only those count toward attest.max_records_per_subject (1024 by
// default). The superseded ones are history: listed, the most recent
// first and bounded, and deciding nothing.
func TestResigningInTagModeStaysVerified(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("resign/app", "1.0.0")
	const signings = 60
	e.resign(k, "resign/app", d, signings, false)

	rep := e.report("resign/app", "1.0.0")
	cur := statuses(rep)
	if rep.Verification != attest.Verified || len(cur) != signings {
		t.Fatalf("after %d signings: %s with %d current findings %q", signings, rep.Verification, len(cur), cur)
	}
	for _, s := range cur {
		if s != "signature verified "+k.id[:8] {
			t.Fatalf("current finding %q", s)
		}
	}
	if old := len(rep.Signatures) - len(cur); old != attest.MaxSupersededShown {
		t.Fatalf("%d superseded findings listed, want the %d most recent", old, attest.MaxSupersededShown)
	}
	if code, body := e.pull("resign/app", "1.0.0"); code != http.StatusOK {
		t.Fatalf("pull after re-signing: %d %s", code, body)
	}
}

// Superseded records count toward neither cap. Eight signings and eight
// attestations in the tag schema, under caps of 3 referrers and 16
// records: 16 current records in 2 current manifests, verified. The caps
// still hold for what is current: one more signature makes 17.
func TestSupersededCountTowardNoCap(t *testing.T) {
	e := newEnv(t, attest.Config{MaxReferrersPerSubject: 3, MaxRecordsPerSubject: 16})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("resign/caps", "1.0.0")
	e.resign(k, "resign/caps", d, 8, true)
	rep := e.report("resign/caps", "1.0.0")
	if cur := statuses(rep); rep.Verification != attest.Verified || len(cur) != 16 {
		t.Fatalf("8 signatures and 8 attestations, re-signed each time: %s %q", rep.Verification, cur)
	}

	e.resign(k, "resign/caps", d, 9, false)
	rep = e.report("resign/caps", "1.0.0")
	if rep.Verification != attest.Invalid || !strings.Contains(fmt.Sprint(rep.Signatures), "attest.max_records_per_subject (16)") {
		t.Fatalf("9 current signatures and 8 attestations, cap 16: %s %+v", rep.Verification, rep.Signatures)
	}
}
