package conformance

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestClients drives packreg with the real clients, using the commands of
// CLIENTS.md, and checks outcomes (digests, bytes, referrers), not just exit
// codes. One server serves all subtests; each works in its own repositories.
func TestClients(t *testing.T) {
	s := startServer(t)
	s.dumpLogOnFailure()
	t.Run("crane", func(t *testing.T) { testCrane(t, s) })
	t.Run("oras", func(t *testing.T) { testOras(t, s) })
	t.Run("regctl", func(t *testing.T) { testRegctl(t, s) })
	t.Run("skopeo", func(t *testing.T) { testSkopeo(t, s) })
	t.Run("helm", func(t *testing.T) { testHelm(t, s) })
	t.Run("cosign", func(t *testing.T) { testCosign(t, s) })
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func equalFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d bytes pushed", path, len(got), len(want))
	}
}

func testCrane(t *testing.T, s *server) {
	crane := needTool(t, "crane")
	tl := newTool(t)
	c := newClient(t, s.URL)
	R := s.Addr

	// A layer with one file, so export can be checked byte for byte.
	content := randomBytes(t, 4096)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "data/payload.bin", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	tl.write("layer.tar", layer.Bytes())

	tl.run(crane, "append", "--insecure", "--oci-empty-base", "-f", "layer.tar", "-t", R+"/crane/app:v1")
	d1 := strings.TrimSpace(tl.run(crane, "digest", "--insecure", R+"/crane/app:v1").Stdout)
	if d1 != c.manifestDigest("crane/app", "v1") {
		t.Fatalf("crane digest %s, registry %s", d1, c.manifestDigest("crane/app", "v1"))
	}
	var m manifest
	if err := json.Unmarshal([]byte(tl.run(crane, "manifest", "--insecure", R+"/crane/app:v1").Stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != mtOCIManifest || len(m.Layers) != 1 {
		t.Fatalf("crane append made %+v, want an OCI manifest with one layer", m)
	}

	// OCI layout round trip keeps the digest.
	tl.run(crane, "pull", "--insecure", "--format=oci", R+"/crane/app:v1", "app-oci")
	idx, err := os.ReadFile(tl.path("app-oci", "index.json"))
	if err != nil || !strings.Contains(string(idx), d1) {
		t.Fatalf("OCI layout index.json does not reference %s (%v): %s", d1, err, idx)
	}
	tl.run(crane, "push", "--insecure", "app-oci", R+"/crane/app:v3")
	if d := c.manifestDigest("crane/app", "v3"); d != d1 {
		t.Fatalf("pushed OCI layout has digest %s, want %s", d, d1)
	}

	// Copy across repositories (crane mounts the blobs).
	tl.run(crane, "copy", "--insecure", R+"/crane/app:v1", R+"/crane/mirror:v1")
	if d := c.manifestDigest("crane/mirror", "v1"); d != d1 {
		t.Fatalf("copy has digest %s, want %s", d, d1)
	}
	for _, l := range m.Layers {
		if st := c.blobStatus("crane/mirror", l.Digest); st != http.StatusOK {
			t.Fatalf("copied layer %s: HEAD %d", l.Digest, st)
		}
	}

	tl.run(crane, "tag", "--insecure", R+"/crane/app:v1", "latest")
	tags := strings.Fields(tl.run(crane, "ls", "--insecure", R+"/crane/app").Stdout)
	for _, want := range []string{"v1", "v3", "latest"} {
		if !slices.Contains(tags, want) {
			t.Errorf("crane ls = %q, missing %s", tags, want)
		}
	}
	if d := c.manifestDigest("crane/app", "latest"); d != d1 {
		t.Errorf("latest -> %s, want %s", d, d1)
	}
	repos := strings.Fields(tl.run(crane, "catalog", "--insecure", R).Stdout)
	for _, want := range []string{"crane/app", "crane/mirror"} {
		if !slices.Contains(repos, want) {
			t.Errorf("crane catalog = %q, missing %s", repos, want)
		}
	}

	// Export flattens the image: the file must come back byte-exact.
	exp := tl.run(crane, "export", "--insecure", R+"/crane/app:v1", "-").Stdout
	tr := tar.NewReader(strings.NewReader(exp))
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.TrimPrefix(h.Name, "/") == "data/payload.bin" {
			b, _ := io.ReadAll(tr)
			if !bytes.Equal(b, content) {
				t.Fatal("exported file differs from the pushed one")
			}
			found = true
		}
	}
	if !found {
		t.Fatal("crane export has no data/payload.bin")
	}

	// Delete by digest from the mirror; the source is untouched.
	tl.run(crane, "delete", "--insecure", R+"/crane/mirror@"+d1)
	if _, _, code := c.getManifest("crane/mirror", d1); code != http.StatusNotFound {
		t.Errorf("deleted manifest: GET %d, want 404", code)
	}
	if _, _, code := c.getManifest("crane/mirror", "v1"); code != http.StatusNotFound {
		t.Errorf("tag of deleted manifest: GET %d, want 404", code)
	}
	if _, err := tl.try(nil, crane, "digest", "--insecure", R+"/crane/mirror:v1"); err == nil {
		t.Error("crane digest of a deleted manifest succeeded")
	}
	if d := c.manifestDigest("crane/app", "v1"); d != d1 {
		t.Errorf("source changed after deleting the copy: %s", d)
	}
}

// orasDiscover is what `oras discover --format json` prints.
type orasDiscover struct {
	Digest    string `json:"digest"`
	Referrers []struct {
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
		MediaType    string `json:"mediaType"`
	} `json:"referrers"`
}

func testOras(t *testing.T, s *server) {
	oras := needTool(t, "oras")
	tl := newTool(t)
	c := newClient(t, s.URL)
	R := s.Addr
	const (
		packType = "application/vnd.packreg.pack.v1+json"
		sbomType = "application/vnd.packreg.sbom.v1+json"
		sigType  = "application/vnd.packreg.signature.v1+json"
	)
	packJSON := []byte(`{"name":"demo","version":"1.0.0"}`)
	payload := randomBytes(t, 1<<20+17)
	tl.write("pack.json", packJSON)
	tl.write("payload.bin", payload)
	tl.write("sbom.json", []byte(`{"sbom":true}`))
	tl.write("sig.json", []byte(`{"sig":true}`))

	tl.run(oras, "push", "--plain-http", R+"/oras/demo:1.0.0", "--artifact-type", packType,
		"pack.json:application/vnd.packreg.pack.meta.v1+json",
		"payload.bin:application/vnd.packreg.pack.payload.v1",
		"--annotation", "org.opencontainers.image.version=1.0.0")
	d := c.manifestDigest("oras/demo", "1.0.0")
	body, _, _ := c.getManifest("oras/demo", "1.0.0")
	var m manifest
	json.Unmarshal(body, &m)
	if m.ArtifactType != packType || len(m.Layers) != 2 {
		t.Fatalf("oras push made %s", body)
	}
	fetched := tl.run(oras, "manifest", "fetch", "--plain-http", R+"/oras/demo:1.0.0").Stdout
	if sha256Digest([]byte(fetched)) != d {
		t.Fatalf("oras manifest fetch returned other bytes than the registry stores")
	}

	// Pull writes the files byte-exact, by title.
	tl.run(oras, "pull", "--plain-http", "-o", "out", R+"/oras/demo:1.0.0")
	equalFile(t, tl.path("out", "pack.json"), packJSON)
	equalFile(t, tl.path("out", "payload.bin"), payload)

	// Attach two referrers of different types.
	tl.run(oras, "attach", "--plain-http", R+"/oras/demo:1.0.0", "--artifact-type", sbomType, "sbom.json:application/json")
	tl.run(oras, "attach", "--plain-http", R+"/oras/demo:1.0.0", "--artifact-type", sigType, "sig.json:application/json")
	types := c.referrerTypes("oras/demo", d)
	slices.Sort(types)
	if !slices.Equal(types, []string{sbomType, sigType}) {
		t.Fatalf("referrers API lists types %q, want the sbom and the signature", types)
	}
	c.noFallbackTag("oras/demo", d)
	if f := c.referrers("oras/demo", d, sbomType); len(f) != 1 || f[0].ArtifactType != sbomType {
		t.Fatalf("referrers?artifactType=sbom: %+v", f)
	}

	var disc orasDiscover
	out := tl.run(oras, "discover", "--plain-http", "--format", "json", R+"/oras/demo:1.0.0").Stdout
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover json: %v\n%s", err, out)
	}
	if len(disc.Referrers) != 2 {
		t.Fatalf("oras discover: %d referrers, want 2:\n%s", len(disc.Referrers), out)
	}
	var sbomDigest string
	for _, r := range disc.Referrers {
		if r.ArtifactType == sbomType {
			sbomDigest = r.Digest
		}
	}
	if sbomDigest == "" {
		t.Fatalf("oras discover shows no %s referrer:\n%s", sbomType, out)
	}
	out = tl.run(oras, "discover", "--plain-http", "--format", "json", "--artifact-type", sbomType, R+"/oras/demo:1.0.0").Stdout
	disc = orasDiscover{}
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover json: %v\n%s", err, out)
	}
	if len(disc.Referrers) != 1 || disc.Referrers[0].ArtifactType != sbomType || disc.Referrers[0].Digest != sbomDigest {
		t.Fatalf("oras discover --artifact-type %s:\n%s", sbomType, out)
	}

	// cp -r copies the artifact and its referrers.
	tl.run(oras, "cp", "-r", "--from-plain-http", "--to-plain-http", R+"/oras/demo:1.0.0", R+"/oras/mirror:1.0.0")
	if md := c.manifestDigest("oras/mirror", "1.0.0"); md != d {
		t.Fatalf("copy has digest %s, want %s", md, d)
	}
	mt := c.referrerTypes("oras/mirror", d)
	slices.Sort(mt)
	if !slices.Equal(mt, []string{sbomType, sigType}) {
		t.Fatalf("referrers of the copy: %q", mt)
	}
	if !slices.ContainsFunc(c.referrers("oras/mirror", d, ""), func(x descriptor) bool { return x.Digest == sbomDigest }) {
		t.Fatalf("copy lacks the sbom referrer %s", sbomDigest)
	}
	c.noFallbackTag("oras/mirror", d)
	tl.run(oras, "pull", "--plain-http", "-o", "out2", R+"/oras/mirror:1.0.0")
	equalFile(t, tl.path("out2", "payload.bin"), payload)
}

// regctlList is what `regctl artifact list --format '{{jsonPretty .}}'` prints.
type regctlList struct {
	Descriptors []descriptor `json:"descriptors"`
}

func testRegctl(t *testing.T, s *server) {
	regctl := needTool(t, "regctl")
	tl := newTool(t) // private HOME: ~/.regctl/config.json is the test's own
	c := newClient(t, s.URL)
	R := s.Addr
	const (
		packType = "application/vnd.packreg.pack.v1+json"
		attType  = "application/vnd.packreg.attestation.v1+json"
	)
	packJSON := []byte(`{"name":"regctl","version":"1.0.0"}`)
	tl.write("pack.json", packJSON)
	tl.write("sbom.json", []byte(`{"sbom":"regctl"}`))

	tl.run(regctl, "registry", "set", "--tls", "disabled", R)
	tl.run(regctl, "artifact", "put", "--artifact-type", packType,
		"--file", "pack.json", "--file-media-type", "application/vnd.packreg.pack.meta.v1+json", R+"/regctl/pack:1.0.0")
	d := c.manifestDigest("regctl/pack", "1.0.0")
	tl.run(regctl, "artifact", "put", "--subject", R+"/regctl/pack:1.0.0", "--artifact-type", attType,
		"--file", "sbom.json", "--file-media-type", "application/json")
	if types := c.referrerTypes("regctl/pack", d); !slices.Equal(types, []string{attType}) {
		t.Fatalf("referrers API lists %q, want [%s]", types, attType)
	}
	c.noFallbackTag("regctl/pack", d)

	list := func(ref string) []descriptor {
		t.Helper()
		out := tl.run(regctl, "artifact", "list", ref, "--format", "{{jsonPretty .}}").Stdout
		var l regctlList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("regctl artifact list: %v\n%s", err, out)
		}
		return l.Descriptors
	}
	if l := list(R + "/regctl/pack:1.0.0"); len(l) != 1 || l[0].ArtifactType != attType {
		t.Fatalf("regctl artifact list: %+v", l)
	}

	tl.run(regctl, "image", "copy", "--referrers", R+"/regctl/pack:1.0.0", R+"/regctl/mirror:1.0.0")
	if md := c.manifestDigest("regctl/mirror", "1.0.0"); md != d {
		t.Fatalf("copy has digest %s, want %s", md, d)
	}
	l := list(R + "/regctl/mirror:1.0.0")
	if len(l) != 1 || l[0].ArtifactType != attType {
		t.Fatalf("regctl artifact list on the copy: %+v", l)
	}
	if rd := c.referrers("regctl/pack", d, ""); rd[0].Digest != l[0].Digest {
		t.Fatalf("copied referrer %s differs from the source %s", l[0].Digest, rd[0].Digest)
	}
	got := tl.run(regctl, "artifact", "get", R+"/regctl/mirror:1.0.0").Stdout
	if got != string(packJSON) {
		t.Fatalf("regctl artifact get = %q, want %q", got, packJSON)
	}
	if dg := strings.TrimSpace(tl.run(regctl, "image", "digest", R+"/regctl/mirror:1.0.0").Stdout); dg != d {
		t.Fatalf("regctl image digest %s, want %s", dg, d)
	}
}

func testSkopeo(t *testing.T, s *server) {
	skopeo := needTool(t, "skopeo")
	tl := newTool(t)
	c := newClient(t, s.URL)
	R := s.Addr
	// A private permissive policy: the machine's /etc/containers may differ.
	policy := tl.write("policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	sk := func(args ...string) cmdResult {
		t.Helper()
		return tl.run(skopeo, append([]string{"--policy", policy}, args...)...)
	}

	img := makeImage(t, "skopeo says hello\n")
	c.pushImage("skopeo/src", "v1", img)

	var insp struct {
		Digest string   `json:"Digest"`
		Layers []string `json:"Layers"`
		Os     string   `json:"Os"`
	}
	out := sk("inspect", "--tls-verify=false", "docker://"+R+"/skopeo/src:v1").Stdout
	if err := json.Unmarshal([]byte(out), &insp); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if insp.Digest != img.Digest || !slices.Equal(insp.Layers, []string{img.LayerDigest}) || insp.Os != "linux" {
		t.Fatalf("skopeo inspect: %+v, want digest %s", insp, img.Digest)
	}
	if raw := sk("inspect", "--tls-verify=false", "--raw", "docker://"+R+"/skopeo/src:v1").Stdout; raw != string(img.Manifest) {
		t.Fatalf("skopeo inspect --raw differs from the pushed manifest")
	}

	// registry -> oci: layout -> registry
	sk("copy", "--src-tls-verify=false", "docker://"+R+"/skopeo/src:v1", "oci:"+tl.path("sk-oci")+":v1")
	if idx, _ := os.ReadFile(tl.path("sk-oci", "index.json")); !strings.Contains(string(idx), img.Digest) {
		t.Fatalf("oci: layout does not hold %s: %s", img.Digest, idx)
	}
	sk("copy", "--dest-tls-verify=false", "oci:"+tl.path("sk-oci")+":v1", "docker://"+R+"/skopeo/fromoci:v1")
	if d := c.manifestDigest("skopeo/fromoci", "v1"); d != img.Digest {
		t.Fatalf("oci: round trip digest %s, want %s", d, img.Digest)
	}

	// registry -> oci-archive: -> registry
	sk("copy", "--src-tls-verify=false", "docker://"+R+"/skopeo/src:v1", "oci-archive:"+tl.path("sk-app.tar")+":v1")
	sk("copy", "--dest-tls-verify=false", "oci-archive:"+tl.path("sk-app.tar")+":v1", "docker://"+R+"/skopeo/fromarchive:v1")
	if d := c.manifestDigest("skopeo/fromarchive", "v1"); d != img.Digest {
		t.Fatalf("oci-archive: round trip digest %s, want %s", d, img.Digest)
	}
	if b := c.getBlob("skopeo/fromarchive", img.LayerDigest); !bytes.Equal(b, img.Layer) {
		t.Fatal("layer changed through oci-archive:")
	}

	// registry -> registry
	sk("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+R+"/skopeo/src:v1", "docker://"+R+"/skopeo/copy:v1")
	if d := c.manifestDigest("skopeo/copy", "v1"); d != img.Digest {
		t.Fatalf("docker copy digest %s, want %s", d, img.Digest)
	}
	tags := sk("list-tags", "--tls-verify=false", "docker://"+R+"/skopeo/copy").Stdout
	if !strings.Contains(tags, `"v1"`) {
		t.Fatalf("skopeo list-tags: %s", tags)
	}
}

func testHelm(t *testing.T, s *server) {
	helm := needTool(t, "helm")
	home := t.TempDir()
	tl := newTool(t,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(home, "config", "registry.json"),
	)
	c := newClient(t, s.URL)
	R := s.Addr

	tl.run(helm, "create", "demochart")
	tl.run(helm, "package", "demochart")
	tgz, err := os.ReadFile(tl.path("demochart-0.1.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	res := tl.run(helm, "push", "demochart-0.1.0.tgz", "oci://"+R+"/charts", "--plain-http")
	pushed := digestRE.FindString(res.Stdout + res.Stderr)
	d := c.manifestDigest("charts/demochart", "0.1.0")
	if pushed != d {
		t.Fatalf("helm push reported digest %q, registry has %s", pushed, d)
	}
	body, _, _ := c.getManifest("charts/demochart", "0.1.0")
	var m manifest
	json.Unmarshal(body, &m)
	if m.Config == nil || m.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" || len(m.Layers) != 1 {
		t.Fatalf("helm chart manifest: %s", body)
	}
	if b := c.getBlob("charts/demochart", m.Layers[0].Digest); !bytes.Equal(b, tgz) {
		t.Fatal("chart layer differs from the packaged chart")
	}

	os.MkdirAll(tl.path("hpull"), 0o755)
	tl.run(helm, "pull", "oci://"+R+"/charts/demochart", "--version", "0.1.0", "--plain-http", "-d", "hpull")
	equalFile(t, tl.path("hpull", "demochart-0.1.0.tgz"), tgz)
	show := tl.run(helm, "show", "chart", "oci://"+R+"/charts/demochart", "--version", "0.1.0", "--plain-http").Stdout
	if !strings.Contains(show, "name: demochart") || !strings.Contains(show, "version: 0.1.0") {
		t.Fatalf("helm show chart:\n%s", show)
	}
}

func testCosign(t *testing.T, s *server) {
	cosign := needTool(t, "cosign")
	tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(t.TempDir(), "tuf"))
	c := newClient(t, s.URL)
	R := s.Addr

	tl.run(cosign, "generate-key-pair")
	// A second key that must not verify anything.
	other := newTool(t, "COSIGN_PASSWORD=")
	other.run(cosign, "generate-key-pair")
	otherPub := other.path("cosign.pub")

	// Tag schema: .sig and .att tags.
	img := makeImage(t, "cosign tag mode\n")
	c.pushImage("cosign/app", "v1", img)
	ref := R + "/cosign/app@" + img.Digest
	tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref)
	sigTag := strings.Replace(img.Digest, ":", "-", 1) + ".sig"
	if !slices.Contains(c.tags("cosign/app"), sigTag) {
		t.Fatalf("no %s tag after cosign sign: %q", sigTag, c.tags("cosign/app"))
	}
	out := tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", ref).Stdout
	var verified []struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal([]byte(out), &verified); err != nil || len(verified) == 0 || verified[0].Critical.Image.Digest != img.Digest {
		t.Fatalf("cosign verify output (%v):\n%s", err, out)
	}
	if _, err := tl.try(nil, cosign, "verify", "--key", otherPub, "--insecure-ignore-tlog=true", ref); err == nil {
		t.Fatal("cosign verify with the wrong key succeeded")
	}

	tl.write("predicate.json", []byte(`{"builder":"packreg-conformance"}`))
	tl.run(cosign, "attest", "--key", "cosign.key", "--type", "custom", "--predicate", "predicate.json", "--tlog-upload=false", "-y", ref)
	attTag := strings.Replace(img.Digest, ":", "-", 1) + ".att"
	if !slices.Contains(c.tags("cosign/app"), attTag) {
		t.Fatalf("no %s tag after cosign attest: %q", attTag, c.tags("cosign/app"))
	}
	out = tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--type", "custom", "--insecure-ignore-tlog=true", ref).Stdout
	checkStatement(t, out, img.Digest, "https://cosign.sigstore.dev/attestation/v1", "packreg-conformance")

	// OCI 1.1 referrers mode: a referrer, no .sig tag, no fallback tag.
	img2 := makeImage(t, "cosign oci-1-1 mode\n")
	c.pushImage("cosign/oci11", "v1", img2)
	ref2 := R + "/cosign/oci11@" + img2.Digest
	tl.runEnv([]string{"COSIGN_EXPERIMENTAL=1"}, cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "--registry-referrers-mode=oci-1-1", "-y", ref2)
	if types := c.referrerTypes("cosign/oci11", img2.Digest); !slices.Contains(types, "application/vnd.dev.cosign.artifact.sig.v1+json") {
		t.Fatalf("referrers after oci-1-1 sign: %q", types)
	}
	c.noFallbackTag("cosign/oci11", img2.Digest)
	if tags := c.tags("cosign/oci11"); !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("oci-1-1 sign left tags %q, want only v1", tags)
	}
	tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", "--experimental-oci11", ref2)
	if _, err := tl.try(nil, cosign, "verify", "--key", otherPub, "--insecure-ignore-tlog=true", "--experimental-oci11", ref2); err == nil {
		t.Fatal("oci-1-1 verify with the wrong key succeeded")
	}

	// New sigstore bundle format: referrers of the bundle artifact type.
	img3 := makeImage(t, "cosign bundle mode\n")
	c.pushImage("cosign/bundle", "v1", img3)
	ref3 := R + "/cosign/bundle@" + img3.Digest
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	const predType = "https://packreg.dev/attestations/pack/v1"
	tl.run(cosign, "sign", "--key", "cosign.key", "--new-bundle-format", "--tlog-upload=false", "--use-signing-config=false", "-y", ref3)
	tl.run(cosign, "attest", "--key", "cosign.key", "--new-bundle-format", "--type", predType,
		"--predicate", "predicate.json", "--tlog-upload=false", "--use-signing-config=false", "-y", ref3)
	bundles := c.referrers("cosign/bundle", img3.Digest, bundleType)
	if len(bundles) != 2 {
		t.Fatalf("%d bundle referrers after sign and attest, want 2: %+v", len(bundles), c.referrers("cosign/bundle", img3.Digest, ""))
	}
	c.noFallbackTag("cosign/bundle", img3.Digest)
	tl.run(cosign, "trusted-root", "create", "--out", "tr.json")
	tl.run(cosign, "verify", "--key", "cosign.pub", "--new-bundle-format", "--trusted-root", "tr.json", "--insecure-ignore-tlog=true", ref3)
	out = tl.run(cosign, "verify-attestation", "--key", "cosign.pub", "--new-bundle-format", "--trusted-root", "tr.json",
		"--insecure-ignore-tlog=true", "--type", predType, ref3).Stdout
	checkStatement(t, out, img3.Digest, predType, "packreg-conformance")
	if _, err := tl.try(nil, cosign, "verify", "--key", otherPub, "--new-bundle-format", "--trusted-root", "tr.json", "--insecure-ignore-tlog=true", ref3); err == nil {
		t.Fatal("bundle verify with the wrong key succeeded")
	}
}

// checkStatement decodes cosign verify-attestation output (one DSSE
// envelope per line) and checks an in-toto statement about digest with the
// predicate type and a predicate containing marker.
func checkStatement(t *testing.T, out, digest, predicateType, marker string) {
	t.Helper()
	hexPart := strings.TrimPrefix(digest, "sha256:")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
			Predicate json.RawMessage `json:"predicate"`
		}
		if json.Unmarshal(raw, &st) != nil {
			continue
		}
		if st.PredicateType == predicateType && len(st.Subject) > 0 && st.Subject[0].Digest["sha256"] == hexPart &&
			strings.Contains(string(st.Predicate), marker) {
			return
		}
	}
	t.Fatalf("no verified statement of type %s about %s in:\n%s", predicateType, digest, clip(out))
}
