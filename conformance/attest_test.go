package conformance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAttest is issue 5 end to end: the real cosign CLI signs and attests
// in its three storage modes, packreg indexes and verifies what it
// pushed, reports it on the API, enforces the pull policy, and cosign
// verifies what packreg stored in turn.
func TestAttest(t *testing.T) {
	cosign := needTool(t, "cosign")
	crane := needTool(t, "crane")
	oras := needTool(t, "oras")
	cfg := t.TempDir() + "/packreg.yaml"
	os.WriteFile(cfg, []byte(`attest:
  policies:
    - repositories: ["secure/*"]
      require_signature: true
      signing_window: 10m
    - repositories: ["staged/*"]
      verify_before_visible: true
`), 0o600)
	s := startServer(t, "--config", cfg)
	s.dumpLogOnFailure()
	R := s.Addr
	a := &attestRun{t: t, s: s, c: newClient(t, s.URL), cosign: cosign, oras: oras,
		tl: newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir(), "PACKREG_URL="+s.URL)}
	tl := a.tl

	// Keys: cosign's own ECDSA P-256 pair, and RSA and Ed25519 keys made
	// here and imported with cosign import-key-pair (PKCS#8 PEM).
	tl.run(cosign, "generate-key-pair")
	writePKCS8(t, tl.path("rsa.pem"), mustRSA(t))
	writePKCS8(t, tl.path("ed.pem"), mustEd25519(t))
	tl.run(cosign, "import-key-pair", "--key", "rsa.pem", "--output-key-prefix", "rsa")
	tl.run(cosign, "import-key-pair", "--key", "ed.pem", "--output-key-prefix", "ed")
	ecID, rsaID, edID := keyID(t, tl.path("cosign.pub")), keyID(t, tl.path("rsa.pub")), keyID(t, tl.path("ed.pub"))
	for name, pub := range map[string]string{"release-ecdsa": "cosign.pub", "release-rsa": "rsa.pub", "release-ed25519": "ed.pub"} {
		tl.run(packregBin, "keys", "add", "--name", name, pub)
	}
	stranger := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir())
	stranger.run(cosign, "generate-key-pair")
	tl.write("predicate.json", []byte(`{"builder":"packreg-conformance"}`))
	tl.run(cosign, "trusted-root", "create", "--out", "tr.json")
	const predType = "https://packreg.dev/attestations/pack/v1"

	t.Run("tag schema", func(t *testing.T) {
		ref, d := a.pushPack(t, "e2e/tag", "1.0.0")
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		tl.run(cosign, "attest", "--key", "cosign.key", "--type", predType, "--predicate", "predicate.json", "--tlog-upload=false", "-y", ref)
		rep := a.await(t, "e2e/tag", "1.0.0", "verified", 1, 1)
		a.keyOf(t, rep.Signatures, ecID, "cosign-tag")
		a.keyOf(t, rep.Attestations, ecID, "cosign-tag")
		if rep.Attestations[0].PredicateType != predType || rep.Digest != d {
			t.Fatalf("report: %+v", rep)
		}
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", ref)
		out := tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--type", predType, "--insecure-ignore-tlog=true", ref).Stdout
		checkStatement(t, out, d, predType, "packreg-conformance")
	})

	t.Run("oci-1-1 referrers", func(t *testing.T) {
		ref, _ := a.pushPack(t, "e2e/oci11", "1.0.0")
		tl.runEnv([]string{"COSIGN_EXPERIMENTAL=1"}, cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "--registry-referrers-mode=oci-1-1", "-y", ref)
		rep := a.await(t, "e2e/oci11", "1.0.0", "verified", 1, 0)
		a.keyOf(t, rep.Signatures, ecID, "cosign-oci11")
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", "--experimental-oci11", ref)
	})

	t.Run("sigstore bundle", func(t *testing.T) {
		ref, d := a.pushPack(t, "e2e/bundle", "1.0.0")
		tl.run(cosign, "sign", "--key", "cosign.key", "--new-bundle-format", "--tlog-upload=false", "--use-signing-config=false", "-y", ref)
		tl.run(cosign, "attest", "--key", "cosign.key", "--new-bundle-format", "--type", predType,
			"--predicate", "predicate.json", "--tlog-upload=false", "--use-signing-config=false", "-y", ref)
		rep := a.await(t, "e2e/bundle", "1.0.0", "verified", 1, 1)
		a.keyOf(t, rep.Signatures, ecID, "sigstore-bundle")
		a.keyOf(t, rep.Attestations, ecID, "sigstore-bundle")
		tl.run(cosign, "verify", "--key", "cosign.pub", "--new-bundle-format", "--trusted-root", "tr.json", "--insecure-ignore-tlog=true", ref)
		out := tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--new-bundle-format", "--trusted-root", "tr.json",
			"--insecure-ignore-tlog=true", "--type", predType, ref).Stdout
		checkStatement(t, out, d, predType, "packreg-conformance")
	})

	t.Run("rsa and ed25519 keys", func(t *testing.T) {
		for _, k := range []struct{ key, pub, id, alg string }{
			{"rsa.key", "rsa.pub", rsaID, "rsa-pkcs1v15-sha256"},
			{"ed.key", "ed.pub", edID, "ed25519ph"},
		} {
			repo := "e2e/" + strings.TrimSuffix(k.key, ".key")
			ref, _ := a.pushPack(t, repo, "1.0.0")
			tl.run(cosign, "sign", "--key", k.key, "--tlog-upload=false", "-y", ref)
			tl.run(cosign, "attest", "--key", k.key, "--type", predType, "--predicate", "predicate.json", "--tlog-upload=false", "-y", ref)
			rep := a.await(t, repo, "1.0.0", "verified", 1, 1)
			f := a.keyOf(t, rep.Signatures, k.id, "cosign-tag")
			if f.Algorithm != k.alg {
				t.Errorf("%s: algorithm %q, want %q", k.key, f.Algorithm, k.alg)
			}
			a.keyOf(t, rep.Attestations, k.id, "cosign-tag")
			if k.alg == "ed25519ph" {
				// cosign v2.6.5 signs images with Ed25519ph but verifies
				// --key with pure Ed25519, so it cannot verify its own
				// Ed25519 signatures (sigstore/cosign#5074); packreg
				// accepts both schemes.
				continue
			}
			tl.run(cosign, "verify", "--key", k.pub, "--insecure-ignore-tlog=true", ref)
		}
	})

	t.Run("untrusted key", func(t *testing.T) {
		ref, _ := a.pushPack(t, "e2e/stranger", "1.0.0")
		stranger.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		rep := a.await(t, "e2e/stranger", "1.0.0", "untrusted", 1, 0)
		if rep.Signatures[0].KeyID != "" || rep.Signatures[0].Status != "unverifiable" {
			t.Fatalf("stranger's signature: %+v", rep.Signatures[0])
		}
		a.verifyExit(t, "e2e/stranger:1.0.0", 0, "verification: untrusted") // permissive: reported, not enforced
	})

	t.Run("tampered payload", func(t *testing.T) {
		ref, d := a.pushPack(t, "e2e/tamper", "1.0.0")
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		a.await(t, "e2e/tamper", "1.0.0", "verified", 1, 0)
		a.tamperSignature(t, "e2e/tamper", d)
		rep := a.await(t, "e2e/tamper", "1.0.0", "invalid", 1, 0)
		if !strings.Contains(a.current(rep.Signatures)[0].Reason, "altered") {
			t.Fatalf("tampered finding: %+v", rep.Signatures)
		}
		a.verifyExit(t, "e2e/tamper:1.0.0", 1, "verification: invalid")
		if _, err := tl.try(nil, cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", ref); err == nil {
			t.Fatal("cosign verify accepted the tampered signature")
		}
	})

	t.Run("attestation through the API", func(t *testing.T) {
		ref, d := a.pushPack(t, "e2e/api", "1.0.0")
		env := tl.run(cosign, "attest", "--key", "cosign.key", "--type", predType, "--predicate", "predicate.json",
			"--tlog-upload=false", "--no-upload=true", "-y", ref).Stdout
		resp, body := a.c.do("POST", "/api/v1/packs/e2e/api/versions/1.0.0/attestations", jsonHeader, []byte(strings.TrimSpace(env)))
		expect(t, resp, body, http.StatusCreated, "POST attestations")
		rep := a.await(t, "e2e/api", "1.0.0", "unsigned", 0, 1)
		a.keyOf(t, rep.Attestations, ecID, "cosign-tag")
		out := tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--type", predType, "--insecure-ignore-tlog=true", ref).Stdout
		checkStatement(t, out, d, predType, "packreg-conformance")
		disc := tl.run(oras, "discover", "--plain-http", "--format", "json", R+"/e2e/api@"+d).Stdout
		if !strings.Contains(disc, "application/vnd.dsse.envelope.v1+json") && !strings.Contains(disc, strings.TrimPrefix(rep.Attestations[0].Referrer, "sha256:")) {
			t.Fatalf("oras discover does not show the posted attestation:\n%s", disc)
		}
		// The same envelope about another version is refused.
		a.pushPack(t, "e2e/api", "2.0.0")
		resp, body = a.c.do("POST", "/api/v1/packs/e2e/api/versions/2.0.0/attestations", jsonHeader, []byte(strings.TrimSpace(env)))
		expect(t, resp, body, http.StatusUnprocessableEntity, "POST an attestation about another version")
	})

	t.Run("pull policy", func(t *testing.T) {
		ref, d := a.pushPack(t, "secure/app", "1.0.0")
		res, err := tl.try(nil, crane, "manifest", "--insecure", R+"/secure/app:1.0.0")
		if err == nil || !strings.Contains(res.Stderr, "DENIED") {
			t.Fatalf("unsigned pull was not refused: %v\n%s", err, res.Stderr)
		}
		if _, err := tl.try(nil, oras, "pull", "--plain-http", "-o", tl.path("denied"), R+"/secure/app:1.0.0"); err == nil {
			t.Fatal("oras pulled an unsigned version")
		}
		a.verifyExit(t, "secure/app:1.0.0", 1, "NOT satisfied")
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref) // by digest, in the signing window
		a.await(t, "secure/app", "1.0.0", "verified", 1, 0)
		tl.run(crane, "manifest", "--insecure", R+"/secure/app:1.0.0")
		tl.run(oras, "pull", "--plain-http", "-o", tl.path("admitted"), R+"/secure/app:1.0.0")
		a.verifyExit(t, "secure/app:1.0.0", 0, "policy: satisfied")
		if rep := a.await(t, "secure/app", "1.0.0", "verified", 1, 0); rep.Digest != d {
			t.Fatalf("report about %s, want %s", rep.Digest, d)
		}
	})

	t.Run("pack versions carry the report", func(t *testing.T) {
		resp, body := a.c.do("GET", "/api/v1/packs/e2e/tag/versions/1.0.0", nil, nil)
		expect(t, resp, body, http.StatusOK, "GET version")
		var v attestReport
		if err := json.Unmarshal(body, &v); err != nil || v.Verification != "verified" {
			t.Fatalf("version: %v %s", err, body)
		}
		a.keyOf(t, v.Signatures, ecID, "cosign-tag")
		a.keyOf(t, v.Attestations, ecID, "cosign-tag")
	})

	t.Run("verify before visible", func(t *testing.T) {
		ref, _ := a.pushPack(t, "staged/app", "1.0.0")
		listed := func() bool {
			resp, body := a.c.do("GET", "/api/v1/packs/staged/app/versions", nil, nil)
			expect(t, resp, body, http.StatusOK, "GET versions")
			return strings.Contains(string(body), `"version": "1.0.0"`)
		}
		a.await(t, "staged/app", "1.0.0", "unsigned", 0, 0)
		if listed() {
			t.Fatal("a pending version is listed")
		}
		if res, err := tl.try(nil, crane, "manifest", "--insecure", R+"/staged/app:1.0.0"); err == nil || !strings.Contains(res.Stderr, "pending") {
			t.Fatalf("a pending version was pulled by tag: %v %s", err, res.Stderr)
		}
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref) // reads it by digest
		a.await(t, "staged/app", "1.0.0", "verified", 1, 0)
		if !listed() {
			t.Fatal("a verified version is not listed")
		}
		tl.run(crane, "manifest", "--insecure", R+"/staged/app:1.0.0")
	})

	t.Run("rotate a signature through the API", func(t *testing.T) {
		ref, d := a.pushPack(t, "e2e/rotate", "1.0.0")
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		a.await(t, "e2e/rotate", "1.0.0", "verified", 1, 0)
		// The cosign way to sign elsewhere and attach: generate the
		// payload, sign it as a blob with the new key, post both.
		payload := tl.run(cosign, "generate", ref).Stdout
		tl.write("rotate-payload.json", []byte(payload))
		sig := strings.TrimSpace(tl.run(cosign, "sign-blob", "--key", "rsa.key", "--tlog-upload=false", "-y", "rotate-payload.json").Stdout)
		body, _ := json.Marshal(map[string]string{"payload": base64.StdEncoding.EncodeToString([]byte(payload)), "signature": sig})
		resp, out := a.c.do("POST", "/api/v1/packs/e2e/rotate/versions/1.0.0/signatures", jsonHeader, body)
		expect(t, resp, out, http.StatusCreated, "POST signatures")
		rep := a.await(t, "e2e/rotate", "1.0.0", "verified", 1, 0)
		if cur := a.current(rep.Signatures); len(cur) != 1 || cur[0].KeyID != rsaID || len(rep.Signatures) != 2 {
			t.Fatalf("after rotation: %+v", rep.Signatures)
		}
		tl.run(cosign, "verify", "--key", "rsa.pub", "--insecure-ignore-tlog=true", ref)
		if _, err := tl.try(nil, cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", ref); err == nil {
			t.Fatal("the .sig tag still holds the old key's signature")
		}
		if rep.Digest != d {
			t.Fatalf("report about %s, want %s", rep.Digest, d)
		}
	})

	// Last: it changes the key everything above was signed with.
	t.Run("retire and revoke", func(t *testing.T) {
		tl.run(packregBin, "keys", "retire", ecID)
		rep := a.await(t, "e2e/tag", "1.0.0", "verified", 1, 1) // signed before: still vouched for
		if f := a.current(rep.Signatures)[0]; f.KeyState != "retired" {
			t.Fatalf("signature by a retired key: %+v", f)
		}
		ref, _ := a.pushPack(t, "e2e/late", "1.0.0")
		tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
		rep = a.await(t, "e2e/late", "1.0.0", "untrusted", 1, 0) // signed after retirement
		if !strings.Contains(rep.Signatures[0].Reason, "stopped being valid") {
			t.Fatalf("late signature: %+v", rep.Signatures[0])
		}
		signed := tl.run(packregBin, "keys", "signed", ecID).Stdout
		if !strings.Contains(signed, "e2e/tag") || !strings.Contains(signed, "e2e/late") {
			t.Fatalf("keys signed:\n%s", signed)
		}
		tl.run(packregBin, "keys", "revoke", ecID)
		a.await(t, "e2e/tag", "1.0.0", "untrusted", 1, 1)
		a.await(t, "e2e/rsa", "1.0.0", "verified", 1, 1)    // other keys are not affected
		a.await(t, "e2e/rotate", "1.0.0", "verified", 1, 0) // re-signed: the old signature no longer counts
	})
}

// attestRun holds what the subtests share.
type attestRun struct {
	t      *testing.T
	s      *server
	c      *client
	tl     *tool
	cosign string
	oras   string
}

// pushPack pushes a one-file pack as repo:version with oras and returns
// the digest reference cosign should sign, and the digest.
func (a *attestRun) pushPack(t *testing.T, repo, version string) (string, string) {
	t.Helper()
	file := strings.ReplaceAll(repo, "/", "_") + "-" + version + ".yaml"
	a.tl.write(file, []byte("pack: "+repo+"\nversion: "+version+"\n"))
	out := a.tl.run(a.oras, "push", "--plain-http", a.s.Addr+"/"+repo+":"+version,
		"--artifact-type", "application/vnd.packreg.pack.v1", file+":application/vnd.packreg.pack.file.v1").Stdout
	// From oras's answer, not a GET: a policy may refuse to serve it.
	_, d, ok := strings.Cut(out, "Digest: ")
	if !ok || !digestRE.MatchString(d) {
		t.Fatalf("oras push printed no digest:\n%s", out)
	}
	d = digestRE.FindString(d)
	return a.s.Addr + "/" + repo + "@" + d, d
}

// attestReport is the part of GET .../verification the tests read.
type attestReport struct {
	Digest       string          `json:"digest"`
	Verification string          `json:"verification"`
	Signatures   []attestFinding `json:"signatures"`
	Attestations []attestFinding `json:"attestations"`
	Policy       struct {
		Satisfied bool `json:"satisfied"`
	} `json:"policy"`
}

type attestFinding struct {
	Kind, Format, Referrer, Status, Reason, Algorithm string
	KeyID                                             string  `json:"keyId"`
	KeyState                                          string  `json:"keyState"`
	PredicateType                                     string  `json:"predicateType"`
	Superseded                                        *string `json:"superseded"`
}

func (a *attestRun) current(fs []attestFinding) []attestFinding {
	var out []attestFinding
	for _, f := range fs {
		if f.Superseded == nil {
			out = append(out, f)
		}
	}
	return out
}

// await polls the version's report until its verification is want with
// sigs current signatures and atts attestations: indexing runs behind the
// push (and a moved .sig tag supersedes the old signature just after the
// new one is recorded), so this is how a client knows it is done.
func (a *attestRun) await(t *testing.T, repo, version, want string, sigs, atts int) *attestReport {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A fresh report each poll: decoding into the last one's slices
		// keeps a field an element no longer has (a "superseded" time
		// stays on what is now a current finding).
		var rep attestReport
		resp, body := a.c.do("GET", "/api/v1/packs/"+repo+"/versions/"+version+"/verification", nil, nil)
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &rep) == nil && rep.Verification == want &&
			len(a.current(rep.Signatures)) == sigs && len(a.current(rep.Attestations)) == atts {
			return &rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:%s: verification %q, want %q with %d signatures and %d attestations\n%s",
				repo, version, rep.Verification, want, sigs, atts, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keyOf checks that the current findings include one verified by key id
// in format, and returns it.
func (a *attestRun) keyOf(t *testing.T, fs []attestFinding, id, format string) attestFinding {
	t.Helper()
	for _, f := range a.current(fs) {
		if f.KeyID == id && f.Status == "verified" && f.Format == format {
			return f
		}
	}
	t.Fatalf("no %s finding verified by key %s in %+v", format, id, fs)
	return attestFinding{}
}

// verifyExit runs `packreg verify` and checks its exit code and output.
func (a *attestRun) verifyExit(t *testing.T, nameVersion string, code int, marker string) {
	t.Helper()
	res, err := a.tl.try(nil, packregBin, "verify", nameVersion)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if got != code || !strings.Contains(res.Stdout, marker) {
		t.Fatalf("packreg verify %s: exit %d, want %d, output without %q:\n%s%s", nameVersion, got, code, marker, res.Stdout, res.Stderr)
	}
}

// tamperSignature replaces the .sig manifest of subject d with one whose
// payload is altered (another docker-reference) but whose signature
// annotation is the original: what an attacker with push access, or a
// corrupted copy, would serve.
func (a *attestRun) tamperSignature(t *testing.T, repo, d string) {
	tag := strings.Replace(d, ":", "-", 1) + ".sig"
	raw, _, status := a.c.getManifest(repo, tag)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", tag, status)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("sig manifest: %v %s", err, raw)
	}
	payload := a.c.getBlob(repo, m.Layers[0].Digest)
	altered := bytes.Replace(payload, []byte(`"docker-reference":"`), []byte(`"docker-reference":"evil.example/`), 1)
	if bytes.Equal(altered, payload) {
		t.Fatalf("payload has no docker-reference: %s", payload)
	}
	m.Layers[0].Digest = a.c.pushBlob(repo, altered)
	m.Layers[0].Size = int64(len(altered))
	b, _ := json.Marshal(m)
	a.c.putManifest(repo, tag, mtOCIManifest, b)
}

// keyID is packreg's id of a PEM public key: hex SHA-256 of its DER.
func keyID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

func writePKCS8(t *testing.T, path string, key any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEd25519(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
