package attest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// An altered payload pushed with the signature of the original (re-tagging
// .sig) is invalid, not merely untrusted: the same signature bytes verified
// over other content before.
func TestAlteredPayloadAfterSigning(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("alter/me", "1.0.0")
	p := simplePayload("alter/me", d)
	sig := k.sign(p)
	first := e.signTag("alter/me", d, e.sigLayer("alter/me", p, sig))
	if rep := e.report("alter/me", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("before: %s", rep.Verification)
	}
	altered := []byte(strings.Replace(string(p), `"optional":null`, `"optional":{"approved":"yes"}`, 1))
	e.signTag("alter/me", d, e.sigLayer("alter/me", altered, sig))
	rep := e.report("alter/me", "1.0.0")
	if rep.Verification != attest.Invalid {
		t.Fatalf("after altering: %s %+v", rep.Verification, rep.Signatures)
	}
	var old, cur *attest.Finding
	for i := range rep.Signatures {
		if rep.Signatures[i].Referrer == first {
			old = &rep.Signatures[i]
		} else {
			cur = &rep.Signatures[i]
		}
	}
	if old == nil || old.Superseded == nil || cur == nil || cur.Status != storage.SigFailed ||
		!strings.Contains(cur.Reason, "altered") || cur.KeyID != k.id {
		t.Fatalf("findings: old %+v, current %+v", old, cur)
	}
}

// Content altered at rest (the stored bytes no longer hash to their
// digest) is found by a refresh: POST .../verification.
func TestAlteredAtRest(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("rest/pack", "1.0.0")
	p := simplePayload("rest/pack", d)
	l := e.sigLayer("rest/pack", p, k.sign(p))
	e.signTag("rest/pack", d, l)
	if rep := e.report("rest/pack", "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("before: %s", rep.Verification)
	}
	e.src.corrupt(digest.Digest(l.Digest))
	out := e.call("POST", "/api/v1/packs/rest/pack/versions/1.0.0/verification", nil, http.StatusOK)
	if out["verification"] != attest.Invalid {
		t.Fatalf("after corruption: %v", out)
	}
	if !strings.Contains(e.report("rest/pack", "1.0.0").Signatures[0].Reason, "altered") {
		t.Fatal("reason does not say the content was altered")
	}
}

// Rotation: a key is judged at the time a signature was recorded.
// Retiring keeps what it signed before and refuses what it signs after;
// revoking refuses everything; a key added later vouches for what it
// signed earlier (no not_before), found by the re-check.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, attest.Config{})
	old, next := newSigner(t, "ecdsa-p256"), newSigner(t, "ed25519ph")
	sign := func(s *signer, repo string) {
		d := e.pushPack(repo, "1.0.0")
		p := simplePayload(repo, d)
		e.signTag(repo, d, e.sigLayer(repo, p, s.sign(p)))
	}
	sign(old, "rot/early") // before any key: untrusted until the key arrives
	if rep := e.report("rot/early", "1.0.0"); rep.Verification != attest.Untrusted {
		t.Fatalf("no key yet: %s", rep.Verification)
	}
	e.addKey(old)
	if rep := e.report("rot/early", "1.0.0"); rep.Verification != attest.Verified || rep.Signatures[0].KeyID != old.id {
		t.Fatalf("after adding the key: %s %+v", rep.Verification, rep.Signatures)
	}
	e.advance(time.Hour)
	sign(old, "rot/before")
	e.advance(time.Hour)

	e.addKey(next)
	e.call("POST", "/api/v1/keys/"+old.id+"/retire", nil, http.StatusOK)
	e.advance(time.Hour)
	sign(old, "rot/after")   // by the retired key, after retirement
	sign(next, "rot/newkey") // by the new key

	for repo, want := range map[string]string{"rot/early": attest.Verified, "rot/before": attest.Verified,
		"rot/after": attest.Untrusted, "rot/newkey": attest.Verified} {
		rep := e.report(repo, "1.0.0")
		if rep.Verification != want {
			t.Errorf("%s after retiring: %s, want %s (%+v)", repo, rep.Verification, want, rep.Signatures)
		}
		if rep.Signatures[0].KeyState == "" {
			t.Errorf("%s: finding without key state", repo)
		}
	}
	signed := e.call("GET", "/api/v1/keys/"+old.id+"/signed", nil, http.StatusOK)["signed"].([]any)
	var vouched []string
	for _, s := range signed {
		m := s.(map[string]any)
		vouched = append(vouched, m["repository"].(string)+" "+m["status"].(string))
	}
	if strings.Join(vouched, ",") != "rot/early verified,rot/before verified,rot/after unverifiable" {
		t.Fatalf("old key vouches for %q", vouched)
	}

	e.call("POST", "/api/v1/keys/"+old.id+"/revoke", nil, http.StatusOK)
	for repo, want := range map[string]string{"rot/early": attest.Untrusted, "rot/before": attest.Untrusted, "rot/newkey": attest.Verified} {
		if rep := e.report(repo, "1.0.0"); rep.Verification != want {
			t.Errorf("%s after revoking: %s, want %s", repo, rep.Verification, want)
		}
	}
	// A revoked key stays revoked.
	e.call("POST", "/api/v1/keys/"+old.id+"/retire", nil, http.StatusConflict)
}

// Re-signing in the tag schema after a rotation repeats the old
// signature (cosign copies every earlier layer into the new .sig
// manifest): the copy is the same signature, seen when the old key was
// valid, so it stays verified. It was recorded anew at the re-sign,
// after the retirement, and turned the version unverifiable.
func TestResignAfterRotationKeepsFirstSeenTime(t *testing.T) {
	e := newEnv(t, attest.Config{})
	old, next := newSigner(t, "ecdsa-p256"), newSigner(t, "ed25519ph")
	e.addKey(old)
	const repo = "rot/resign"
	d := e.pushPack(repo, "1.0.0")
	p1 := runPayload(repo, d, 1)
	first := e.sigLayer(repo, p1, old.sign(p1))
	e.signTag(repo, d, first)
	e.advance(time.Hour)
	e.addKey(next)
	e.call("POST", "/api/v1/keys/"+old.id+"/retire", nil, http.StatusOK)
	e.advance(time.Hour)
	p2 := runPayload(repo, d, 2)
	e.signTag(repo, d, first, e.sigLayer(repo, p2, next.sign(p2)))

	rep := e.report(repo, "1.0.0")
	want := []string{"signature verified " + old.id[:8], "signature verified " + next.id[:8]}
	if got := statuses(rep); rep.Verification != attest.Verified || !slices.Equal(got, want) {
		t.Fatalf("after re-signing with the new key: %s %q, want verified %q", rep.Verification, got, want)
	}
}

// Keys with a validity window count only inside it.
func TestKeyWindow(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "rsa-2048")
	start := e.clock().Add(time.Hour)
	e.call("POST", "/api/v1/keys", map[string]any{"name": "later", "pem": k.pubPEM, "not_before": start}, http.StatusCreated)
	d := e.pushPack("win/pack", "1.0.0")
	p := simplePayload("win/pack", d)
	e.signTag("win/pack", d, e.sigLayer("win/pack", p, k.sign(p)))
	rep := e.report("win/pack", "1.0.0")
	if rep.Verification != attest.Untrusted || !strings.Contains(rep.Signatures[0].Reason, "before key") {
		t.Fatalf("signature before the window: %s %+v", rep.Verification, rep.Signatures)
	}
}

// A .sig tag that moves supersedes what it pointed at; deleting a
// signature manifest drops its records.
func TestTagMoveAndDelete(t *testing.T) {
	e := newEnv(t, attest.Config{})
	a, b := newSigner(t, "ecdsa-p256"), newSigner(t, "ecdsa-p256")
	e.addKey(a)
	d := e.pushPack("move/pack", "1.0.0")
	p := simplePayload("move/pack", d)
	e.signTag("move/pack", d, e.sigLayer("move/pack", p, a.sign(p)))
	// cosign appends a second signature: a new .sig manifest with both layers.
	second := e.signTag("move/pack", d, e.sigLayer("move/pack", p, a.sign(p)), e.sigLayer("move/pack", p, b.sign(p)))
	rep := e.report("move/pack", "1.0.0")
	if got := strings.Join(statuses(rep), "|"); got != "signature verified "+a.id[:8]+"|signature unverifiable " || rep.Verification != attest.Verified {
		t.Fatalf("after the tag moved: %s %s", rep.Verification, got)
	}
	if len(rep.Signatures) != 3 {
		t.Fatalf("%d findings, want 3 (one superseded)", len(rep.Signatures))
	}
	req, _ := http.NewRequest("DELETE", e.oci.URL+"/v2/move/pack/manifests/"+second.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %v %v", err, resp.Status)
	}
	rep = e.report("move/pack", "1.0.0")
	if len(rep.Signatures) != 1 || rep.Signatures[0].Superseded == nil || rep.Verification != attest.Unsigned {
		t.Fatalf("after deleting the current signature: %s %+v", rep.Verification, rep.Signatures)
	}
}

// A bundle signing a manifest that is not pushed yet is checked again
// when the manifest arrives (a referrer may precede its subject).
func TestBundleBeforeSubject(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	repo := "early/pack"
	pack := e.encode(repo, manifest{ArtifactType: "application/vnd.packreg.pack.v1",
		Layers: []desc{e.layer(repo, "application/vnd.packreg.pack.file.v1", []byte("early\n"), nil)}})
	d := digest.FromBytes(digest.SHA256, pack)
	raw := mustJSON(map[string]any{"mediaType": oci.MediaTypeSigstoreBundle,
		"verificationMaterial": map[string]any{"publicKey": map[string]string{"hint": k.hint()}},
		"messageSignature":     messageContent(k, pack)["messageSignature"]})
	subject := oci.NewDescriptor(mtManifest, d, int64(len(pack)))
	e.pushManifest(repo, "", manifest{ArtifactType: oci.MediaTypeSigstoreBundle,
		Layers:  []desc{e.layer(repo, oci.MediaTypeSigstoreBundle, raw, nil)},
		Subject: &subject})
	e.wait()
	rep, err := e.svc.Evaluate(context.Background(), repo, d)
	if err != nil || rep.Verification != attest.Untrusted || !strings.Contains(rep.Signatures[0].Reason, "not in the repository") {
		t.Fatalf("before the subject: %v %+v", err, rep)
	}
	if _, err := e.reg.PushManifest(context.Background(), repo, "1.0.0", mtManifest, pack); err != nil {
		t.Fatal(err)
	}
	if rep := e.report(repo, "1.0.0"); rep.Verification != attest.Verified {
		t.Fatalf("after the subject arrived: %s %+v", rep.Verification, rep.Signatures)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// EvaluateMany, what a listing page asks, reports each subject exactly as
// Evaluate does, across repositories under different policies, in order.
func TestEvaluateManyEqualsEvaluate(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"strict/**"}, RequireSignature: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	var subjects []attest.Subject
	for i, repo := range []string{"strict/signed", "strict/unsigned", "loose/signed", "loose/unsigned"} {
		d := e.pushPack(repo, "1.0.0")
		if i%2 == 0 {
			p := simplePayload(repo, d)
			e.signTag(repo, d, e.sigLayer(repo, p, k.sign(p)))
		}
		subjects = append(subjects, attest.Subject{Repo: repo, Digest: d})
	}
	e.wait()
	many, err := e.svc.EvaluateMany(t.Context(), subjects, attest.MaxSupersededShown)
	if err != nil || len(many) != len(subjects) {
		t.Fatalf("EvaluateMany: %d reports, %v", len(many), err)
	}
	verdicts := map[string]bool{}
	for i, sub := range subjects {
		one, err := e.svc.Evaluate(t.Context(), sub.Repo, sub.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(many[i], one) {
			t.Errorf("%s: EvaluateMany %+v, Evaluate %+v", sub.Repo, many[i], one)
		}
		verdicts[one.Verification+" "+fmt.Sprint(one.Policy.Pending)] = true
	}
	if len(verdicts) < 2 {
		t.Fatalf("the subjects all read alike (%v): the test compares nothing", verdicts)
	}
}
