package pack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
)

// history is the lifecycle of name:version as "from>to" steps.
func (e *env) history(name, version string) string {
	e.t.Helper()
	hist := decode[pack.Lifecycle](e.t, e.do("GET", pack.Prefix+"/"+name+"/versions/"+version+"/lifecycle", nil))
	var steps []string
	for _, h := range hist.History {
		steps = append(steps, h.From+">"+h.To)
	}
	return strings.Join(steps, " ")
}

// TestDeletedVersionsStayImmutable: deleting a version's tag, or its
// manifest, records it as deleted. Its number is never reused for other
// content, and pushing the same content again brings it back in the
// state it had: an archived version stays archived.
func TestDeletedVersionsStayImmutable(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	orig := e.ociPack("acme/rules", nil, file{name: "rules.yaml", data: []byte("allow: none\n")})
	other := e.ociPack("acme/rules", nil, file{name: "rules.yaml", data: []byte("allow: all\n")})
	if w := e.putManifest("acme/rules", "1.0.0", orig); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	d := e.version("acme/rules", "1.0.0").Digest
	if w := e.lifecycle("acme/rules", "1.0.0", "archived", "withdrawn", false); w.Code != http.StatusOK {
		t.Fatalf("archive: %d %s", w.Code, w.Body)
	}

	// Delete the tag: recorded, audited.
	if w := e.do("DELETE", "/v2/acme/rules/manifests/1.0.0", nil); w.Code != http.StatusAccepted {
		t.Fatalf("tag delete: %d %s", w.Code, w.Body)
	}
	if v := e.version("acme/rules", "1.0.0"); v.Status != "deleted" || v.Digest != d {
		t.Fatalf("after the tag delete: %+v", v)
	}
	if recs := e.audit("action=pack.delete"); len(recs) != 1 || recs[0].Target != "acme/rules:1.0.0" ||
		recs[0].Digest != d || recs[0].Details["from"] != "archived" {
		t.Fatalf("pack.delete record: %+v", recs)
	}
	// The manifest is still there by digest, and it is still archived.
	if w := e.do("GET", "/v2/acme/rules/manifests/"+d, nil); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "archived") {
		t.Fatalf("pull by digest of a deleted archived version: %d %s", w.Code, w.Body)
	}

	// Other content under the deleted version: refused, by a pack or not.
	w := e.putManifest("acme/rules", "1.0.0", other)
	if msg := w.Body.String(); w.Code != http.StatusForbidden || !strings.Contains(msg, "DENIED") || !strings.Contains(msg, "even after a delete") {
		t.Fatalf("other content under a deleted version: %d %s", w.Code, msg)
	}
	cfg := e.pushBlob("acme/rules", []byte(`{"architecture":"amd64"}`))
	img := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 24}, "layers": []any{}}
	if w := e.putManifest("acme/rules", "1.0.0", img); w.Code != http.StatusForbidden {
		t.Fatalf("a plain image under a deleted version: %d %s", w.Code, w.Body)
	}
	// Nor through the API: other content is 409, and so is the lifecycle.
	if w := e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, rulesYAML); w.Code != http.StatusConflict {
		t.Fatalf("REST publish of other content under a deleted version: %d %s", w.Code, w.Body)
	}
	msg := expectError(t, e.lifecycle("acme/rules", "1.0.0", "active", "", true), http.StatusConflict, apierr.TransitionInvalid)
	if !strings.Contains(msg, "push the same content again") {
		t.Fatalf("lifecycle of a deleted version: %s", msg)
	}

	// The same content again: back, archived, with its reason.
	if w := e.putManifest("acme/rules", "1.0.0", orig); w.Code != http.StatusCreated {
		t.Fatalf("re-push of the same content: %d %s", w.Code, w.Body)
	}
	if v := e.version("acme/rules", "1.0.0"); v.Status != "archived" || v.StatusReason != "withdrawn" || v.Digest != d {
		t.Fatalf("after the re-push: %s %q %s", v.Status, v.StatusReason, v.Digest)
	}
	if w := e.do("GET", "/v2/acme/rules/manifests/1.0.0", nil); w.Code != http.StatusForbidden {
		t.Fatalf("pull of the re-pushed archived version: %d %s", w.Code, w.Body)
	}
	if h, want := e.history("acme/rules", "1.0.0"), ">active active>archived archived>deleted deleted>archived"; h != want {
		t.Fatalf("history: %s, want %s", h, want)
	}
	if r := e.audit("action=pack.publish&target=acme/rules:1.0.0")[0]; r.Details["restored"] != "archived" {
		t.Fatalf("publication record of the re-push: %+v", r)
	}
}

// TestDeletedManifest: DELETE by digest records every version on it as
// deleted; the version comes back only with its own manifest.
func TestDeletedManifest(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	v := e.mustPublish(pack.Metadata{Name: "acme/db", Version: "2.0.0"}, rulesYAML)
	e.mustPublish(pack.Metadata{Name: "acme/db", Version: "2.1.0"}, file{name: "other", data: []byte("x")})
	raw := e.do("GET", "/v2/acme/db/manifests/"+v.Digest, nil).Body.Bytes()
	if w := e.do("DELETE", "/v2/acme/db/manifests/"+v.Digest, nil); w.Code != http.StatusAccepted {
		t.Fatalf("manifest delete: %d %s", w.Code, w.Body)
	}
	if got := e.version("acme/db", "2.0.0"); got.Status != "deleted" || got.StatusReason != "manifest deleted" {
		t.Fatalf("after the manifest delete: %+v", got)
	}
	l := decode[pack.VersionList](t, e.do("GET", pack.Prefix+"?status=deleted", nil))
	if len(l.Items) != 1 || l.Items[0].Version != "2.0.0" {
		t.Fatalf("?status=deleted: %+v", l.Items)
	}
	// The whole-pack lifecycle leaves the deleted version alone.
	if w := e.lifecycle("acme/db", "", "deprecated", "moving on", false); w.Code != http.StatusOK {
		t.Fatalf("pack-wide deprecation with a deleted version: %d %s", w.Code, w.Body)
	}
	if got := e.version("acme/db", "2.0.0"); got.Status != "deleted" {
		t.Fatalf("pack-wide change touched a deleted version: %s", got.Status)
	}
	// Publishing the same files anew builds another manifest (another
	// created time): the version is bound to the old one.
	if w := e.publish(pack.Metadata{Name: "acme/db", Version: "2.0.0"}, rulesYAML); w.Code != http.StatusConflict ||
		!strings.Contains(w.Body.String(), "deleted with its manifest") {
		t.Fatalf("REST publish of a version deleted with its manifest: %d %s", w.Code, w.Body)
	}
	// Its own manifest, by digest, is content without a version...
	w := e.do("PUT", "/v2/acme/db/manifests/"+v.Digest, raw, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if w.Code != http.StatusCreated {
		t.Fatalf("PUT by digest: %d %s", w.Code, w.Body)
	}
	if got := e.version("acme/db", "2.0.0"); got.Status != "deleted" {
		t.Fatalf("untagged re-push: %s", got.Status)
	}
	// ...and the REST publish of the same files tags it again.
	w = e.publish(pack.Metadata{Name: "acme/db", Version: "2.0.0"}, rulesYAML)
	if w.Code != http.StatusOK {
		t.Fatalf("REST publish restoring a deleted version: %d %s", w.Code, w.Body)
	}
	if got := decode[pack.Version](t, w); got.Status != "active" || got.Digest != v.Digest {
		t.Fatalf("restored: %+v", got)
	}
}

// TestConcurrentFirstPushes: many first pushes of one version with
// different content, at once, over HTTP: exactly one 201, the others 403
// DENIED, and the version is the winner's.
func TestConcurrentFirstPushes(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	const n = 12
	for round := range 3 {
		version := fmt.Sprintf("1.%d.0", round)
		bodies := make([][]byte, n)
		for i := range n {
			bodies[i], _ = json.Marshal(e.ociPack("race/app", nil, file{name: "f", data: []byte(fmt.Sprintf("%s %d", version, i))}))
		}
		codes := make([]int, n)
		digests := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest("PUT", srv.URL+"/v2/race/app/manifests/"+version, bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				codes[i], digests[i] = resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
				if resp.StatusCode == http.StatusForbidden && !strings.Contains(string(b), "DENIED") {
					t.Errorf("refusal without DENIED: %s", b)
				}
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, c := range codes {
			switch c {
			case http.StatusCreated:
				if winner >= 0 {
					t.Fatalf("%s: pushes %d and %d both got 201", version, winner, i)
				}
				winner = i
			case http.StatusForbidden:
			default:
				t.Fatalf("%s: push %d got %d", version, i, c)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no push got 201: %v", version, codes)
		}
		if got := e.version("race/app", version); got.Digest != digests[winner] {
			t.Fatalf("%s: indexed %s, the 201 was %s", version, got.Digest, digests[winner])
		}
		if w := e.do("GET", "/v2/race/app/manifests/"+version, nil); w.Header().Get("Docker-Content-Digest") != digests[winner] {
			t.Fatalf("%s: tag serves %s, the 201 was %s", version, w.Header().Get("Docker-Content-Digest"), digests[winner])
		}
	}
}
