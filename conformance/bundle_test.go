package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestBundles is the air gap, end to end: two packreg processes that are
// never told about each other, and files between them. Site A has two
// packs, one signed with cosign sign and attested with cosign attest,
// one deprecated; `packreg export` writes a signed bundle; `packreg
// import` brings it into site B, which trusts A's bundle key. B then has
// the same digests (crane digest), cosign verify and verify-attestation
// pass against B, the lifecycle state came along, B's pack API says
// verified; oras and regctl copy a version out of the directory form
// unchanged. A second bundle of the chain applies on top; on a fresh
// registry it is refused (a gap); a bundle with one byte changed is
// refused whole; an unsigned bundle is refused unless allowed.
func TestBundles(t *testing.T) {
	cosign := needTool(t, "cosign")
	crane := needTool(t, "crane")
	oras := needTool(t, "oras")
	regctl := needTool(t, "regctl")
	tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir())

	// A's bundle key (bundles.signing_key), and its public half for B.
	bk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writePKCS8(t, tl.path("bundle.pem"), bk)
	der, _ := x509.MarshalPKIXPublicKey(&bk.PublicKey)
	tl.write("bundle.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	a := startServer(t, "--config", writeConfig(t, "bundles:\n  signing_key: "+tl.path("bundle.pem")+"\n  source: site-a\n"))
	a.dumpLogOnFailure()
	b := startServer(t)
	b.dumpLogOnFailure()
	tl.run(cosign, "generate-key-pair")
	for _, s := range []*server{a, b} {
		tl.run(packregBin, "keys", "add", "--server", s.URL, "--name", "release", "cosign.pub")
	}
	tl.run(packregBin, "keys", "add", "--server", b.URL, "--name", "site-a", "--usage", "bundles", "bundle.pub")
	tl.write("predicate.json", []byte(`{"builder":"packreg-conformance"}`))
	const predType = "https://packreg.dev/attestations/pack/v1"

	onA := &attestRun{t: t, s: a, c: newClient(t, a.URL), cosign: cosign, oras: oras, tl: tl}
	onB := &attestRun{t: t, s: b, c: newClient(t, b.URL), cosign: cosign, oras: oras, tl: tl}
	ref, d := onA.pushPack(t, "site/signed", "1.0.0")
	tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
	tl.run(cosign, "attest", "--key", "cosign.key", "--type", predType, "--predicate", "predicate.json", "--tlog-upload=false", "-y", ref)
	onA.await(t, "site/signed", "1.0.0", "verified", 1, 1)
	_, oldD := onA.pushPack(t, "site/old", "1.0.0")
	packregCLI(t, tl, a.URL, 0, "pack", "deprecate", "site/old:1.0.0", "--reason", "use site/signed")

	// The first bundle, as a file and (a second export) as a directory.
	out := packregCLI(t, tl, a.URL, 0, "export", "-o", tl.path("b1.tar"), "--json")
	var b1 struct{ Digest, Chain, Cursor string }
	if err := json.Unmarshal([]byte(out), &b1); err != nil || b1.Digest == "" || b1.Cursor == "" {
		t.Fatalf("export output (%v): %s", err, out)
	}
	packregCLI(t, tl, a.URL, 0, "export", "-o", tl.path("b1dir")+"/")

	imp := importJSON(t, tl, b.URL, 0, tl.path("b1.tar"))
	if imp.State != "succeeded" || imp.Bundle.Digest != b1.Digest || imp.Bundle.SignedBy.Name != "site-a" {
		t.Fatalf("import: %+v", imp)
	}

	t.Run("same digests, signatures verify on B", func(t *testing.T) {
		for _, v := range []struct{ repo, d string }{{"site/signed", d}, {"site/old", oldD}} {
			if got := strings.TrimSpace(tl.run(crane, "digest", "--insecure", b.Addr+"/"+v.repo+":1.0.0").Stdout); got != v.d {
				t.Errorf("%s on B: %s, A has %s", v.repo, got, v.d)
			}
		}
		refB := b.Addr + "/site/signed@" + d
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", refB)
		stmt := tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--type", predType, "--insecure-ignore-tlog=true", refB).Stdout
		checkStatement(t, stmt, d, predType, "packreg-conformance")
		onB.await(t, "site/signed", "1.0.0", "verified", 1, 1)
		var v packVersion
		onB.c.apiJSON("GET", "/api/v1/packs/site/old/versions/1.0.0", nil, nil, http.StatusOK, &v)
		if v.Status != "deprecated" {
			t.Errorf("site/old:1.0.0 on B is %q, want deprecated", v.Status)
		}
		var trail struct {
			Items []struct{ Action, Digest string } `json:"items"`
		}
		onA.c.apiJSON("GET", "/api/v1/audit?action=bundle.export", nil, nil, http.StatusOK, &trail)
		if len(trail.Items) == 0 || trail.Items[0].Digest == "" {
			t.Errorf("A's audit trail has no bundle.export: %+v", trail)
		}
		onB.c.apiJSON("GET", "/api/v1/audit?action=bundle.import", nil, nil, http.StatusOK, &trail)
		if len(trail.Items) != 1 || trail.Items[0].Digest != b1.Digest {
			t.Errorf("B's audit trail: %+v, want one bundle.import of %s", trail, b1.Digest)
		}
	})

	t.Run("oras and regctl copy a version out of the directory form", func(t *testing.T) {
		const name = "site..signed_1.0.0"
		tl.run(oras, "cp", "--from-oci-layout", tl.path("b1dir")+":"+name, "--to-plain-http", b.Addr+"/copy/oras:1.0.0")
		tl.run(regctl, "registry", "set", "--tls", "disabled", b.Addr)
		tl.run(regctl, "image", "copy", "--referrers", "ocidir://"+tl.path("b1dir")+":"+name, b.Addr+"/copy/regctl:1.0.0")
		for _, repo := range []string{"copy/oras", "copy/regctl"} {
			if got := strings.TrimSpace(tl.run(crane, "digest", "--insecure", b.Addr+"/"+repo+":1.0.0").Stdout); got != d {
				t.Errorf("%s: %s, want %s", repo, got, d)
			}
		}
	})

	// The second bundle: what changed since the first.
	_, d2 := onA.pushPack(t, "site/signed", "1.1.0")
	packregCLI(t, tl, a.URL, 0, "pack", "archive", "site/old:1.0.0", "--reason", "gone")
	out = packregCLI(t, tl, a.URL, 0, "export", "--since", tl.path("b1.tar"), "-o", tl.path("b2.tar"), "--json")
	var b2 struct{ Digest, Chain, Sequence string }
	if err := json.Unmarshal([]byte(out), &b2); err != nil || b2.Chain != b1.Chain || b2.Sequence != "2" {
		t.Fatalf("second export (%v): %s, want chain %s sequence 2", err, out, b1.Chain)
	}

	t.Run("incremental bundle applies on top", func(t *testing.T) {
		imp := importJSON(t, tl, b.URL, 0, tl.path("b2.tar"))
		if imp.State != "succeeded" || imp.Bundle.Sequence != 2 {
			t.Fatalf("second import: %+v", imp)
		}
		if got := strings.TrimSpace(tl.run(crane, "digest", "--insecure", b.Addr+"/site/signed:1.1.0").Stdout); got != d2 {
			t.Errorf("site/signed:1.1.0 on B: %s, want %s", got, d2)
		}
		var v packVersion
		onB.c.apiJSON("GET", "/api/v1/packs/site/old/versions/1.0.0", nil, nil, http.StatusOK, &v)
		if v.Status != "archived" {
			t.Errorf("site/old:1.0.0 on B is %q after the second bundle, want archived", v.Status)
		}
		again := importJSON(t, tl, b.URL, 0, tl.path("b2.tar"))
		if again.State != "alreadyApplied" {
			t.Errorf("the second bundle again: %+v, want alreadyApplied", again)
		}
	})

	// C requires signatures of site/*: that applies to what arrives too.
	c := startServer(t, "--config", writeConfig(t, `attest:
  policies:
    - repositories: ["site/*"]
      require_signature: true
`))
	c.dumpLogOnFailure()
	tl.run(packregBin, "keys", "add", "--server", c.URL, "--name", "site-a", "--usage", "bundles", "bundle.pub")
	tl.run(packregBin, "keys", "add", "--server", c.URL, "--name", "release", "cosign.pub")
	onC := newClient(t, c.URL)
	nothingOnC := func(t *testing.T) {
		t.Helper()
		var l packList
		onC.apiJSON("GET", "/api/v1/packs?status=all", nil, nil, http.StatusOK, &l)
		if len(l.Items) != 0 {
			t.Fatalf("C has %+v after a refused import", l.Items)
		}
	}

	t.Run("a gap in the chain is refused", func(t *testing.T) {
		code, r := exitCode(tl, packregBin, "import", tl.path("b2.tar"), "--server", c.URL)
		if code != 1 || !strings.Contains(r.Stderr, "BUNDLE_OUT_OF_ORDER") || !strings.Contains(r.Stderr, `"sequence"`) {
			t.Fatalf("import of bundle 2 on a fresh registry: exit %d\n%s%s", code, r.Stdout, r.Stderr)
		}
		nothingOnC(t)
	})

	t.Run("one byte changed is refused whole", func(t *testing.T) {
		raw, err := os.ReadFile(tl.path("b1.tar"))
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range []int{len(raw) / 3, len(raw) / 2, len(raw) - 2048} {
			bad := append([]byte(nil), raw...)
			bad[at] ^= 0x01
			tl.write("bad.tar", bad)
			code, r := exitCode(tl, packregBin, "import", tl.path("bad.tar"), "--server", c.URL)
			if code != 1 || !strings.Contains(r.Stderr, "BUNDLE_INVALID") {
				t.Fatalf("byte %d changed: exit %d\n%s%s", at, code, r.Stdout, r.Stderr)
			}
		}
		nothingOnC(t)
	})

	t.Run("unsigned is refused unless allowed", func(t *testing.T) {
		// B has no bundle key: what it exports is unsigned.
		packregCLI(t, tl, b.URL, 0, "export", "--include", "site/signed", "-o", tl.path("unsigned.tar"))
		code, r := exitCode(tl, packregBin, "import", tl.path("unsigned.tar"), "--server", c.URL)
		if code != 1 || !strings.Contains(r.Stderr, "UNVERIFIED") || !strings.Contains(r.Stderr, "--allow-unsigned") {
			t.Fatalf("unsigned import: exit %d\n%s%s", code, r.Stdout, r.Stderr)
		}
		nothingOnC(t)
		imp := importJSON(t, tl, c.URL, 0, tl.path("unsigned.tar"), "--allow-unsigned")
		if imp.State != "succeeded" || !imp.Bundle.Unsigned {
			t.Fatalf("allowed unsigned import: %+v", imp)
		}
		// Its cosign signature came along: 1.0.0 is verified on C and
		// pulls; 1.1.0 was never signed, and C's policy refuses it.
		(&attestRun{t: t, s: c, c: onC, tl: tl}).await(t, "site/signed", "1.0.0", "verified", 1, 1)
		if got := strings.TrimSpace(tl.run(crane, "digest", "--insecure", c.Addr+"/site/signed:1.0.0").Stdout); got != d {
			t.Errorf("site/signed:1.0.0 on C: %s, want %s", got, d)
		}
		resp, body := onC.do("GET", "/v2/site/signed/manifests/1.1.0", http.Header{"Accept": {mtOCIManifest}}, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DENIED") {
			t.Errorf("unsigned site/signed:1.1.0 pulled from C under require_signature: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("the directory form imports as the archive does", func(t *testing.T) {
		imp := importJSON(t, tl, c.URL, 0, tl.path("b1dir"))
		if imp.State != "succeeded" || imp.Bundle.SignedBy.Name != "site-a" {
			t.Fatalf("import of the directory form: %+v", imp)
		}
		var v packVersion
		onC.apiJSON("GET", "/api/v1/packs/site/old/versions/1.0.0", nil, nil, http.StatusOK, &v)
		if v.Digest != oldD || v.Status != "deprecated" {
			t.Errorf("site/old:1.0.0 on C: %+v, want %s deprecated", v, oldD)
		}
	})
}

// bundleImport is the part of `packreg import --json` the test reads.
type bundleImport struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Bundle struct {
		Digest   string `json:"digest"`
		Sequence int64  `json:"sequence"`
		Unsigned bool   `json:"unsigned"`
		SignedBy struct {
			Name string `json:"name"`
		} `json:"signedBy"`
	} `json:"bundle"`
}

func importJSON(t *testing.T, tl *tool, server string, want int, path string, extra ...string) bundleImport {
	t.Helper()
	out := packregCLI(t, tl, server, want, append([]string{"import", path, "--json"}, extra...)...)
	var imp bundleImport
	if err := json.Unmarshal([]byte(out), &imp); err != nil {
		t.Fatalf("import output (%v): %s", err, out)
	}
	return imp
}
