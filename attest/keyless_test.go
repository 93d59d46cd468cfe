package attest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// keylessEnv is a registry that trusts the virtual Sigstore's root (from
// a file) and acme's release workflow on acme/**, with extra policy
// settings from p.
func keylessEnv(t *testing.T, p attest.Policy) (*env, *sigstore) {
	t.Helper()
	sg := newSigstore(t)
	p.Repositories = []string{"acme/**"}
	p.Identities = []attest.Identity{releasePolicy()}
	return newEnv(t, attest.Config{TrustedRoots: []attest.RootConfig{sg.rootFile("ci")}, Policies: []attest.Policy{p}}), sg
}

// layouts are the three ways a keyless signature arrives: cosign's tag
// schema and OCI 1.1 referrers (certificate and Rekor bundle annotations
// on a simple-signing layer), and sigstore bundles v0.3 (a message
// signature over the manifest, or cosign's DSSE signature statement).
var layouts = []struct {
	name string
	sign func(e *env, sg *sigstore, id ci, repo string, d digest.Digest, h how)
}{
	{"tag schema", func(e *env, sg *sigstore, id ci, repo string, d digest.Digest, h how) {
		p := simplePayload(repo, d)
		e.signTag(repo, d, e.keylessSigLayer(repo, p, sg.sign(id, p, h)))
	}},
	{"oci 1.1 referrer", func(e *env, sg *sigstore, id ci, repo string, d digest.Digest, h how) {
		p := simplePayload(repo, d)
		e.signOCI11(repo, d, e.keylessSigLayer(repo, p, sg.sign(id, p, h)))
	}},
	{"bundle message signature", func(e *env, sg *sigstore, id ci, repo string, d digest.Digest, h how) {
		h.proof = true
		m := e.manifestBytes(repo, d)
		s := sg.sign(id, m, h)
		e.bundleReferrer(repo, d, s.bundleJSON(e.t, s.messageSig(m)))
	}},
	{"bundle dsse", func(e *env, sg *sigstore, id ci, repo string, d digest.Digest, h how) {
		h.proof = true
		env, s := sg.attest(id, statement(attest.PredicateCosignSign, d), h)
		e.bundleReferrer(repo, d, s.bundleJSON(e.t, map[string]any{"dsseEnvelope": json.RawMessage(env)}))
	}},
}

// The identity the policy names is verified, in every layout, and the
// finding shows who signed; another identity's signature is untrusted.
func TestKeylessVerifiedForThePolicysIdentity(t *testing.T) {
	e, sg := keylessEnv(t, attest.Policy{})
	for i, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			e := e.with(t)
			good, bad := "1.0."+string(rune('0'+i)), "2.0."+string(rune('0'+i))
			l.sign(e, sg, releaseWF, "acme/rules", e.pushPack("acme/rules", good), how{})
			l.sign(e, sg, otherWF, "acme/rules", e.pushPack("acme/rules", bad), how{})

			rep := e.report("acme/rules", good)
			if rep.Verification != attest.Verified || len(rep.Signatures) != 1 {
				t.Fatalf("release workflow: %s %v", rep.Verification, rep.Signatures)
			}
			f := rep.Signatures[0]
			id := f.Identity
			if id == nil || id.Issuer != ghIssuer || id.Subject != releaseWF.subject || id.SourceRepositoryURI != releaseWF.repo ||
				id.SourceRepositoryRef != releaseWF.ref || id.BuildTrigger != "push" || id.TrustedRoot != "ci" ||
				id.SignedAt == nil || id.TimeSource == "" || f.KeyID != "" {
				t.Fatalf("finding does not show the signer: %+v %+v", f, id)
			}

			rep = e.report("acme/rules", bad)
			if rep.Verification != attest.Untrusted || rep.Signatures[0].Status != storage.SigUnverifiable ||
				rep.Signatures[0].Identity.Subject != otherWF.subject || !strings.Contains(rep.Signatures[0].Reason, "does not name") {
				t.Fatalf("another identity: %s %+v", rep.Verification, rep.Signatures)
			}
		})
	}
}

// Each way a keyless signature can be wrong is a failed finding, and the
// version invalid, whatever identity signed.
func TestKeylessFailures(t *testing.T) {
	e, sg := keylessEnv(t, attest.Policy{})
	other := newFulcio(t)
	tag, bundleMsg := layouts[0].sign, layouts[2].sign
	cases := []struct {
		name, reason string
		sign         func(e *env, repo string, d digest.Digest)
	}{
		{"certificate expired, no timestamp", "timestamp", func(e *env, repo string, d digest.Digest) {
			tag(e, sg, releaseWF, repo, d, how{at: time.Now().Add(-2 * time.Hour), noLog: true, noTSA: true})
		}},
		{"certificate expired when timestamped", "leaf certificate", func(e *env, repo string, d digest.Digest) {
			tag(e, sg, releaseWF, repo, d, how{at: time.Now().Add(-2 * time.Hour), noLog: true})
		}},
		{"certificate valid now, no evidence of time", "timestamp", func(e *env, repo string, d digest.Digest) {
			tag(e, sg, releaseWF, repo, d, how{noLog: true, noTSA: true})
		}},
		{"tampered payload", "does not verify", func(e *env, repo string, d digest.Digest) {
			p := simplePayload(repo, d)
			s := sg.sign(releaseWF, p, how{payload: append([]byte(" "), p...)})
			e.signTag(repo, d, e.keylessSigLayer(repo, p, s))
		}},
		{"tampered payload, timestamp only", "does not verify", func(e *env, repo string, d digest.Digest) {
			p := simplePayload(repo, d)
			s := sg.sign(releaseWF, p, how{noLog: true, payload: append([]byte(" "), p...)})
			e.signTag(repo, d, e.keylessSigLayer(repo, p, s))
		}},
		{"payload about another digest", "a signature for other content", func(e *env, repo string, d digest.Digest) {
			p := simplePayload(repo, e.pushPack(repo, "9.9.9"))
			e.signTag(repo, d, e.keylessSigLayer(repo, p, sg.sign(releaseWF, p, how{})))
		}},
		{"bundle about another digest", "messageDigest is not the subject", func(e *env, repo string, d digest.Digest) {
			m := e.manifestBytes(repo, e.pushPack(repo, "9.9.8"))
			s := sg.sign(releaseWF, m, how{proof: true})
			e.bundleReferrer(repo, d, s.bundleJSON(e.t, s.messageSig(m)))
		}},
		{"dsse bundle about another digest", "statement subjects do not include", func(e *env, repo string, d digest.Digest) {
			env, s := sg.attest(releaseWF, statement(attest.PredicateCosignSign, e.pushPack(repo, "9.9.7")), how{proof: true})
			e.bundleReferrer(repo, d, s.bundleJSON(e.t, map[string]any{"dsseEnvelope": json.RawMessage(env)}))
		}},
		{"certificate from an untrusted CA", "certificate", func(e *env, repo string, d digest.Digest) {
			tag(e, sg, releaseWF, repo, d, how{fulcio: other})
		}},
		{"certificate from an untrusted CA, bundle", "certificate", func(e *env, repo string, d digest.Digest) {
			bundleMsg(e, sg, releaseWF, repo, d, how{fulcio: other})
		}},
		{"inclusion proof does not verify", "inclusion", func(e *env, repo string, d digest.Digest) {
			m := e.manifestBytes(repo, d)
			s := sg.sign(releaseWF, m, how{proof: true})
			s.entry.InclusionProof.RootHash[0] ^= 0xff
			e.bundleReferrer(repo, d, s.bundleJSON(e.t, s.messageSig(m)))
		}},
		{"log entry of another signature", "does not match", func(e *env, repo string, d digest.Digest) {
			p := simplePayload(repo, d)
			s := sg.sign(releaseWF, p, how{})
			s.entry = sg.sign(releaseWF, p, how{}).entry // logged, but for another certificate and signature
			e.signTag(repo, d, e.keylessSigLayer(repo, p, s))
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			repo, v := "acme/fail"+string(rune('a'+i)), "3.0.0"
			c.sign(e, repo, e.pushPack(repo, v))
			rep := e.report(repo, v)
			all := append(append([]attest.Finding{}, rep.Signatures...), rep.Attestations...)
			if rep.Verification != attest.Invalid || len(all) == 0 || all[0].Status != storage.SigFailed ||
				!strings.Contains(all[0].Reason, c.reason) {
				t.Fatalf("%s: %s %+v", c.name, rep.Verification, all)
			}
			t.Logf("%s", all[0].Reason)
		})
	}
}

// A certificate that expired long ago still verifies when the log proves
// it signed within its ten minutes.
func TestKeylessSigningTimeProvenByTheLog(t *testing.T) {
	e, sg := keylessEnv(t, attest.Policy{})
	d := e.pushPack("acme/rules", "1.0.0")
	p := simplePayload("acme/rules", d)
	at := time.Now().Add(-40 * time.Minute).Truncate(time.Second)
	e.signTag("acme/rules", d, e.keylessSigLayer("acme/rules", p, sg.sign(releaseWF, p, how{at: at, noTSA: true})))
	rep := e.report("acme/rules", "1.0.0")
	if rep.Verification != attest.Verified {
		t.Fatalf("%s %+v", rep.Verification, rep.Signatures)
	}
	id := rep.Signatures[0].Identity
	if id.TimeSource != attest.TimeFromLog || id.SignedAt.Sub(at) != time.Minute {
		t.Fatalf("signed at %v (%s), want %v from the log", id.SignedAt, id.TimeSource, at.Add(time.Minute))
	}
}

// require_signature honours identities: the release workflow's version
// pulls, another identity's is refused, and a keyless SLSA provenance by
// the release workflow counts toward required_attestations; one by
// another identity does not.
func TestKeylessPullGateAndRequiredAttestations(t *testing.T) {
	const slsa = "https://slsa.dev/provenance/v1"
	e, sg := keylessEnv(t, attest.Policy{RequireSignature: true, RequiredAttestations: []string{slsa}})
	sign := layouts[0].sign
	good := e.pushPack("acme/rules", "1.0.0")
	sign(e, sg, releaseWF, "acme/rules", good, how{})
	e.attestKeyless("acme/rules", good, sg, releaseWF, slsa)
	bad := e.pushPack("acme/rules", "1.1.0")
	sign(e, sg, otherWF, "acme/rules", bad, how{})
	e.attestKeyless("acme/rules", bad, sg, releaseWF, slsa)
	prov := e.pushPack("acme/rules", "1.2.0")
	sign(e, sg, releaseWF, "acme/rules", prov, how{})
	e.attestKeyless("acme/rules", prov, sg, otherWF, slsa)
	e.wait()

	if code, body := e.pull("acme/rules", "1.0.0"); code != http.StatusOK {
		t.Fatalf("release workflow's version: %d %s", code, body)
	}
	rep := e.report("acme/rules", "1.0.0")
	if rep.Verification != attest.Verified || len(rep.Attestations) != 1 || rep.Attestations[0].PredicateType != slsa ||
		rep.Attestations[0].Identity == nil || rep.Attestations[0].Identity.Subject != releaseWF.subject {
		t.Fatalf("%s %+v", rep.Verification, rep.Attestations)
	}
	for _, v := range []string{"1.1.0", "1.2.0"} {
		if code, body := e.pull("acme/rules", v); code != http.StatusForbidden || !strings.Contains(body, "DENIED") {
			t.Fatalf("%s: %d %s", v, code, body)
		}
	}
	if rep := e.report("acme/rules", "1.2.0"); rep.Verification != attest.Unsigned || !slicesContain(rep.Policy.Problems, "no verified attestation of type "+slsa) {
		t.Fatalf("provenance by another identity: %s %+v", rep.Verification, rep.Policy.Problems)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// attestKeyless is `cosign attest` keyless in the tag schema: a .att
// manifest whose DSSE layer carries the certificate and Rekor bundle.
func (e *env) attestKeyless(repo string, d digest.Digest, sg *sigstore, id ci, predicateType string) {
	env, s := sg.attest(id, statement(predicateType, d), how{})
	a := s.annotations(e.t)
	a[attest.AnnotationPredicateType] = predicateType
	a["dev.cosignproject.cosign/signature"] = ""
	e.pushManifest(repo, attest.SchemaTag(d, attest.KindAttestation), manifest{
		Config: e.layer(repo, "application/vnd.oci.image.config.v1+json", []byte(`{"rootfs":{}}`), nil),
		Layers: []desc{e.layer(repo, "application/vnd.dsse.envelope.v1+json", env, a)}})
}

// Trust follows the roots as they are now: without a root a keyless
// signature waits (untrusted); adding the root through the API re-checks
// it (verified); deleting the root withdraws it at once; a changed root
// file is re-read and the signature checked again under it.
func TestKeylessTrustedRootsChange(t *testing.T) {
	sg := newSigstore(t)
	rc := sg.rootFile("ci")
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"acme/**"}, Identities: []attest.Identity{releasePolicy()}}}})
	d := e.pushPack("acme/rules", "1.0.0")
	layouts[0].sign(e, sg, releaseWF, "acme/rules", d, how{})
	rep := e.report("acme/rules", "1.0.0")
	if rep.Verification != attest.Untrusted || !strings.Contains(rep.Signatures[0].Reason, "no trusted root") {
		t.Fatalf("no root: %s %+v", rep.Verification, rep.Signatures)
	}

	doc, _ := os.ReadFile(rc.Path)
	out := e.call("POST", "/api/v1/trusted-roots", map[string]any{"name": "ci", "trustedRoot": json.RawMessage(doc)}, http.StatusCreated)
	if out["name"] != "ci" || out["source"] != attest.RootFromAPI || out["certificateAuthorities"] != float64(1) {
		t.Fatalf("POST trusted-roots: %v", out)
	}
	e.call("POST", "/api/v1/trusted-roots", map[string]any{"name": "ci", "trustedRoot": json.RawMessage(doc)}, http.StatusConflict)
	e.call("POST", "/api/v1/trusted-roots", map[string]any{"name": "bad", "trustedRoot": map[string]any{"mediaType": "x"}}, http.StatusBadRequest)
	e.call("POST", "/api/v1/trusted-roots", map[string]any{"name": "Bad Name", "trustedRoot": json.RawMessage(doc)}, http.StatusBadRequest)
	if rep := e.report("acme/rules", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("after adding the root: %s %+v", rep.Verification, rep.Signatures)
	}
	list := e.call("GET", "/api/v1/trusted-roots", nil, http.StatusOK)
	if roots, _ := list["trustedRoots"].([]any); len(roots) != 1 {
		t.Fatalf("GET trusted-roots: %v", list)
	}
	one := e.call("GET", "/api/v1/trusted-roots/ci", nil, http.StatusOK)
	if _, ok := one["trustedRoot"].(map[string]any); !ok {
		t.Fatalf("GET trusted-roots/ci: %v", one)
	}

	req, _ := http.NewRequest("DELETE", e.api.URL+"/api/v1/trusted-roots/ci", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	rep = e.report("acme/rules", "1.0.0")
	if rep.Verification != attest.Untrusted {
		t.Fatalf("after deleting the root: %s %+v", rep.Verification, rep.Signatures)
	}
	e.call("GET", "/api/v1/trusted-roots/ci", nil, http.StatusNotFound)
	acts := auditActions(t, e)
	if !slicesContain(acts, attest.ActionRootAdd+" trusted_root:ci") || !slicesContain(acts, attest.ActionRootDelete+" trusted_root:ci") {
		t.Fatalf("audit trail: %v", acts)
	}
}

// A trusted root file that changes is re-read while the server runs, and
// what it verified is checked again under the new content.
func TestKeylessRootFileReloaded(t *testing.T) {
	e, sg := keylessEnv(t, attest.Policy{})
	d := e.pushPack("acme/rules", "1.0.0")
	layouts[0].sign(e, sg, releaseWF, "acme/rules", d, how{})
	if rep := e.report("acme/rules", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("%s %+v", rep.Verification, rep.Signatures)
	}
	// Another deployment's root replaces it: the signature's CA is no
	// longer trusted.
	path := e.svc.Config().TrustedRoots[0].Path
	later := time.Now().Add(time.Second)
	if err := os.WriteFile(path, newSigstore(t).trustedRoot(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, later, later)
	waitSignedUnderOtherRoot(t, e, "root file change not picked up")
}

// waitSignedUnderOtherRoot waits until acme/rules 1.0.0's signature no
// longer verifies because its root file changed, failing with msg.
func waitSignedUnderOtherRoot(t *testing.T, e *env, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep := e.report("acme/rules", "1.0.0")
		if rep.Verification == attest.Invalid && strings.Contains(rep.Signatures[0].Reason, "does not verify") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s %+v", msg, rep.Verification, rep.Signatures)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A root file rewritten within the same timestamp tick, at the same
// size, is re-read too: neither its size nor its mtime shows the change.
// The stamp is in the future so that the clock cannot leave the racy
// window (internal/filestamp) while the test runs.
func TestKeylessRootFileReloadedWithinATick(t *testing.T) {
	sg := newSigstore(t)
	before, after := sg.trustedRoot(), newSigstore(t).trustedRoot()
	// JSON allows trailing spaces: the same size, whichever is longer.
	n := max(len(before), len(after))
	before = append(before, bytes.Repeat([]byte(" "), n-len(before))...)
	after = append(after, bytes.Repeat([]byte(" "), n-len(after))...)
	path := filepath.Join(t.TempDir(), "ci.json")
	stamp := time.Now().Add(time.Hour)
	write := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	write(before)
	e := newEnv(t, attest.Config{TrustedRoots: []attest.RootConfig{{Name: "ci", Path: path}},
		Policies: []attest.Policy{{Repositories: []string{"acme/**"}, Identities: []attest.Identity{releasePolicy()}}}})
	d := e.pushPack("acme/rules", "1.0.0")
	layouts[0].sign(e, sg, releaseWF, "acme/rules", d, how{})
	if rep := e.report("acme/rules", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("%s %+v", rep.Verification, rep.Signatures)
	}
	write(after)
	waitSignedUnderOtherRoot(t, e, "a same-size change in the same tick not picked up")
}

// A restart whose root file holds another root checks the keyless
// signatures checked under the old one again, before anyone asks.
func TestKeylessRestartWithAnotherRoot(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	sg := newSigstore(t)
	rc := sg.rootFile("ci")
	cfg := attest.Config{TrustedRoots: []attest.RootConfig{rc},
		Policies: []attest.Policy{{Repositories: []string{"acme/**"}, Identities: []attest.Identity{releasePolicy()}}}}
	first := envOn(t, blobs, meta, cfg, true)
	d := first.pushPack("acme/rules", "1.0.0")
	layouts[0].sign(first, sg, releaseWF, "acme/rules", d, how{})
	if rep := first.report("acme/rules", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("%s %+v", rep.Verification, rep.Signatures)
	}
	// Another file under the same name, so that only the new process
	// sees the change (the first one re-reads its own file).
	other := newSigstore(t).rootFile("ci")
	cfg.TrustedRoots = []attest.RootConfig{other}
	second := envOn(t, blobs, meta, cfg, true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := meta.AttestRecordsBySubject(t.Context(), "acme/rules", d, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 && recs[0].Status == storage.SigFailed && strings.Contains(recs[0].Reason, "does not verify") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not checked again under the new root: %+v", recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rep := second.report("acme/rules", "1.0.0"); rep.Verification != attest.Invalid {
		t.Fatalf("%s %+v", rep.Verification, rep.Signatures)
	}
}

func auditActions(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := e.audit.ListAudit(t.Context(), storage.AuditQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out = out[:0]
		for _, r := range recs {
			out = append(out, r.Action+" "+r.Target)
		}
		if slicesContain(out, attest.ActionRootDelete+" trusted_root:ci") || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}
