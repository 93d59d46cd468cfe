package conformance

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the tamper test edits the server's database directly
)

const packArtifactType = "application/vnd.packreg.pack.v1"

// packVersion is the pack version JSON of /api/v1/packs, as a client reads it.
type packVersion struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Size         int64  `json:"size"`
	Status       string `json:"status"`
	StatusReason string `json:"statusReason"`
	Files        []struct {
		Name      string `json:"name"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
		MediaType string `json:"mediaType"`
	} `json:"files"`
}

type packList struct {
	Items []packVersion `json:"items"`
	Next  string        `json:"next"`
}

// apiJSON sends a request to /api/v1 and decodes the answer, failing
// unless it has status want.
func (c *client) apiJSON(method, path string, hdr http.Header, body []byte, want int, out any) {
	c.t.Helper()
	resp, b := c.do(method, path, hdr, body)
	expect(c.t, resp, b, want, method+" "+path)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// publishREST publishes files (name → content) with a multipart POST.
func (c *client) publishREST(name, version string, files map[string][]byte, order []string) packVersion {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	md, _ := json.Marshal(map[string]any{"name": name, "version": version, "description": "conformance pack",
		"labels": map[string]string{"suite": "conformance"}})
	mw.WriteField("metadata", string(md))
	for _, fn := range order {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, fn))
		h.Set("Content-Type", "application/octet-stream")
		w, _ := mw.CreatePart(h)
		w.Write(files[fn])
	}
	mw.Close()
	var v packVersion
	c.apiJSON("POST", "/api/v1/packs", http.Header{"Content-Type": {mw.FormDataContentType()}}, b.Bytes(), http.StatusCreated, &v)
	return v
}

func (c *client) packs(query string) packList {
	c.t.Helper()
	var l packList
	c.apiJSON("GET", "/api/v1/packs"+query, nil, nil, http.StatusOK, &l)
	return l
}

func listed(l packList, name, version string) bool {
	for _, v := range l.Items {
		if v.Name == name && v.Version == version {
			return true
		}
	}
	return false
}

// TestPacks is issue 4 end to end: a REST publish that oras pulls
// byte-exact, an oras push the API sees as a pack, deprecation (listings,
// Warning header in oras, crane and raw HTTP), archival (pulls refused),
// and the audit trail that verifies until a row is edited in the
// database behind the server's back.
func TestPacks(t *testing.T) {
	oras := needTool(t, "oras")
	crane := needTool(t, "crane")
	s := startServer(t)
	s.dumpLogOnFailure()
	c := newClient(t, s.URL)
	tl := newTool(t)
	R := s.Addr
	packreg := func(want int, args ...string) string {
		t.Helper()
		r, err := tl.try(nil, packregBin, append(args, "--server", s.URL)...)
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(interface{ ExitCode() int }); ok {
				code = ee.ExitCode()
			}
		}
		if code != want {
			t.Fatalf("packreg %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, r.Stdout, r.Stderr)
		}
		return r.Stdout + r.Stderr
	}

	// 1. REST publish: name, version, digest and files as sent.
	files := map[string][]byte{
		"rules.yaml":         []byte("rules:\n  - deny: everything\n"),
		"data/table.bin":     randomBytes(t, 2<<20+3),
		"policies/main.rego": []byte("package main\n\ndefault allow := false\n"),
	}
	order := []string{"rules.yaml", "data/table.bin", "policies/main.rego"}
	v := c.publishREST("acme/rules", "1.2.0", files, order)
	if v.Name != "acme/rules" || v.Version != "1.2.0" || v.ArtifactType != packArtifactType || v.Status != "active" || len(v.Files) != len(order) {
		t.Fatalf("published %+v", v)
	}
	if d := c.manifestDigest("acme/rules", "1.2.0"); d != v.Digest {
		t.Fatalf("API digest %s, registry serves %s", v.Digest, d)
	}
	for i, f := range v.Files {
		if f.Name != order[i] || f.Digest != sha256Digest(files[order[i]]) || f.Size != int64(len(files[order[i]])) {
			t.Fatalf("file %d = %+v, want %s %s", i, f, order[i], sha256Digest(files[order[i]]))
		}
	}

	// 2. oras pull writes the original files, byte-exact.
	tl.run(oras, "pull", "--plain-http", "-o", "pulled", R+"/acme/rules:1.2.0")
	for name, data := range files {
		equalFile(t, tl.path("pulled", filepath.FromSlash(name)), data)
	}

	// 3. oras push with the pack artifact type is a pack version in the API.
	tl.write("push/pol.yaml", []byte("allow: [ops]\n"))
	out := tl.run(oras, "push", "--plain-http", R+"/acme/policies:0.3.1", "--artifact-type", packArtifactType,
		"--annotation", "org.opencontainers.image.description=pushed by oras", "push/pol.yaml:text/yaml").Stdout
	orasDigest := digestRE.FindString(out[strings.Index(out, "Digest:"):])
	var pv packVersion
	c.apiJSON("GET", "/api/v1/packs/acme/policies/versions/0.3.1", nil, nil, http.StatusOK, &pv)
	if pv.Digest != orasDigest || len(pv.Files) != 1 || pv.Files[0].Name != "push/pol.yaml" || pv.Files[0].MediaType != "text/yaml" ||
		pv.Files[0].Digest != sha256Digest([]byte("allow: [ops]\n")) {
		t.Fatalf("oras push (digest %s) indexed as %+v", orasDigest, pv)
	}
	if !listed(c.packs("?name=acme/"), "acme/policies", "0.3.1") {
		t.Fatal("the oras-pushed pack is not in the listing")
	}
	// Versions are immutable: oras cannot move one to other content.
	tl.write("push/pol.yaml", []byte("allow: [everyone]\n"))
	if r, err := tl.try(nil, oras, "push", "--plain-http", R+"/acme/policies:0.3.1", "--artifact-type", packArtifactType, "push/pol.yaml"); err == nil ||
		!strings.Contains(r.Stderr, "immutable") {
		t.Fatalf("re-push of a version with other content: %v\n%s", err, r.Stderr)
	}

	// 4. Deprecation: out of the active listing, under deprecated, still
	// pulled, with the warning every client shows.
	packreg(0, "pack", "deprecate", "acme/rules:1.2.0", "--reason", "use 2.0.0")
	if listed(c.packs(""), "acme/rules", "1.2.0") || !listed(c.packs("?status=deprecated"), "acme/rules", "1.2.0") ||
		!listed(c.packs("?status=all"), "acme/rules", "1.2.0") {
		t.Fatal("deprecated version listed wrongly")
	}
	const warning = `pack acme/rules:1.2.0 is deprecated: use 2.0.0`
	resp, body := c.do("GET", "/v2/acme/rules/manifests/1.2.0", http.Header{"Accept": {mtOCIManifest}}, nil)
	expect(t, resp, body, http.StatusOK, "deprecated manifest")
	if got := resp.Header.Get("Warning"); got != `299 - "`+warning+`"` {
		t.Fatalf("Warning header %q", got)
	}
	r := tl.run(oras, "pull", "--plain-http", "-o", "pulled-again", R+"/acme/rules:1.2.0")
	if !strings.Contains(r.Stderr+r.Stdout, warning) {
		t.Fatalf("oras pull does not show the warning:\n%s\n%s", r.Stdout, r.Stderr)
	}
	equalFile(t, tl.path("pulled-again", "rules.yaml"), files["rules.yaml"])
	if r := tl.run(crane, "manifest", "--insecure", R+"/acme/rules:1.2.0"); !strings.Contains(r.Stderr, warning) {
		t.Fatalf("crane manifest does not show the warning:\n%s", r.Stderr)
	}

	// 5. Archival: pulls are refused, by tag and by digest.
	packreg(0, "pack", "archive", "acme/rules:1.2.0", "--reason", "withdrawn")
	if r, err := tl.try(nil, oras, "pull", "--plain-http", "-o", "refused", R+"/acme/rules:1.2.0"); err == nil || !strings.Contains(r.Stderr, "denied") {
		t.Fatalf("oras pull of an archived version: %v\n%s", err, r.Stderr)
	}
	for _, ref := range []string{"1.2.0", v.Digest} {
		resp, body := c.do("GET", "/v2/acme/rules/manifests/"+ref, http.Header{"Accept": {mtOCIManifest}}, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"DENIED"`) || !strings.Contains(string(body), "archived") {
			t.Fatalf("GET archived %s: %d %s", ref, resp.StatusCode, body)
		}
	}
	if !listed(c.packs("?status=archived"), "acme/rules", "1.2.0") || listed(c.packs("?status=deprecated"), "acme/rules", "1.2.0") {
		t.Fatal("archived version listed wrongly")
	}

	// 6. The audit trail verifies, then an edited row breaks it.
	if out := packreg(0, "audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}
	out = packreg(0, "audit", "list", "--target", "acme/rules:1.2.0", "--json")
	for _, action := range []string{"tag.move", "pack.publish", "pack.lifecycle"} {
		if !strings.Contains(out, `"action": "`+action+`"`) {
			t.Fatalf("no %s record for acme/rules:1.2.0:\n%s", action, out)
		}
	}
	id := tamper(t, filepath.Join(s.Data, "packreg.db"))
	out = packreg(1, "audit", "verify")
	if !strings.Contains(out, fmt.Sprintf("BROKEN at record %d", id)) {
		t.Fatalf("audit verify after editing record %d: %s", id, out)
	}
	var ver struct {
		OK          bool  `json:"ok"`
		FirstBroken int64 `json:"firstBroken"`
	}
	c.apiJSON("GET", "/api/v1/audit/verify", nil, nil, http.StatusOK, &ver)
	if ver.OK || ver.FirstBroken != id {
		t.Fatalf("GET /api/v1/audit/verify after the edit: %+v", ver)
	}
}

// tamper rewrites who published acme/rules:1.2.0 in the server's SQLite
// database, as someone with access to the file could, and returns the
// record's id.
func tamper(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var id int64
	err = db.QueryRowContext(ctx, `SELECT id FROM audit_log WHERE action = 'pack.publish' AND target = ?`,
		"acme/rules:1.2.0").Scan(&id)
	if err != nil {
		t.Fatalf("finding the record to edit: %v", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE audit_log SET actor = 'trusted-release-bot' WHERE id = ?`, id); err != nil {
		t.Fatalf("editing record %d: %v", id, err)
	}
	return id
}
