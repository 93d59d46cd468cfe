package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPolicyBypasses is the "policy bypasses" part of issue 9, over the
// wire with the real binary and real clients: each subtest is a way
// around the signature or pack policy that used to work.
func TestPolicyBypasses(t *testing.T) {
	oras := needTool(t, "oras")
	crane := needTool(t, "crane")
	cosign := needTool(t, "cosign")
	cfg := writeConfig(t, `attest:
  max_referrers_per_subject: 2
  max_records_per_subject: 8
  policies:
    - repositories: ["secure/**"]
      require_signature: true
    - repositories: ["window/**"]
      require_signature: true
      signing_window: 2s
`)
	s := startServer(t, "--config", cfg)
	s.dumpLogOnFailure()
	tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir(), "PACKREG_URL="+s.URL)
	R := s.Addr
	version := func(t *testing.T, name, v string) packVersion {
		t.Helper()
		var pv packVersion
		newClient(t, s.URL).apiJSON("GET", "/api/v1/packs/"+name+"/versions/"+v, nil, nil, http.StatusOK, &pv)
		return pv
	}

	// A pack whose file is a DSSE envelope, or an artifact of
	// simple-signing layers under a plain tag, is no signature of anything:
	// require_signature refuses them like any unsigned manifest.
	t.Run("signature media types exempt nothing", func(t *testing.T) {
		tl := tl.with(t)
		tl.write("gate/env.json", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
		tl.run(oras, "push", "--plain-http", R+"/secure/dsse:1.0.0", "--artifact-type", packArtifactType,
			"gate/env.json:application/vnd.dsse.envelope.v1+json")
		tl.write("gate/payload.json", []byte(`{"critical":{}}`))
		tl.run(oras, "push", "--plain-http", R+"/secure/dsse:latest", "gate/payload.json:application/vnd.dev.cosign.simplesigning.v1+json")
		for _, ref := range []string{"1.0.0", "latest"} {
			res, err := tl.try(nil, crane, "manifest", "--insecure", R+"/secure/dsse:"+ref)
			if err == nil || !strings.Contains(res.Stderr, "DENIED") {
				t.Errorf("crane manifest secure/dsse:%s: %v, want DENIED\n%s%s", ref, err, res.Stdout, res.Stderr)
			}
		}
		if _, err := tl.try(nil, oras, "pull", "--plain-http", "-o", tl.path("gate-out"), R+"/secure/dsse:1.0.0"); err == nil {
			t.Error("oras pulled an unsigned pack of DSSE files")
		}
	})

	// Deleting a version and pushing it again neither reuses its number
	// for other content nor brings an archived version back.
	t.Run("delete and re-push", func(t *testing.T) {
		c, tl := newClient(t, s.URL), tl.with(t)
		tl.write("del/rules.yaml", []byte("allow: none\n"))
		tl.run(oras, "push", "--plain-http", R+"/acme/rules:1.0.0", "--artifact-type", packArtifactType, "del/rules.yaml")
		raw := tl.run(oras, "manifest", "fetch", "--plain-http", R+"/acme/rules:1.0.0").Stdout
		tl.write("del/manifest.json", []byte(raw))
		d := version(t, "acme/rules", "1.0.0").Digest
		tl.run(packregBin, "pack", "archive", "acme/rules:1.0.0", "--reason", "withdrawn")
		resp, body := c.do("DELETE", "/v2/acme/rules/manifests/1.0.0", nil, nil)
		expect(t, resp, body, http.StatusAccepted, "DELETE the version's tag")
		tl.write("del/rules.yaml", []byte("allow: all\n"))
		res, err := tl.try(nil, oras, "push", "--plain-http", R+"/acme/rules:1.0.0", "--artifact-type", packArtifactType, "del/rules.yaml")
		if err == nil || !strings.Contains(res.Stderr, "immutable") {
			t.Fatalf("oras push of other content under a deleted version: %v\n%s", err, res.Stderr)
		}
		if v := version(t, "acme/rules", "1.0.0"); v.Status != "deleted" || v.Digest != d {
			t.Fatalf("after the tag delete: %+v", v)
		}
		// The same manifest again: the version is back, archived.
		tl.run(oras, "manifest", "push", "--plain-http", R+"/acme/rules:1.0.0", "del/manifest.json")
		if v := version(t, "acme/rules", "1.0.0"); v.Status != "archived" || v.StatusReason != "withdrawn" || v.Digest != d {
			t.Fatalf("after the re-push: %s %q %s", v.Status, v.StatusReason, v.Digest)
		}
		if res, err := tl.try(nil, crane, "manifest", "--insecure", R+"/acme/rules:1.0.0"); err == nil || !strings.Contains(res.Stderr, "archived") {
			t.Fatalf("crane manifest of the re-pushed archived version: %v\n%s", err, res.Stderr)
		}
		// DELETE by digest is recorded the same way.
		tl.run(crane, "delete", "--insecure", R+"/acme/rules@"+d)
		if v := version(t, "acme/rules", "1.0.0"); v.Status != "deleted" || v.StatusReason != "manifest deleted" {
			t.Fatalf("after the manifest delete: %+v", v)
		}
		if _, err := tl.try(nil, oras, "push", "--plain-http", R+"/acme/rules:1.0.0", "--artifact-type", packArtifactType, "del/rules.yaml"); err == nil {
			t.Fatal("oras push of other content after the manifest delete succeeded")
		}
		out := tl.run(packregBin, "audit", "list", "--action", "pack.delete", "--target", "acme/rules:1.0.0", "--json").Stdout
		if n := strings.Count(out, `"action": "pack.delete"`); n != 2 {
			t.Fatalf("%d pack.delete records, want 2:\n%s", n, out)
		}
		tl.run(packregBin, "audit", "verify")
	})

	// Concurrent first pushes of one version with different content:
	// exactly one is stored.
	t.Run("first-push race", func(t *testing.T) {
		c := newClient(t, s.URL)
		const n = 16
		for round := range 3 {
			v := fmt.Sprintf("1.%d.0", round)
			bodies := make([][]byte, n)
			for i := range n {
				bodies[i] = rawPack(c, "race/app", packArtifactType, "application/vnd.packreg.pack.file.v1", []byte(fmt.Sprintf("%s %d", v, i)))
			}
			codes := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					resp, body := c.do("PUT", "/v2/race/app/manifests/"+v, http.Header{"Content-Type": {mtOCIManifest}}, bodies[i])
					codes[i] = resp.StatusCode
					if resp.StatusCode == http.StatusForbidden && !strings.Contains(string(body), `"DENIED"`) {
						t.Errorf("refused without DENIED: %s", body)
					}
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, code := range codes {
				switch {
				case code == http.StatusCreated && winner < 0:
					winner = i
				case code == http.StatusCreated:
					t.Fatalf("%s: pushes %d and %d both got 201 (codes %v)", v, winner, i, codes)
				case code != http.StatusForbidden:
					t.Fatalf("%s: push %d got %d", v, i, code)
				}
			}
			if winner < 0 {
				t.Fatalf("%s: no push got 201: %v", v, codes)
			}
			want := sha256Digest(bodies[winner])
			if got := c.manifestDigest("race/app", v); got != want {
				t.Fatalf("%s: the tag serves %s, the 201 was %s", v, got, want)
			}
			if got := version(t, "race/app", v).Digest; got != want {
				t.Fatalf("%s: the pack index says %s, the 201 was %s", v, got, want)
			}
		}
	})

	// A verified .sig manifest tagged again as the signature of another
	// version: findings about that one, and the first keeps its own.
	t.Run("poisoned referrer", func(t *testing.T) {
		c, tl := newClient(t, s.URL), tl.with(t)
		cosign := needTool(t, "cosign")
		tl.run(cosign, "generate-key-pair", "--output-key-prefix", "poison")
		tl.run(packregBin, "keys", "add", "--name", "poison", "poison.pub")
		a := &attestRun{t: t, s: s, c: c, tl: tl, cosign: cosign, oras: oras}
		refA, dA := a.pushPack(t, "poison/app", "1.0.0")
		_, dB := a.pushPack(t, "poison/app", "2.0.0")
		tl.run(cosign, "sign", "--key", "poison.key", "--tlog-upload=false", "-y", refA)
		a.await(t, "poison/app", "1.0.0", "verified", 1, 0)
		sig := c.manifestDigest("poison/app", strings.Replace(dA, ":", "-", 1)+".sig")
		tl.run(crane, "tag", "--insecure", R+"/poison/app@"+sig, strings.Replace(dB, ":", "-", 1)+".sig")
		rep := a.await(t, "poison/app", "2.0.0", "invalid", 1, 0)
		if !strings.Contains(rep.Signatures[0].Reason, "other content") {
			t.Fatalf("the second version's finding: %+v", rep.Signatures[0])
		}
		a.await(t, "poison/app", "1.0.0", "verified", 1, 0)
		tl.run(cosign, "verify", "--key", "poison.pub", "--insecure-ignore-tlog=true", refA)
	})

	// Referrers past attest.max_referrers_per_subject (2 here) are not
	// checked: a finding names the limit.
	t.Run("referrer caps", func(t *testing.T) {
		c, tl := newClient(t, s.URL), tl.with(t)
		a := &attestRun{t: t, s: s, c: c, tl: tl, oras: oras}
		ref, _ := a.pushPack(t, "capped/app", "1.0.0")
		for i := range 4 {
			name := fmt.Sprintf("caps/sig%d.json", i)
			tl.write(name, []byte(fmt.Sprintf(`{"n":%d}`, i)))
			tl.run(oras, "attach", "--plain-http", "--artifact-type", "application/vnd.dev.cosign.artifact.sig.v1+json", ref,
				name+":application/vnd.dev.cosign.simplesigning.v1+json")
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, body := c.do("GET", "/api/v1/packs/capped/app/versions/1.0.0/verification", nil, nil)
			var rep attestReport
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &rep) == nil && len(rep.Signatures) == 4 {
				limited := 0
				for _, f := range rep.Signatures {
					if strings.Contains(f.Reason, "attest.max_referrers_per_subject is 2") {
						limited++
					}
				}
				if limited != 2 || rep.Verification != "invalid" {
					t.Fatalf("4 referrers, cap 2: %d limit findings, verification %s\n%s", limited, rep.Verification, body)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the report never listed 4 signatures:\n%s", body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	// Re-signing one version in cosign's tag schema, each run with its
	// own annotation as CI runs have: every signing writes a .sig manifest
	// that repeats all earlier signatures and moves the tag to it. Only
	// the newest manifest's signatures count toward the caps (2
	// referrers, 8 records here), so 8 signings stay verified.
	t.Run("re-signing in tag mode", func(t *testing.T) {
		c, tl := newClient(t, s.URL), tl.with(t)
		a := &attestRun{t: t, s: s, c: c, tl: tl, oras: oras, cosign: cosign}
		tl.run(cosign, "generate-key-pair", "--output-key-prefix", "resign")
		tl.run(packregBin, "keys", "add", "--name", "resign", "resign.pub")
		ref, _ := a.pushPack(t, "resign/app", "1.0.0")
		for run := range 8 {
			tl.run(cosign, "sign", "--key", "resign.key", "--tlog-upload=false", "-a", fmt.Sprintf("run=%d", run), "-y", ref)
		}
		rep := a.await(t, "resign/app", "1.0.0", "verified", 8, 0)
		if old := len(rep.Signatures) - 8; old != 28 {
			t.Fatalf("%d superseded findings, want 28 (1+2+...+7 signatures of the earlier .sig manifests)", old)
		}
	})

	// A signed payload with keys that differ only in case: Go's decoder
	// (cosign's too) reads the last, another parser the first. Refused.
	t.Run("case-variant duplicate keys", func(t *testing.T) {
		c, tl := newClient(t, s.URL), tl.with(t)
		key, pemPub := ecdsaKey(t)
		c.apiJSON("POST", "/api/v1/keys", jsonHeader,
			mustJSON(t, map[string]string{"name": "dup-keys", "pem": pemPub}), http.StatusCreated, nil)
		subject := c.putManifest("dup/app", "1.0.0", mtOCIManifest,
			rawPack(c, "dup/app", packArtifactType, "application/vnd.packreg.pack.file.v1", []byte("dup")))
		other := "sha256:" + strings.Repeat("0", 64)
		payload := []byte(`{"critical":{"identity":{"docker-reference":"` + R + `/dup/app"},"image":{"docker-manifest-digest":"` + other +
			`"},"type":"cosign container image signature"},"Critical":{"identity":{"docker-reference":"` + R +
			`/dup/app"},"image":{"docker-manifest-digest":"` + subject + `"},"type":"cosign container image signature"},"optional":null}`)
		sum := sha256.Sum256(payload)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		layer := descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: c.pushBlob("dup/app", payload),
			Size: int64(len(payload)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}
		cfgBlob := []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`)
		m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest,
			Config: &descriptor{MediaType: mtOCIConfig, Digest: c.pushBlob("dup/app", cfgBlob), Size: int64(len(cfgBlob))},
			Layers: []descriptor{layer}}
		c.putManifest("dup/app", strings.Replace(subject, ":", "-", 1)+".sig", mtOCIManifest, mustJSON(t, m))
		a := &attestRun{t: t, s: s, c: c, tl: tl}
		rep := a.await(t, "dup/app", "1.0.0", "invalid", 1, 0)
		if !strings.Contains(rep.Signatures[0].Reason, "duplicate key") {
			t.Fatalf("finding: %+v", rep.Signatures[0])
		}
	})

	// The signing window runs from the first push: deleting the manifest
	// and pushing it again does not open it anew.
	t.Run("signing window", func(t *testing.T) {
		c := newClient(t, s.URL)
		body := rawPack(c, "window/app", packArtifactType, "application/vnd.packreg.pack.file.v1", []byte("window"))
		d := c.putManifest("window/app", "1.0.0", mtOCIManifest, body)
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, _, status := c.getManifest("window/app", d)
			if status == http.StatusForbidden {
				break // the 2s window has passed
			}
			if status != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("GET by digest: %d, want 200 until the window closes, then 403", status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, rb := c.do("DELETE", "/v2/window/app/manifests/"+d, nil, nil)
		expect(t, resp, rb, http.StatusAccepted, "DELETE by digest")
		c.putManifest("window/app", d, mtOCIManifest, body)
		if _, _, status := c.getManifest("window/app", d); status != http.StatusForbidden {
			t.Fatalf("GET by digest after delete and re-push: %d, want 403 (the window stays closed)", status)
		}
	})
}

// rawPack uploads a one-layer manifest's blobs to repo and returns the
// manifest bytes (not pushed): artifactType, the empty config, and one
// titled layer of mediaType holding data.
func rawPack(c *client, repo, artifactType, mediaType string, data []byte) []byte {
	c.t.Helper()
	empty := []byte("{}")
	m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest, ArtifactType: artifactType,
		Config: &descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: c.pushBlob(repo, empty), Size: 2},
		Layers: []descriptor{{MediaType: mediaType, Digest: c.pushBlob(repo, data), Size: int64(len(data)),
			Annotations: map[string]string{"org.opencontainers.image.title": "pack.bin"}}}}
	return mustJSON(c.t, m)
}

// ecdsaKey is a P-256 key and its public half as a PEM PUBLIC KEY block.
func ecdsaKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// with returns tl reporting to t (a subtest): same directory, same
// environment.
func (tl *tool) with(t testing.TB) *tool {
	c := *tl
	c.t = t
	return &c
}
