package attest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/oci"
)

// pull GETs a manifest over HTTP and returns the status and body.
func (e *env) pull(repo, ref string) (int, string) {
	e.t.Helper()
	return e.send("GET", repo, ref)
}

func (e *env) send(method, repo, ref string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.oci.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", mtManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Layers that merely carry signature media types do not exempt a manifest
// from require_signature: a pack never is, and anything else only once it
// is indexed as the signature of another manifest.
func TestGateExemptsOnlyIndexedSignatures(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"secure/**"}, RequireSignature: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	const repo = "secure/app"
	signed := e.pushPack(repo, "0.1.0")
	p := simplePayload(repo, signed)
	sig := e.signTag(repo, signed, e.sigLayer(repo, p, k.sign(p)))
	dsse := func(predicate string) desc {
		return e.layer(repo, oci.MediaTypeDSSE, envelope(k, oci.PayloadTypeInToto, statement(predicate, signed), ""), nil)
	}
	// A pack whose only file is a DSSE envelope (signed, about another
	// digest: it does not matter), pushed as a version.
	packDSSE := e.pushManifest(repo, "1.0.0", manifest{ArtifactType: packType, Layers: []desc{dsse("https://example.com/a")}})
	// The same with a subject: attest indexes it as an attestation of
	// the signed version, and still it is a pack.
	packSubject := e.pushManifest(repo, "1.0.1", manifest{ArtifactType: packType,
		Layers: []desc{dsse("https://example.com/b")}, Subject: e.subjectDesc(repo, signed)})
	// A plain artifact of simple-signing layers under an ordinary tag:
	// nothing says what it would be a signature of.
	plain := e.pushManifest(repo, "latest", manifest{Layers: []desc{e.sigLayer(repo, p, k.sign(p))}})
	e.wait()
	for _, c := range []struct {
		ref, what string
		want      int
	}{
		{"1.0.0", "pack of DSSE layers by tag", http.StatusForbidden},
		{packDSSE.String(), "pack of DSSE layers by digest", http.StatusForbidden},
		{"1.0.1", "pack with a subject by tag", http.StatusForbidden},
		{packSubject.String(), "pack with a subject by digest", http.StatusForbidden},
		{"latest", "signature-shaped artifact under a plain tag", http.StatusForbidden},
		{plain.String(), "signature-shaped artifact by digest", http.StatusForbidden},
		{"0.1.0", "the signed version", http.StatusOK},
		{attest.SchemaTag(signed, attest.KindSignature), "its .sig", http.StatusOK},
		{sig.String(), "its .sig by digest", http.StatusOK},
	} {
		if code, body := e.pull(repo, c.ref); code != c.want {
			t.Errorf("%s (%s): %d, want %d: %s", c.what, c.ref, code, c.want, body)
		}
	}
	// The pack with a subject is indexed as an attestation of the signed
	// version all the same: the report is not what exempts.
	if rep := e.report(repo, "0.1.0"); len(rep.Attestations) != 1 || rep.Attestations[0].Referrer != packSubject {
		t.Fatalf("report of the subject: %+v", rep.Attestations)
	}
	// A tag-schema tag whose payload names another digest proves nothing
	// either: "plain" tagged as the signature of the unsigned pack.
	e.pushManifest(repo, attest.SchemaTag(packDSSE, attest.KindSignature), manifest{Layers: []desc{e.sigLayer(repo, p, k.sign(p))}})
	e.wait()
	for _, ref := range []string{attest.SchemaTag(packDSSE, attest.KindSignature), plain.String()} {
		if code, _ := e.pull(repo, ref); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403: its payload is about %s", ref, code, signed)
		}
	}
}

// cosign verify fetches the .sig right after cosign sign pushed it,
// before the worker may have indexed it: the gate indexes it then.
func TestSignatureManifestPulledBeforeIndexing(t *testing.T) {
	e := newEnvWorker(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true}}}, false)
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("now/app", "1.0.0")
	p := simplePayload("now/app", d)
	tag := attest.SchemaTag(d, attest.KindSignature)
	e.signTag("now/app", d, e.sigLayer("now/app", p, k.sign(p)))
	if code, body := e.pull("now/app", tag); code != http.StatusOK {
		t.Fatalf("the .sig before indexing: %d %s", code, body)
	}
	// Indexed by that pull: the version is verified without the worker.
	if code, body := e.pull("now/app", "1.0.0"); code != http.StatusOK {
		t.Fatalf("the version after its .sig was pulled: %d %s", code, body)
	}
	ref := e.signOCI11("now/app", d, e.sigLayer("now/app", p, k.sign(p)))
	if code, body := e.pull("now/app", ref.String()); code != http.StatusOK {
		t.Fatalf("an OCI 1.1 signature before indexing: %d %s", code, body)
	}
}

// Re-tagging a verified .sig manifest as the signature of another
// manifest adds findings about that one, and leaves the first alone.
func TestReferrerRetaggedForAnotherSubject(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	a := e.pushPack("poison/app", "1.0.0")
	b := e.pushPack("poison/app", "2.0.0")
	p := simplePayload("poison/app", a)
	sig := e.signTag("poison/app", a, e.sigLayer("poison/app", p, k.sign(p)))
	if rep := e.report("poison/app", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("before: %s %v", rep.Verification, statuses(rep))
	}
	// The same manifest, tagged for b (a PUT by tag of the same bytes).
	raw, err := e.reg.Manifest(context.Background(), "poison/app", sig.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.PushManifest(context.Background(), "poison/app", attest.SchemaTag(b, attest.KindSignature), mtManifest, raw.Payload); err != nil {
		t.Fatal(err)
	}
	repB := e.report("poison/app", "2.0.0")
	if repB.Verification != attest.Invalid || len(repB.Signatures) != 1 || !strings.Contains(repB.Signatures[0].Reason, "other content") {
		t.Fatalf("the second subject: %s %+v", repB.Verification, repB.Signatures)
	}
	repA := e.report("poison/app", "1.0.0")
	if repA.Verification != attest.Verified || len(repA.Signatures) != 1 || repA.Signatures[0].Status != "verified" {
		t.Fatalf("the first subject after its signature was re-tagged: %s %+v", repA.Verification, repA.Signatures)
	}
	// A re-check of either (packreg verify) keeps them apart too.
	e.call("POST", "/api/v1/packs/poison/app/versions/2.0.0/verification", nil, http.StatusOK)
	e.call("POST", "/api/v1/packs/poison/app/versions/1.0.0/verification", nil, http.StatusOK)
	if rep := e.report("poison/app", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("the first subject after re-checks: %s %v", rep.Verification, statuses(rep))
	}
	// Deleting the shared manifest drops the findings about both.
	if code, body := e.send("DELETE", "poison/app", sig.String()); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if rep := e.report("poison/app", v); rep.Verification != attest.Unsigned || len(rep.Signatures) != 0 {
			t.Fatalf("%s after the signature was deleted: %s %v", v, rep.Verification, statuses(rep))
		}
	}
}

// Past the caps per subject, a referrer is not checked but recorded as a
// failed finding that names the limit, and the pull path reads a bounded
// number of records.
func TestReferrerCaps(t *testing.T) {
	e := newEnv(t, attest.Config{MaxReferrersPerSubject: 2, MaxRecordsPerSubject: 4,
		Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("many/app", "1.0.0")
	p := simplePayload("many/app", d)
	e.signOCI11("many/app", d, e.sigLayer("many/app", p, k.sign(p)))
	if rep := e.report("many/app", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("one signature: %s %v", rep.Verification, statuses(rep))
	}
	for range 6 {
		e.signOCI11("many/app", d, e.sigLayer("many/app", p, k.sign(p)))
	}
	rep := e.report("many/app", "1.0.0")
	if rep.Verification != attest.Invalid || len(rep.Signatures) > 5 {
		t.Fatalf("7 referrers, caps 2 and 4: %s, %d findings", rep.Verification, len(rep.Signatures))
	}
	var limits []string
	for _, f := range rep.Signatures {
		if strings.HasPrefix(f.Reason, "limit: ") {
			limits = append(limits, f.Reason)
		}
	}
	if !strings.Contains(strings.Join(limits, "\n"), "attest.max_referrers_per_subject is 2") ||
		!strings.Contains(strings.Join(limits, "\n"), "more than 4 signature records") {
		t.Fatalf("limit findings: %q", limits)
	}
	if code, body := e.pull("many/app", "1.0.0"); code != http.StatusForbidden || !strings.Contains(body, "invalid") {
		t.Fatalf("pull past the caps: %d %s", code, body)
	}
}

// The signing window runs from the first push of a digest: deleting the
// manifest and pushing the same bytes again does not open it anew.
func TestSigningWindowSurvivesRepush(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true, SigningWindow: time.Hour}}})
	d := e.pushPack("win/app", "1.0.0")
	raw, err := e.reg.Manifest(context.Background(), "win/app", d.String())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.pull("win/app", d.String()); code != http.StatusOK {
		t.Fatalf("in the window: %d", code)
	}
	e.advance(2 * time.Hour)
	if code, _ := e.pull("win/app", d.String()); code != http.StatusForbidden {
		t.Fatalf("after the window: %d", code)
	}
	if code, body := e.send("DELETE", "win/app", d.String()); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	again, err := e.reg.PushManifest(context.Background(), "win/app", d.String(), mtManifest, raw.Payload)
	if err != nil || again != d {
		t.Fatalf("re-push: %s %v", again, err)
	}
	e.wait()
	if code, body := e.pull("win/app", d.String()); code != http.StatusForbidden {
		t.Fatalf("after delete and re-push: %d, want 403 (the window does not reopen): %s", code, body)
	}
	// Another digest has a window of its own.
	fresh := e.pushPack("win/app", "2.0.0")
	if code, _ := e.pull("win/app", fresh.String()); code != http.StatusOK {
		t.Fatalf("a new digest in its window: %d", code)
	}
}
