package attest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

func TestKeysAPI(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k := newSigner(t, "ecdsa-p384")
	body := func(name, pem string) map[string]string { return map[string]string{"name": name, "pem": pem} }
	created := e.call("POST", "/api/v1/keys", body("release-2026", k.pubPEM), http.StatusCreated)
	if created["id"] != k.id || created["state"] != "active" || created["algorithm"] != "ecdsa-p384" {
		t.Fatalf("created %v", created)
	}
	// A valid body with something after it: one JSON value per body.
	trailing := func(b map[string]string, extra string) []byte {
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return append(j, extra...)
	}
	private := "-----BEGIN PRIVATE KEY-----\nTUlJRXZBSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS1l3Z2dTaUFnRUFBb0lCQVFD\n-----END PRIVATE KEY-----\n"
	rows := []struct {
		name string
		body any
		want int
		code string
	}{
		{"duplicate key", body("again", k.pubPEM), http.StatusConflict, "CONFLICT"},
		{"duplicate name", body("release-2026", newSigner(t, "ed25519").pubPEM), http.StatusConflict, "CONFLICT"},
		{"private key", body("oops", private), http.StatusBadRequest, "INVALID"},
		{"garbage", body("x", "not a key"), http.StatusBadRequest, "INVALID"},
		{"two keys", body("x", k.pubPEM+k.pubPEM), http.StatusBadRequest, "INVALID"},
		{"no name", body("", newSigner(t, "ed25519").pubPEM), http.StatusBadRequest, "INVALID"},
		{"control in name", body("a\nb", newSigner(t, "ed25519").pubPEM), http.StatusBadRequest, "INVALID"},
		{"unknown field", map[string]string{"name": "x", "pem": k.pubPEM, "not_afer": "2030"}, http.StatusBadRequest, "INVALID"},
		{"not JSON", []byte("{"), http.StatusBadRequest, "INVALID"},
		{"data after the value: }", trailing(body("t1", newSigner(t, "ed25519").pubPEM), "}"), http.StatusBadRequest, "INVALID"},
		{"data after the value: ]", trailing(body("t2", newSigner(t, "ed25519").pubPEM), "]"), http.StatusBadRequest, "INVALID"},
		{"data after the value: a second one", trailing(body("t3", newSigner(t, "ed25519").pubPEM), "{}"), http.StatusBadRequest, "INVALID"},
		{"window backwards", map[string]string{"name": "w", "pem": newSigner(t, "ed25519").pubPEM,
			"notBefore": "2030-01-01T00:00:00Z", "notAfter": "2029-01-01T00:00:00Z"}, http.StatusBadRequest, "INVALID"},
		{"window backwards, release 1 spelling", map[string]string{"name": "w", "pem": newSigner(t, "ed25519").pubPEM,
			"not_before": "2030-01-01T00:00:00Z", "not_after": "2029-01-01T00:00:00Z"}, http.StatusBadRequest, "INVALID"},
		{"both spellings", map[string]string{"name": "w", "pem": newSigner(t, "ed25519").pubPEM,
			"notAfter": "2030-01-01T00:00:00Z", "not_after": "2031-01-01T00:00:00Z"}, http.StatusBadRequest, "INVALID"},
	}
	for _, r := range rows {
		out := e.call("POST", "/api/v1/keys", r.body, r.want)
		errObj, _ := out["error"].(map[string]any)
		if errObj["code"] != r.code {
			t.Errorf("%s: %v", r.name, out)
		}
		if strings.Contains(errObj["message"].(string), "TUlJRXZB") {
			t.Errorf("%s: the answer repeats the private key", r.name)
		}
	}
	e.call("GET", "/api/v1/keys/"+strings.Repeat("0", 64), nil, http.StatusNotFound)
	e.call("POST", "/api/v1/keys/"+strings.Repeat("0", 64)+"/retire", nil, http.StatusNotFound)
	e.call("GET", "/api/v1/keys/"+k.id+"/nothing", nil, http.StatusNotFound)
	list := e.call("GET", "/api/v1/keys", nil, http.StatusOK)["keys"].([]any)
	if len(list) != 1 {
		t.Fatalf("keys: %v", list)
	}
	retired := e.call("POST", "/api/v1/keys/"+k.id+"/retire", nil, http.StatusOK)
	if retired["state"] != "retired" || retired["notAfter"] == nil {
		t.Fatalf("retired: %v", retired)
	}
	again := e.call("POST", "/api/v1/keys/"+k.id+"/retire", nil, http.StatusOK)
	if again["notAfter"] != retired["notAfter"] {
		t.Fatal("retiring twice moved the end of the window")
	}
	// Key changes are in the audit trail, once each, with the caller.
	recs, err := e.audit.ListAudit(context.Background(), storage.AuditQuery{TargetPrefix: "key:"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" "+r.Target)
		if !strings.HasPrefix(r.Actor, "anonymous@127.0.0.1") {
			t.Errorf("audit actor %q", r.Actor)
		}
	}
	if strings.Join(got, ",") != "key.retire key:"+k.id+",key.add key:"+k.id {
		t.Fatalf("audit trail: %q", got)
	}
}

// The policy's pull gate refuses an unsigned version with 403 DENIED and
// admits it once a trusted signature arrives; the signature manifests
// themselves stay pullable (cosign verify must fetch them).
func TestPullGate(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"secure/**"}, RequireSignature: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("secure/app", "1.0.0")
	open := e.pushPack("open/app", "1.0.0")
	get := e.pull
	e.wait()
	if code, body := get("secure/app", "1.0.0"); code != http.StatusForbidden || !strings.Contains(body, "DENIED") || !strings.Contains(body, "unsigned") {
		t.Fatalf("unsigned pull: %d %s", code, body)
	}
	if code, _ := get("secure/app", d.String()); code != http.StatusForbidden {
		t.Fatalf("unsigned pull by digest: %d", code)
	}
	if code, _ := get("open/app", open.String()); code != http.StatusOK {
		t.Fatalf("pull outside the policy: %d", code)
	}
	// Signed by a stranger: still refused.
	stranger := newSigner(t, "ecdsa-p256")
	p := simplePayload("secure/app", d)
	e.signTag("secure/app", d, e.sigLayer("secure/app", p, stranger.sign(p)))
	e.wait()
	if code, body := get("secure/app", "1.0.0"); code != http.StatusForbidden || !strings.Contains(body, "untrusted") {
		t.Fatalf("pull signed by a stranger: %d %s", code, body)
	}
	sig := e.signTag("secure/app", d, e.sigLayer("secure/app", p, k.sign(p)))
	e.wait()
	if code, body := get("secure/app", "1.0.0"); code != http.StatusOK {
		t.Fatalf("signed pull: %d %s", code, body)
	}
	if code, _ := get("secure/app", attest.SchemaTag(d, attest.KindSignature)); code != http.StatusOK {
		t.Fatalf("pulling the signature manifest: %d", code)
	}
	if code, _ := get("secure/app", sig.String()); code != http.StatusOK {
		t.Fatalf("pulling the signature manifest by digest: %d", code)
	}
}

// POST .../attestations stores a verified DSSE envelope as a referrer that
// is also the .att tag; POST .../signatures replaces the .sig tag and
// supersedes the older signatures.
func TestPublish(t *testing.T) {
	e := newEnv(t, attest.Config{})
	k, next, stranger := newSigner(t, "ecdsa-p256"), newSigner(t, "ed25519ph"), newSigner(t, "ecdsa-p256")
	e.addKey(k)
	repo := "pub/pack"
	d := e.pushPack(repo, "2.0.0")
	base := "/api/v1/packs/" + repo + "/versions/2.0.0/"

	env1 := envelope(k, oci.PayloadTypeInToto, statement(predProvenance, d), "")
	out := e.call("POST", base+"attestations", env1, http.StatusCreated)
	ref := digest.Digest(out["referrer"].(string))
	recs := out["records"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["status"] != "verified" {
		t.Fatalf("posted attestation: %v", out)
	}
	m, err := e.reg.Manifest(context.Background(), repo, attest.SchemaTag(d, attest.KindAttestation))
	if err != nil || m.Digest != ref || m.Subject != d {
		t.Fatalf(".att tag: %v %+v", err, m)
	}
	// A second one is appended to the same tag.
	env2 := envelope(k, oci.PayloadTypeInToto, statement("https://spdx.dev/Document", d), "")
	out = e.call("POST", base+"attestations", env2, http.StatusCreated)
	if len(out["records"].([]any)) != 2 {
		t.Fatalf("second attestation: %v", out)
	}
	for name, body := range map[string][]byte{
		"untrusted key":      envelope(stranger, oci.PayloadTypeInToto, statement(predProvenance, d), ""),
		"about another":      envelope(k, oci.PayloadTypeInToto, statement(predProvenance, digest.FromBytes(digest.SHA256, nil)), ""),
		"not in-toto":        envelope(k, "text/plain", []byte("hello"), ""),
		"named key fails it": envelope(stranger, oci.PayloadTypeInToto, statement(predProvenance, d), k.id),
	} {
		want := http.StatusUnprocessableEntity
		if name == "not in-toto" {
			want = http.StatusBadRequest
		}
		e.call("POST", base+"attestations", body, want)
	}
	e.call("POST", base+"attestations", []byte("{}"), http.StatusBadRequest)

	// Signatures: by k, then rotation to next.
	p := simplePayload(repo, d)
	post := func(s *signer, payload []byte, want int) map[string]any {
		return e.call("POST", base+"signatures", map[string]string{
			"payload": base64.StdEncoding.EncodeToString(payload), "signature": base64.StdEncoding.EncodeToString(s.sign(payload))}, want)
	}
	post(k, p, http.StatusCreated)
	post(next, p, http.StatusUnprocessableEntity) // not in the ring yet
	post(k, simplePayload(repo, digest.FromBytes(digest.SHA256, nil)), http.StatusUnprocessableEntity)
	e.addKey(next)
	e.call("POST", "/api/v1/keys/"+k.id+"/retire", nil, http.StatusOK)
	e.advance(1)
	post(k, p, http.StatusUnprocessableEntity) // retired: no new signatures
	post(next, p, http.StatusCreated)
	rep := e.report(repo, "2.0.0")
	if rep.Verification != attest.Verified {
		t.Fatalf("after rotation: %s", rep.Verification)
	}
	var current []string
	for _, f := range rep.Signatures {
		if f.Superseded == nil {
			current = append(current, f.KeyID)
		}
	}
	if len(current) != 1 || current[0] != next.id {
		t.Fatalf("current signatures %q, want only the new key's", current)
	}
	// The referrers API lists the .att manifest (it has a subject).
	resp, err := http.Get(e.oci.URL + "/v2/" + repo + "/referrers/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if len(idx.Manifests) < 2 {
		t.Fatalf("referrers: %+v", idx)
	}
	// The GET views split signatures from attestations.
	sigs := e.call("GET", base+"signatures", nil, http.StatusOK)
	if sigs["attestations"] != nil || len(sigs["signatures"].([]any)) != 2 || sigs["verification"] != "verified" {
		t.Fatalf("signatures view: %v", sigs)
	}
	e.call("DELETE", base+"signatures", nil, http.StatusMethodNotAllowed)
	e.call("GET", "/api/v1/packs/"+repo+"/versions/9.9.9/signatures", nil, http.StatusNotFound)
}

// "Verify before visible": a version is not pullable by tag until it is
// verified, but stays pullable by digest so that it can be signed.
func TestVerifyBeforeVisible(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"staged/*"}, VerifyBeforeVisible: true}}})
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("staged/app", "1.0.0")
	e.wait()
	status := func(ref string) int {
		resp, err := http.Get(e.oci.URL + "/v2/staged/app/manifests/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("1.0.0"); got != http.StatusForbidden {
		t.Fatalf("pending version by tag: %d", got)
	}
	if got := status(d.String()); got != http.StatusOK {
		t.Fatalf("pending version by digest: %d", got)
	}
	if rep := e.report("staged/app", "1.0.0"); !rep.Policy.Pending {
		t.Fatalf("unsigned version not pending: %+v", rep.Policy)
	}
	p := simplePayload("staged/app", d)
	e.signTag("staged/app", d, e.sigLayer("staged/app", p, k.sign(p)))
	e.wait()
	if got := status("1.0.0"); got != http.StatusOK {
		t.Fatalf("verified version by tag: %d", got)
	}
	if rep := e.report("staged/app", "1.0.0"); rep.Policy.Pending {
		t.Fatalf("verified version still pending: %+v", rep.Policy)
	}
}

// With a signing window, a new unsigned manifest can be read by digest
// (cosign sign reads what it signs) but still not by tag.
func TestSigningWindow(t *testing.T) {
	e := newEnv(t, attest.Config{Policies: []attest.Policy{{Repositories: []string{"**"}, RequireSignature: true, SigningWindow: time.Hour}}})
	d := e.pushPack("win/app", "1.0.0")
	e.wait()
	for ref, want := range map[string]int{"1.0.0": http.StatusForbidden, d.String(): http.StatusOK} {
		resp, err := http.Get(e.oci.URL + "/v2/win/app/manifests/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", ref, resp.StatusCode, want)
		}
	}
}

// TestKeysAPIFieldNames: the API speaks camelCase; the snake_case
// spellings of release 1 are still read on input, and never written.
func TestKeysAPIFieldNames(t *testing.T) {
	e := newEnv(t, attest.Config{})
	start, end := "2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z"
	for name, body := range map[string]map[string]string{
		"camel": {"notBefore": start, "notAfter": end},
		"snake": {"not_before": start, "not_after": end},
	} {
		body["name"], body["pem"] = name, newSigner(t, "ed25519").pubPEM
		out := e.call("POST", "/api/v1/keys", body, http.StatusCreated)
		if out["notBefore"] != start || out["notAfter"] != end {
			t.Errorf("%s: window not kept: %v", name, out)
		}
		for k := range out {
			if strings.Contains(k, "_") {
				t.Errorf("%s: answer has the snake_case field %q", name, k)
			}
		}
	}
	// Reports too: a verified signature names its key in camelCase.
	k := newSigner(t, "ecdsa-p256")
	e.addKey(k)
	d := e.pushPack("acme/names", "1.0.0")
	p := simplePayload("acme/names", d)
	e.signTag("acme/names", d, e.sigLayer("acme/names", p, k.sign(p)))
	e.wait()
	rep := e.call("GET", "/api/v1/packs/acme/names/versions/1.0.0/verification", nil, http.StatusOK)
	raw, _ := json.Marshal(rep)
	if !strings.Contains(string(raw), `"keyId":"`+k.id+`"`) || strings.Contains(string(raw), "key_id") || strings.Contains(string(raw), "verified_at") {
		t.Errorf("report field names: %s", raw)
	}
}
