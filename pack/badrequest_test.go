package pack_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
)

var rulesYAML = file{name: "rules.yaml", data: []byte("rules:\n  - deny: all\n")}

// TestPublishRefusals: every bad publish of the issue answers 4xx with the
// error shape and stores no version: no tag, no index entry, no
// pack.publish record.
func TestPublishRefusals(t *testing.T) {
	good := pack.Metadata{Name: "acme/rules", Version: "1.2.0"}
	for _, c := range []struct {
		name string
		// edit changes good metadata, sent with one good file (or files);
		// parts, when set, is the whole request instead.
		edit   func(*pack.Metadata)
		files  []file // instead of the good file
		parts  func(t *testing.T) []part
		ct     string // overrides the multipart Content-Type
		cut    int    // bytes cut off the body's end
		status int
		code   string
		repo   string // where nothing may appear (default acme/rules)
	}{
		{name: "not multipart", ct: "application/json", status: 415, code: apierr.UnsupportedMediaType,
			parts: func(t *testing.T) []part { return []part{metaPart(t, good)} }},
		{name: "no metadata part", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part { return fileParts([]file{rulesYAML}) }},
		{name: "metadata not JSON", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part {
				return append([]part{{form: "metadata", data: []byte("name=acme/rules")}}, fileParts([]file{rulesYAML})...)
			}},
		{name: "metadata unknown field", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part {
				return append([]part{{form: "metadata", data: []byte(`{"name":"acme/rules","version":"1.2.0","versoin":"x"}`)}}, fileParts([]file{rulesYAML})...)
			}},
		{name: "metadata field in another case", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part {
				return append([]part{{form: "metadata", data: []byte(`{"name":"acme/rules","Version":"1.2.0"}`)}}, fileParts([]file{rulesYAML})...)
			}},
		{name: "two metadata parts", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part {
				return append([]part{metaPart(t, good), metaPart(t, good)}, fileParts([]file{rulesYAML})...)
			}},
		{name: "uppercase name", status: 400, code: apierr.NameInvalid, repo: "Acme/Rules",
			edit: func(m *pack.Metadata) { m.Name = "Acme/Rules" }},
		{name: "empty name component", status: 400, code: apierr.NameInvalid, repo: "acme//rules",
			edit: func(m *pack.Metadata) { m.Name = "acme//rules" }},
		{name: "no name", status: 400, code: apierr.NameInvalid,
			edit: func(m *pack.Metadata) { m.Name = "" }},
		{name: "two-part version", status: 400, code: apierr.VersionInvalid,
			edit: func(m *pack.Metadata) { m.Version = "1.2" }},
		{name: "leading v", status: 400, code: apierr.VersionInvalid,
			edit: func(m *pack.Metadata) { m.Version = "v1.2.0" }},
		{name: "build metadata", status: 400, code: apierr.VersionInvalid,
			edit: func(m *pack.Metadata) { m.Version = "1.2.0+linux" }},
		{name: "latest", status: 400, code: apierr.VersionInvalid,
			edit: func(m *pack.Metadata) { m.Version = "latest" }},
		{name: "empty pack", status: 400, code: apierr.PackEmpty,
			parts: func(t *testing.T) []part { return []part{metaPart(t, good)} }},
		{name: "file without filename", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part { return []part{metaPart(t, good), {form: "file", data: []byte("x")}} }},
		{name: "same file twice", status: 400, code: apierr.BadRequest,
			files: []file{rulesYAML, rulesYAML}},
		{name: "path traversal", status: 400, code: apierr.BadRequest,
			files: []file{{name: "../etc/passwd", data: []byte("x")}}},
		{name: "absolute path", status: 400, code: apierr.BadRequest,
			files: []file{{name: "/etc/passwd", data: []byte("x")}}},
		{name: "unclean path", status: 400, code: apierr.BadRequest,
			files: []file{{name: "a/./b", data: []byte("x")}}},
		{name: "unknown part", status: 400, code: apierr.BadRequest,
			parts: func(t *testing.T) []part {
				return append([]part{metaPart(t, good), {form: "signature", data: []byte("x")}}, fileParts([]file{rulesYAML})...)
			}},
		{name: "bad label key", status: 400, code: apierr.BadRequest,
			edit: func(m *pack.Metadata) { m.Labels = map[string]string{"a b": "c"} }},
		{name: "control character in label value", status: 400, code: apierr.BadRequest,
			edit: func(m *pack.Metadata) { m.Labels = map[string]string{"a": "b\nc"} }},
		{name: "bad file content type", status: 400, code: apierr.BadRequest,
			files: []file{{name: "x", contentType: "not a type;;", data: []byte("x")}}},
		{name: "truncated multipart", status: 400, code: apierr.BadRequest, ct: "multipart/form-data; boundary=zzz",
			parts: func(t *testing.T) []part { return []part{metaPart(t, good)} }},
		// Every part whole, the closing delimiter's "--\r\n" missing: the
		// body was cut short, not ended (mime/multipart wraps io.EOF).
		{name: "no closing delimiter", status: 400, code: apierr.BadRequest, cut: len("--\r\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, pack.DefaultPolicy())
			if c.parts == nil {
				md, files := good, c.files
				if c.edit != nil {
					c.edit(&md)
				}
				if files == nil {
					files = []file{rulesYAML}
				}
				c.parts = func(t *testing.T) []part { return append([]part{metaPart(t, md)}, fileParts(files)...) }
			}
			body, ct := multipartBody(t, c.parts(t)...)
			body = body[:len(body)-c.cut]
			if c.ct != "" {
				ct = c.ct
			}
			w := e.do("POST", pack.Prefix, body, "Content-Type", ct)
			expectError(t, w, c.status, c.code)
			repo := c.repo
			if repo == "" {
				repo = good.Name
			}
			e.nothingPublished(repo, good.Version)
		})
	}
}

// nothingPublished checks that no version, tag or publication record of
// repo exists.
func (e *env) nothingPublished(repo, version string) {
	e.t.Helper()
	if l := decode[pack.VersionList](e.t, e.do("GET", pack.Prefix+"?status=all", nil)); len(l.Items) > 0 {
		e.t.Fatalf("a refused publish left a version: %+v", l.Items)
	}
	if _, err := e.reg.Manifest(e.t.Context(), repo, version); !errors.Is(err, oci.ErrManifestUnknown) && !errors.Is(err, oci.ErrNameInvalid) {
		e.t.Fatalf("a refused publish left tag %s:%s (%v)", repo, version, err)
	}
	if recs := e.audit("action=pack.publish"); len(recs) > 0 {
		e.t.Fatalf("a refused publish left an audit record: %+v", recs)
	}
	if recs := e.audit("action=manifest.push"); len(recs) > 0 {
		e.t.Fatalf("a refused publish pushed a manifest: %+v", recs)
	}
}

// TestPublishConflictsAndPolicy: the refusals that depend on what is
// already there or on policy.
func TestPublishConflictsAndPolicy(t *testing.T) {
	t.Run("duplicate version with other content", func(t *testing.T) {
		e := newEnv(t, pack.DefaultPolicy())
		first := e.mustPublish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, rulesYAML)
		w := e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, file{name: "rules.yaml", data: []byte("other")})
		expectError(t, w, http.StatusConflict, apierr.VersionExists)
		v := decode[pack.Version](t, e.do("GET", pack.Prefix+"/acme/rules/versions/1.0.0", nil))
		if v.Digest != first.Digest {
			t.Fatalf("the refused publish changed the version to %s", v.Digest)
		}
		// Other metadata is other content too.
		w = e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0", Description: "new"}, rulesYAML)
		expectError(t, w, http.StatusConflict, apierr.VersionExists)
	})
	t.Run("same content again is the existing version", func(t *testing.T) {
		e := newEnv(t, pack.DefaultPolicy())
		md := pack.Metadata{Name: "acme/rules", Version: "1.0.0", Labels: map[string]string{"team": "sec"}}
		first := e.mustPublish(md, rulesYAML)
		w := e.publish(md, rulesYAML)
		if w.Code != http.StatusOK {
			t.Fatalf("republish: %d %s", w.Code, w.Body)
		}
		if v := decode[pack.Version](t, w); v.Digest != first.Digest {
			t.Fatalf("republish answered %s, want %s", v.Digest, first.Digest)
		}
	})
	t.Run("tag taken by a plain image", func(t *testing.T) {
		e := newEnv(t, pack.DefaultPolicy())
		cfg := e.pushBlob("acme/rules", []byte("{}"))
		w := e.putManifest("acme/rules", "1.0.0", map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2}, "layers": []any{}})
		if w.Code != http.StatusCreated {
			t.Fatalf("plain image: %d %s", w.Code, w.Body)
		}
		expectError(t, e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, rulesYAML), http.StatusConflict, apierr.VersionExists)
	})
	t.Run("pack too large", func(t *testing.T) {
		pol := pack.DefaultPolicy()
		pol.MaxPackSize = 4096
		e := newEnv(t, pol)
		w := e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, file{name: "big", data: make([]byte, 5000)})
		expectError(t, w, http.StatusRequestEntityTooLarge, apierr.TooLarge)
		// Files under the cap whose manifest and config push it over.
		w = e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, file{name: "big", data: make([]byte, 4000)})
		expectError(t, w, http.StatusRequestEntityTooLarge, apierr.TooLarge)
		e.nothingPublished("acme/rules", "1.0.0")
		e.mustPublish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, file{name: "small", data: make([]byte, 1000)})
	})
	t.Run("file media type not allowed", func(t *testing.T) {
		pol := pack.DefaultPolicy()
		pol.AllowedLayerMediaTypes = []string{"text/yaml", "application/vnd.acme.*"}
		e := newEnv(t, pol)
		w := e.publish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, file{name: "x.sh", contentType: "application/x-sh", data: []byte("rm")})
		expectError(t, w, http.StatusForbidden, apierr.Denied)
		e.nothingPublished("acme/rules", "1.0.0")
		e.mustPublish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"},
			file{name: "a.yaml", contentType: "text/yaml", data: []byte("a")},
			file{name: "b", contentType: "application/vnd.acme.rules+json", data: []byte("{}")})
	})
}

// TestQueryRefusals: bad listing, version, lifecycle and audit requests.
func TestQueryRefusals(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	e.mustPublish(pack.Metadata{Name: "acme/rules", Version: "1.0.0"}, rulesYAML)
	lc := func(body string) []byte { return []byte(body) }
	for _, c := range []struct {
		method, path string
		body         []byte
		status       int
		code         string
	}{
		{"GET", pack.Prefix + "?status=retired", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?status=", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?limit=0", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?limit=-1", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?limit=ten", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?cursor=bm9wZQ", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?cursor=%%%", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?label=team", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?label==sec", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?name=Acme", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?stauts=all", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "?status=all&status=active", nil, 400, apierr.BadRequest},
		{"GET", pack.Prefix + "/Acme/versions", nil, 400, apierr.NameInvalid},
		{"GET", pack.Prefix + "/acme/rules/versions/1.0", nil, 400, apierr.VersionInvalid},
		{"GET", pack.Prefix + "/acme/rules/versions/v1.0.0/manifest", nil, 400, apierr.VersionInvalid},
		{"GET", pack.Prefix + "/acme/rules/versions/2.0.0", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/rules/versions/2.0.0/manifest", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/rules/versions/2.0.0/lifecycle", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/other/versions", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/other/lifecycle", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/rules", nil, 404, apierr.NotFound},
		{"GET", pack.Prefix + "/acme/rules/files", nil, 404, apierr.NotFound},
		{"DELETE", pack.Prefix + "/acme/rules/versions/1.0.0", nil, 405, apierr.MethodNotAllowed},
		{"PUT", pack.Prefix, nil, 405, apierr.MethodNotAllowed},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0", nil, 405, apierr.MethodNotAllowed},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"retired"}`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"deprecated","why":"x"}`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`deprecated`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(``), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"deprecated"}}`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"deprecated"} {"state":"archived"}`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/lifecycle", lc(`{"state":"deprecated"}]`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"deprecated","reason":"` + strings.Repeat("x", 2000) + `"}`), 400, apierr.BadRequest},
		{"POST", pack.Prefix + "/acme/rules/versions/1.0.0/lifecycle", lc(`{"state":"active"}`), 409, apierr.TransitionInvalid},
		{"POST", pack.Prefix + "/acme/rules/versions/9.0.0/lifecycle", lc(`{"state":"deprecated"}`), 404, apierr.NotFound},
		{"POST", pack.Prefix + "/acme/nope/lifecycle", lc(`{"state":"deprecated"}`), 404, apierr.NotFound},
		{"GET", "/api/v1/audit?since=yesterday", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit?limit=0", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit?cursor=xyz", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit?target=a%20b", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit?actor=me", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit/verify?deep=1", nil, 400, apierr.BadRequest},
		{"GET", "/api/v1/audit/nope", nil, 404, apierr.NotFound},
		{"DELETE", "/api/v1/audit", nil, 405, apierr.MethodNotAllowed},
		{"POST", "/api/v1/audit/verify", nil, 405, apierr.MethodNotAllowed},
	} {
		t.Run(c.method+" "+c.path[:min(len(c.path), 70)], func(t *testing.T) {
			w := e.do(c.method, c.path, c.body)
			expectError(t, w, c.status, c.code)
			if c.status == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// A limit above the maximum is clamped, not refused.
	if w := e.do("GET", pack.Prefix+"?limit=100000", nil); w.Code != http.StatusOK {
		t.Fatalf("limit above max: %d %s", w.Code, w.Body)
	}
}
