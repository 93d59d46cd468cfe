package pack_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
)

// TestPublish: a REST publish is a pack version with the given facts, its
// files are the layers (byte-exact, titled), and the trail records it.
func TestPublish(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	big := make([]byte, 3<<20+5) // spills to a temporary file while hashed
	rand.Read(big)
	files := []file{
		rulesYAML,
		{name: "data/big.bin", data: big},
		{name: "empty", data: []byte{}},
		{name: "policy.rego", contentType: "application/vnd.opa.policy.layer.v1+rego", data: []byte("package x")},
	}
	md := pack.Metadata{Name: "acme/rules", Version: "1.2.0-rc.1", Description: "Rules for acme",
		Labels: map[string]string{"team": "sec", "tier": "gold"}}
	w := e.publish(md, files...)
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "/api/v1/packs/acme/rules/versions/1.2.0-rc.1" {
		t.Fatalf("publish: %d Location %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	v := decode[pack.Version](t, w)
	if v.Name != md.Name || v.Version != md.Version || v.Status != "active" || v.Description != md.Description ||
		v.ArtifactType != oci.ArtifactTypePack || v.MediaType != "application/vnd.oci.image.manifest.v1+json" ||
		v.Labels["tier"] != "gold" || v.CreatedAt.Time().IsZero() || !strings.HasPrefix(v.Digest, "sha256:") {
		t.Fatalf("published version %+v", v)
	}
	if len(v.Files) != len(files) {
		t.Fatalf("files %+v", v.Files)
	}
	var total int64
	for i, f := range v.Files {
		want := files[i]
		mt := want.contentType
		if mt == "" {
			mt = oci.MediaTypePackFile
		}
		if f.Name != want.name || f.Digest != sha(want.data) || f.Size != int64(len(want.data)) || f.MediaType != mt {
			t.Fatalf("file %d = %+v, want %s %s", i, f, want.name, sha(want.data))
		}
		got := e.do("GET", "/v2/acme/rules/blobs/"+f.Digest.String(), nil)
		if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), want.data) {
			t.Fatalf("blob of %s: %d, %d bytes", f.Name, got.Code, got.Body.Len())
		}
		total += f.Size
	}
	// The manifest over /v2/ is the one the version names, and it carries
	// what `oras pull` needs.
	raw := e.do("GET", "/v2/acme/rules/manifests/1.2.0-rc.1", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
	if raw.Code != http.StatusOK || sha(raw.Body.Bytes()).String() != v.Digest || v.Size != int64(raw.Body.Len()) {
		t.Fatalf("/v2/ manifest: %d, digest %s, version says %s", raw.Code, sha(raw.Body.Bytes()), v.Digest)
	}
	var m struct {
		ArtifactType string
		Config       struct{ MediaType string }
		Layers       []struct{ Annotations map[string]string }
	}
	json.Unmarshal(raw.Body.Bytes(), &m)
	if m.ArtifactType != oci.ArtifactTypePack || m.Config.MediaType != oci.MediaTypePackConfig || m.Layers[1].Annotations[oci.AnnotationTitle] != "data/big.bin" {
		t.Fatalf("manifest %s", raw.Body)
	}
	mv := decode[pack.ManifestView](t, e.do("GET", pack.Prefix+"/acme/rules/versions/1.2.0-rc.1/manifest", nil))
	if !sameJSON(t, mv.Manifest, raw.Body.Bytes()) || mv.Config.Description != md.Description || mv.Config.Labels["team"] != "sec" ||
		mv.Config.Name != md.Name || mv.Config.Version != md.Version || mv.Config.Created == "" {
		t.Fatalf("manifest view %+v", mv)
	}
	if v.TotalSize <= total+v.Size {
		t.Fatalf("total size %d does not cover files %d + manifest %d + config", v.TotalSize, total, v.Size)
	}

	// The trail: blobs, manifest, tag, publication, in that order, by the
	// client, and the chain verifies.
	recs := e.audit("")
	var actions []string
	for i := len(recs) - 1; i >= 0; i-- {
		actions = append(actions, recs[i].Action)
		if !strings.HasPrefix(recs[i].Actor, "anonymous@") && recs[i].Actor != "system" {
			t.Errorf("record %d actor %q", recs[i].ID, recs[i].Actor)
		}
	}
	want := []string{"blob.push", "blob.push", "blob.push", "blob.push", "blob.push", "manifest.push", "tag.move", "pack.publish"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	if r := recs[0]; r.Target != "acme/rules:1.2.0-rc.1" || r.Digest != v.Digest {
		t.Fatalf("publication record %+v", r)
	}
	ver := decode[audit.Verification](t, e.do("GET", "/api/v1/audit/verify", nil))
	if !ver.OK || ver.Records != int64(len(want)) {
		t.Fatalf("verify %+v", ver)
	}
}

// TestOCIPushIsAPack: a pack pushed over /v2/ (as oras does: empty config,
// facts in annotations) is the same kind of version as a REST publish.
func TestOCIPushIsAPack(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	m := e.ociPack("acme/policies", map[string]string{
		oci.AnnotationDescription: "Policies", oci.AnnotationPackLabels: `{"team":"ops"}`,
	}, file{name: "pol.yaml", data: []byte("p: 1")})
	if w := e.putManifest("acme/policies", "0.1.0", m); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	list := decode[pack.VersionList](t, e.do("GET", pack.Prefix+"?label=team=ops", nil))
	if len(list.Items) != 1 {
		t.Fatalf("listing by label: %+v", list)
	}
	v := list.Items[0]
	if v.Name != "acme/policies" || v.Version != "0.1.0" || v.Description != "Policies" ||
		len(v.Files) != 1 || v.Files[0].Name != "pol.yaml" || v.Files[0].Digest != sha([]byte("p: 1")) {
		t.Fatalf("indexed %+v", v)
	}
	mv := decode[pack.ManifestView](t, e.do("GET", pack.Prefix+"/acme/policies/versions/0.1.0/manifest", nil))
	if mv.Config.Description != "Policies" || mv.Config.Labels["team"] != "ops" {
		t.Fatalf("resolved config from annotations: %+v", mv.Config)
	}
}

// TestOCIPushFactsFollowPublishRules: the description, labels and creation
// time a pushed pack brings (annotations or config blob) are held to the
// rules of a REST publish: what breaks them is left out, the version is
// still indexed.
func TestOCIPushFactsFollowPublishRules(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	m := e.ociPack("acme/loud", map[string]string{
		oci.AnnotationDescription: strings.Repeat("d", 5000), oci.AnnotationPackLabels: `{"bad key":"x","team":"ops"}`,
		oci.AnnotationCreated: "yesterday",
	}, file{name: "a", data: []byte("a")})
	if w := e.putManifest("acme/loud", "1.0.0", m); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	v := decode[pack.Version](t, e.do("GET", pack.Prefix+"/acme/loud/versions/1.0.0", nil))
	if v.Description != "" || v.Labels != nil {
		t.Fatalf("indexed description of %d bytes and labels %q", len(v.Description), v.Labels)
	}
	mv := decode[pack.ManifestView](t, e.do("GET", pack.Prefix+"/acme/loud/versions/1.0.0/manifest", nil))
	if mv.Config.Created != "" {
		t.Fatalf("resolved created %q", mv.Config.Created)
	}

	// A config blob with 65 labels is unreadable: the annotations say
	// what the pack is.
	labels := map[string]string{}
	for i := range 65 {
		labels[fmt.Sprintf("l%d", i)] = "v"
	}
	cfg, err := json.Marshal(pack.Config{Name: "acme/crowd", Version: "1.0.0", Description: "from config", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	m = e.ociPack("acme/crowd", map[string]string{oci.AnnotationDescription: "from annotations"}, file{name: "a", data: []byte("a")})
	m["config"] = map[string]any{"mediaType": oci.MediaTypePackConfig, "digest": e.pushBlob("acme/crowd", cfg), "size": len(cfg)}
	if w := e.putManifest("acme/crowd", "1.0.0", m); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	v = decode[pack.Version](t, e.do("GET", pack.Prefix+"/acme/crowd/versions/1.0.0", nil))
	if v.Description != "from annotations" || v.Labels != nil {
		t.Fatalf("indexed %q with %d labels", v.Description, len(v.Labels))
	}
}

// TestAdmission: policy over /v2/ pushes. Pack versions are immutable and
// semver; cosign tags and plain images are not held to it.
func TestAdmission(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	v1 := e.ociPack("acme/p", nil, file{name: "a", data: []byte("1")})
	v2 := e.ociPack("acme/p", nil, file{name: "a", data: []byte("2")})
	if w := e.putManifest("acme/p", "1.0.0", v1); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	denied := func(w interface{ Result() *http.Response }, what string) {
		t.Helper()
		resp := w.Result()
		var env struct {
			Errors []struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&env)
		if resp.StatusCode != http.StatusForbidden || len(env.Errors) == 0 || env.Errors[0].Code != "DENIED" {
			t.Fatalf("%s: %d %+v, want 403 DENIED", what, resp.StatusCode, env)
		}
	}
	denied(e.putManifest("acme/p", "1.0.0", v2), "moving a version")
	denied(e.putManifest("acme/p", "latest", v2), "a pack tagged latest")
	denied(e.putManifest("acme/p", "v2.0.0", v2), "a pack tagged v2.0.0")
	// The same digest again is not a move.
	if w := e.putManifest("acme/p", "1.0.0", v1); w.Code != http.StatusCreated {
		t.Fatalf("re-push of the same manifest: %d %s", w.Code, w.Body)
	}
	// cosign's tag schema stays writable, moved or not.
	sig := "sha256-" + strings.Repeat("ab", 32) + ".sig"
	for _, m := range []map[string]any{v1, v2} {
		if w := e.putManifest("acme/p", sig, m); w.Code != http.StatusCreated {
			t.Fatalf("cosign tag: %d %s", w.Code, w.Body)
		}
	}
	// Plain images may use and move any tag.
	cfg := e.pushBlob("acme/p", []byte(`{"architecture":"amd64"}`))
	img := func(layer string) map[string]any {
		d := e.pushBlob("acme/p", []byte(layer))
		return map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 24},
			"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(layer)}}}
	}
	for i, ref := range []string{"latest", "3.0.0", "latest", "3.0.0"} {
		if w := e.putManifest("acme/p", ref, img(fmt.Sprint("layer ", i))); w.Code != http.StatusCreated {
			t.Fatalf("plain image %s: %d %s", ref, w.Code, w.Body)
		}
	}
	if w := e.putManifest("acme/p", "1.0.0", img("x")); w.Code != http.StatusForbidden {
		t.Fatalf("a plain image over a pack version: %d, want 403", w.Code)
	}
	if vs := decode[pack.Versions](t, e.do("GET", pack.Prefix+"/acme/p/versions", nil)); len(vs.Versions) != 1 || vs.Versions[0].Version != "1.0.0" {
		t.Fatalf("versions %+v: cosign and plain tags are not versions", vs)
	}
}

// TestCosignTagsOfPacks: which tags of a pack manifest policy exempts as
// cosign's (oci.ParseCosignTag): signatures, attestations and SBOMs
// attached by tag, moved at will; anything else is held to
// require_semver, look-alikes and the referrers fallback tag included.
func TestCosignTagsOfPacks(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	v1 := e.ociPack("acme/c", nil, file{name: "a", data: []byte("1")})
	v2 := e.ociPack("acme/c", nil, file{name: "a", data: []byte("2")})
	h := strings.Repeat("ab", 32)
	for _, c := range []struct {
		tag  string
		code int
	}{
		{"sha256-" + h + ".sig", http.StatusCreated},
		{"sha256-" + h + ".att", http.StatusCreated},
		{"sha256-" + h + ".sbom", http.StatusCreated},
		{"sha256-" + strings.ToUpper(h) + ".sig", http.StatusForbidden},
		{"sha256-" + h[:62] + ".sig", http.StatusForbidden},
		{"sha256-" + h + ".foo", http.StatusForbidden},
		{"sha256-" + h, http.StatusForbidden},
		{"md5-" + h[:32] + ".sig", http.StatusForbidden},
		{"sha512-" + h + h + ".sig", http.StatusBadRequest}, // longer than a tag may be
	} {
		for _, m := range []map[string]any{v1, v2} {
			if w := e.putManifest("acme/c", c.tag, m); w.Code != c.code {
				t.Errorf("pack tagged %.24s...: %d, want %d: %s", c.tag, w.Code, c.code, w.Body)
			}
		}
	}
}

// TestMutableVersions: with immutability off, a moved version is
// re-indexed and the publication record names the previous digest; a
// version whose tag or manifest is deleted is recorded as deleted (not
// forgotten), with a pack.delete audit record.
func TestMutableVersions(t *testing.T) {
	pol := pack.DefaultPolicy()
	pol.ImmutableVersions = false
	e := newEnv(t, pol)
	v1 := e.ociPack("acme/p", nil, file{name: "a", data: []byte("1")})
	v2 := e.ociPack("acme/p", nil, file{name: "a", data: []byte("2")})
	e.putManifest("acme/p", "1.0.0", v1)
	d1 := e.version("acme/p", "1.0.0").Digest
	if w := e.putManifest("acme/p", "1.0.0", v2); w.Code != http.StatusCreated {
		t.Fatalf("move: %d %s", w.Code, w.Body)
	}
	v := e.version("acme/p", "1.0.0")
	if v.Digest == d1 || v.Files[0].Digest != sha([]byte("2")) {
		t.Fatalf("moved version not re-indexed: %+v", v)
	}
	if r := e.audit("action=pack.publish")[0]; r.Details["previous"] != d1 {
		t.Fatalf("republication record %+v", r)
	}
	e.putManifest("acme/p", "2.0.0", v1)
	if w := e.do("DELETE", "/v2/acme/p/manifests/2.0.0", nil); w.Code != http.StatusAccepted {
		t.Fatalf("tag delete: %d", w.Code)
	}
	if v := e.version("acme/p", "2.0.0"); v.Status != "deleted" || v.StatusReason != "tag deleted" {
		t.Fatalf("after its tag is deleted: %s %q", v.Status, v.StatusReason)
	}
	if w := e.do("DELETE", "/v2/acme/p/manifests/"+v.Digest, nil); w.Code != http.StatusAccepted {
		t.Fatalf("manifest delete: %d", w.Code)
	}
	if v := e.version("acme/p", "1.0.0"); v.Status != "deleted" || v.StatusReason != "manifest deleted" {
		t.Fatalf("after its manifest is deleted: %s %q", v.Status, v.StatusReason)
	}
	if recs := e.audit("action=pack.delete"); len(recs) != 2 || recs[0].Target != "acme/p:1.0.0" || recs[1].Target != "acme/p:2.0.0" {
		t.Fatalf("pack.delete records: %+v", recs)
	}
	if l := decode[pack.VersionList](t, e.do("GET", pack.Prefix+"?status=active", nil)); len(l.Items) != 0 {
		t.Fatalf("deleted versions listed as active: %+v", l.Items)
	}
	// Mutable versions take other content after a delete too.
	if w := e.putManifest("acme/p", "2.0.0", v2); w.Code != http.StatusCreated {
		t.Fatalf("re-push with other content: %d %s", w.Code, w.Body)
	}
	if v := e.version("acme/p", "2.0.0"); v.Status != "active" || v.Digest == d1 {
		t.Fatalf("after a re-push: %+v", v)
	}
}

// TestPullGate: deprecated versions pull with the Warning header, archived
// ones are refused (403 DENIED) unless policy allows them.
func TestPullGate(t *testing.T) {
	for _, allow := range []bool{false, true} {
		pol := pack.DefaultPolicy()
		pol.AllowArchivedPulls = allow
		e := newEnv(t, pol)
		v := e.mustPublish(pack.Metadata{Name: "acme/rules", Version: "1.2.0"}, rulesYAML)
		get := func(ref, method string) *http.Response {
			return e.do(method, "/v2/acme/rules/manifests/"+ref, nil).Result()
		}
		if r := get("1.2.0", "GET"); r.StatusCode != 200 || r.Header.Get("Warning") != "" {
			t.Fatalf("active: %d Warning %q", r.StatusCode, r.Header.Get("Warning"))
		}
		e.lifecycle("acme/rules", "1.2.0", "deprecated", "use 2.0.0", false)
		const want = `299 - "pack acme/rules:1.2.0 is deprecated: use 2.0.0"`
		for _, ref := range []string{"1.2.0", v.Digest} {
			for _, m := range []string{"GET", "HEAD"} {
				if r := get(ref, m); r.StatusCode != 200 || r.Header.Get("Warning") != want {
					t.Fatalf("deprecated %s %s: %d Warning %q, want %q", m, ref, r.StatusCode, r.Header.Get("Warning"), want)
				}
			}
		}
		// Listings: gone from the default, there under deprecated and all.
		count := func(q string) int { return len(decode[pack.VersionList](t, e.do("GET", pack.Prefix+q, nil)).Items) }
		if count("") != 0 || count("?status=deprecated") != 1 || count("?status=all") != 1 || count("?status=archived") != 0 {
			t.Fatalf("deprecated listed as active %d, deprecated %d, all %d", count(""), count("?status=deprecated"), count("?status=all"))
		}
		e.lifecycle("acme/rules", "1.2.0", "archived", "withdrawn", false)
		if count("?status=deprecated") != 0 || count("?status=archived") != 1 || count("?status=all") != 1 {
			t.Fatal("archived version listed wrongly")
		}
		r := get("1.2.0", "GET")
		if allow {
			if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Warning"), "is archived: withdrawn") {
				t.Fatalf("archived, allowed: %d Warning %q", r.StatusCode, r.Header.Get("Warning"))
			}
			continue
		}
		var env struct {
			Errors []struct{ Code, Message string }
		}
		json.NewDecoder(r.Body).Decode(&env)
		if r.StatusCode != 403 || env.Errors[0].Code != "DENIED" || !strings.Contains(env.Errors[0].Message, "pack acme/rules:1.2.0 is archived: withdrawn") {
			t.Fatalf("archived pull: %d %+v", r.StatusCode, env)
		}
		if r := get(v.Digest, "GET"); r.StatusCode != 403 {
			t.Fatalf("archived pull by digest: %d", r.StatusCode)
		}
		// Blobs stay readable: the gate is on manifests, as the registry's
		// hook is; without the manifest a client has no digests to ask for.
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
