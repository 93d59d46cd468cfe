package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawResponse is an answer read off the wire.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an OCI envelope or of an /api/v1 error.
func (r rawResponse) code() string {
	var env struct {
		Errors []struct{ Code string }
		Error  *struct{ Code string }
	}
	if json.Unmarshal(r.body, &env) != nil {
		return ""
	}
	if len(env.Errors) > 0 {
		return env.Errors[0].Code
	}
	if env.Error != nil {
		return env.Error.Code
	}
	return ""
}

// rawRequest writes one HTTP/1.1 request byte for byte (the target as
// given, never cleaned or re-escaped, the Host as given) on a new
// connection and reads the answer.
func rawRequest(t testing.TB, addr, method, target, host string, hdr http.Header, body []byte) rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, host, len(body))
	hdr.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: rb}
}

// publishForm is a REST publish body with one file, and its type.
func publishForm(name, version string, data []byte) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("metadata", `{"name":"`+name+`","version":"`+version+`"}`)
	fw, _ := mw.CreateFormFile("file", "file.bin")
	fw.Write(data)
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// TestEdgeRawPaths sends the request paths Go's and most clients would
// clean: nothing is redirected (the mux used to answer 307 to the cleaned
// path, another repository's, on writes too), each is refused with the
// code of its class, and nothing lands anywhere.
func TestEdgeRawPaths(t *testing.T) {
	s := startServer(t)
	s.dumpLogOnFailure()
	c := newClient(t, s.URL)
	img := makeImage(t, "edge")
	c.pushImage("edge/victim", "v1", img)
	loc := func() string {
		resp, body := c.do("POST", "/v2/edge/victim/blobs/uploads/", nil, nil)
		expect(t, resp, body, http.StatusAccepted, "start upload")
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Path
	}()
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	mt := http.Header{"Content-Type": {mtOCIManifest}}
	for _, r := range []struct {
		method, target string
		body           []byte
		status         int
		code           string
	}{
		{"PUT", "/v2/edge/victim/../attacker/manifests/v1", img.Manifest, 400, "NAME_INVALID"},
		{"PUT", "/v2/edge/attacker/./manifests/v1", img.Manifest, 400, "NAME_INVALID"},
		{"PUT", "/v2/edge//attacker/manifests/v1", img.Manifest, 400, "NAME_INVALID"},
		{"PUT", "/v2/edge/attacker//manifests/v1", img.Manifest, 400, "NAME_INVALID"},
		{"PUT", "/v2/edge/attacker/%2e%2e/victim/manifests/v1", img.Manifest, 400, "NAME_INVALID"},
		{"POST", "/v2/edge/victim/../attacker/blobs/uploads/", nil, 400, "NAME_INVALID"},
		{"DELETE", "/v2/edge/attacker/../victim/manifests/v1", nil, 400, "NAME_INVALID"},
		{"DELETE", "/v2/edge/attacker/../victim/manifests/" + img.Digest, nil, 400, "NAME_INVALID"},
		{"GET", "/v2/edge/attacker/../victim/manifests/v1", nil, 400, "NAME_INVALID"},
		{"GET", "/v2/edge/victim/tags/../../victim/tags/list", nil, 400, "NAME_INVALID"},
		{"GET", "/v2//edge/victim/tags/list", nil, 400, "NAME_INVALID"},
		// A tag is one component: an encoded slash is a bad tag.
		{"PUT", "/v2/edge/victim/manifests/v1%2Fx", img.Manifest, 400, "MANIFEST_INVALID"},
		{"PUT", "/v2/edge/victim/manifests/x%2F..%2F..%2Fattacker%2Fmanifests%2Fv1", img.Manifest, 400, "MANIFEST_INVALID"},
		// An upload id is one component too: anything but an id is unknown.
		{"PATCH", "/v2/edge/victim/blobs/uploads/..%2F..%2Fattacker%2Fblobs%2Fuploads%2F" + id, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"GET", "/v2/edge/victim/blobs/uploads/..%2F" + id, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PUT", "/v2/edge/victim/blobs/uploads/" + id + "%2F?digest=" + img.LayerDigest, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"DELETE", "/v2/edge/victim/blobs/uploads/%2e%2e%2f" + id, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		// The APIs never redirect either.
		{"POST", "/api/v1/packs/edge//victim/lifecycle", []byte(`{"state":"archived"}`), 400, "BAD_REQUEST"},
		{"POST", "/api/v1/keys/x/../../packs/edge/victim/lifecycle", []byte(`{"state":"archived"}`), 400, "BAD_REQUEST"},
		{"GET", "/api/v1/keys//x", nil, 400, "BAD_REQUEST"},
		{"GET", "/api/v1/../../healthz", nil, 400, "BAD_REQUEST"},
	} {
		hdr := mt
		if strings.HasPrefix(r.target, "/api/") {
			hdr = http.Header{"Content-Type": {"application/json"}}
		}
		resp := rawRequest(t, s.Addr, r.method, r.target, s.Addr, hdr, r.body)
		if resp.status >= 300 && resp.status < 400 || resp.header.Get("Location") != "" {
			t.Errorf("%s %s: redirected: %d Location %q", r.method, r.target, resp.status, resp.header.Get("Location"))
			continue
		}
		if resp.status != r.status || resp.code() != r.code {
			t.Errorf("%s %s: %d %s, want %d %s; %s", r.method, r.target, resp.status, resp.code(), r.status, r.code, clip(string(resp.body)))
		}
	}
	// Nothing landed: no attacker repository, the victim intact, its upload
	// where it was.
	if resp, body := c.do("GET", "/v2/edge/attacker/tags/list", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("edge/attacker exists: %d %s", resp.StatusCode, body)
	}
	if _, d, status := c.getManifest("edge/victim", "v1"); status != http.StatusOK || d != img.Digest {
		t.Errorf("edge/victim:v1 is %d %s after the bad requests", status, d)
	}
	resp, body := c.do("GET", loc, nil, nil)
	expect(t, resp, body, http.StatusNoContent, "upload status")
}

// TestEdgeBrowsers: what a web page in a browser on the registry's
// machine can send. A foreign Host (DNS rebinding) is refused on every
// route while the server is anonymous on loopback, except the names in
// server.hosts; cross-site writes are refused on every route; JSON bodies
// need their Content-Type. Real clients send none of the browser headers.
func TestEdgeBrowsers(t *testing.T) {
	s := startServer(t, "--config", writeConfig(t, "server: {hosts: [registry.test]}\n"))
	s.dumpLogOnFailure()
	_, port, _ := net.SplitHostPort(s.Addr)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	mirror := []byte(`{"name":"exfil","url":"http://127.0.0.1:1"}`)

	for _, host := range []string{s.Addr, "localhost:" + port, "[::1]:" + port, "registry.test:" + port} {
		if r := rawRequest(t, s.Addr, "GET", "/v2/", host, nil, nil); r.status != 200 {
			t.Errorf("Host %s: %d %s", host, r.status, r.body)
		}
	}
	for _, host := range []string{"rebind.example:" + port, "0.0.0.0:" + port, "registry.test.rebind.example:" + port} {
		for _, r := range []struct {
			method, target string
			hdr            http.Header
			body           []byte
		}{
			{"GET", "/v2/_catalog", nil, nil},
			{"GET", "/api/v1/packs", nil, nil},
			{"POST", "/v2/edge/rebind/blobs/uploads/", nil, nil},
			{"POST", "/api/v1/mirrors", jsonHdr, mirror},
		} {
			resp := rawRequest(t, s.Addr, r.method, r.target, host, r.hdr, r.body)
			if resp.status != 403 || resp.code() != "DENIED" || !strings.Contains(string(resp.body), "server.hosts") {
				t.Errorf("%s %s Host %s: %d %s", r.method, r.target, host, resp.status, resp.body)
			}
		}
	}

	form, formType := publishForm("edge/csrf", "1.0.0", []byte("rules: []\n"))
	for _, r := range []struct {
		method, target string
		hdr            http.Header
		body           []byte
	}{
		{"POST", "/v2/edge/csrf/blobs/uploads/", nil, nil},
		{"PUT", "/v2/edge/csrf/manifests/v1", http.Header{"Content-Type": {mtOCIManifest}}, []byte(`{}`)},
		{"POST", "/api/v1/packs", http.Header{"Content-Type": {formType}}, form},
		{"POST", "/api/v1/mirrors", http.Header{"Content-Type": {"text/plain"}}, mirror},
		{"POST", "/api/v1/mirrors", jsonHdr, mirror},
	} {
		for _, browser := range []http.Header{
			{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
			{"Origin": {"https://evil.example"}},
			{"Sec-Fetch-Site": {"same-site"}},
		} {
			hdr := browser.Clone()
			for k, v := range r.hdr {
				hdr[k] = v
			}
			resp := rawRequest(t, s.Addr, r.method, r.target, s.Addr, hdr, r.body)
			if resp.status != 403 || resp.code() != "DENIED" {
				t.Errorf("cross-site %s %s (%v): %d %s", r.method, r.target, browser, resp.status, clip(string(resp.body)))
			}
		}
	}
	// A JSON body sent as text/plain (what a page can send without a
	// preflight) is 415, from any origin.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", formType, ""} {
		resp := rawRequest(t, s.Addr, "POST", "/api/v1/mirrors", s.Addr, http.Header{"Content-Type": {ct}}, mirror)
		if resp.status != 415 || resp.code() != "UNSUPPORTED_MEDIA_TYPE" {
			t.Errorf("mirror as %q: %d %s", ct, resp.status, resp.body)
		}
	}
	c := newClient(t, s.URL)
	var mirrors struct{ Items []json.RawMessage }
	c.apiJSON("GET", "/api/v1/mirrors", nil, nil, http.StatusOK, &mirrors)
	resp, catalog := c.do("GET", "/v2/_catalog", nil, nil)
	if len(mirrors.Items) != 0 || strings.Contains(string(catalog), "edge/") || resp.StatusCode != 200 {
		t.Fatalf("refused requests changed something: mirrors %s, catalog %s", mirrors.Items, catalog)
	}
	// The same requests from a client (no browser headers) go through.
	c.apiJSON("POST", "/api/v1/mirrors", jsonHdr, mirror, http.StatusCreated, nil)
	c.apiJSON("POST", "/api/v1/packs", http.Header{"Content-Type": {formType}}, form, http.StatusCreated, nil)
	c.pushImage("edge/client", "v1", makeImage(t, "client"))
}

// TestEdgeIndexDepth: over the wire, indexes nest 8 levels and no more.
func TestEdgeIndexDepth(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.URL)
	img := makeImage(t, "deep")
	c.pushImage("edge/deep", "leaf", img)
	child, childType, childSize := img.Digest, mtOCIManifest, len(img.Manifest)
	for level := 1; level <= 20; level++ {
		b := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
			mtOCIIndex, childType, child, childSize)
		resp, body := c.do("PUT", fmt.Sprintf("/v2/edge/deep/manifests/l%d", level), http.Header{"Content-Type": {mtOCIIndex}}, b)
		if level <= 8 {
			expect(t, resp, body, http.StatusCreated, fmt.Sprintf("index level %d", level))
			child, childType, childSize = sha256Digest(b), mtOCIIndex, len(b)
			continue
		}
		// Level 9 is too deep; it is never stored, so each further level
		// lists a missing child.
		if resp.StatusCode != 400 || level == 9 && !strings.Contains(string(body), "MANIFEST_INVALID") {
			t.Fatalf("index level %d: %d %s, want 400 (MANIFEST_INVALID at level 9)", level, resp.StatusCode, body)
		}
		child, childSize = sha256Digest(b), len(b)
	}
}

// TestEdgePublishBounds: packs.max_publish_size caps a REST publish even
// without a pack size policy, and its files wait under DATA/spool, which
// is empty once the request is answered.
func TestEdgePublishBounds(t *testing.T) {
	s := startServer(t, "--config", writeConfig(t, "packs: {max_publish_size: 3145728, policy: {max_pack_size: 0}}\n"))
	c := newClient(t, s.URL)
	publish := func(version string, size int) (*http.Response, []byte) {
		form, formType := publishForm("edge/big", version, bytes.Repeat([]byte{'b'}, size))
		return c.do("POST", "/api/v1/packs", http.Header{"Content-Type": {formType}}, form)
	}
	resp, body := publish("1.0.0", 4<<20)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "TOO_LARGE") {
		t.Fatalf("4 MiB publish, 3 MiB cap: %d %s", resp.StatusCode, body)
	}
	resp, body = publish("1.0.1", 2<<20)
	expect(t, resp, body, http.StatusCreated, "2 MiB publish")
	if left, err := os.ReadDir(filepath.Join(s.Data, "spool")); err != nil || len(left) != 0 {
		t.Errorf("DATA/spool after the publishes: %v entries, %v", len(left), err)
	}
}

// TestEdgeKeywordValueDSN: a keyword/value PostgreSQL DSN works, and its
// password appears in no output: config print, the log, a failed start.
func TestEdgeKeywordValueDSN(t *testing.T) {
	base := needEnv(t, "PACKREG_TEST_POSTGRES")
	u, err := url.Parse(isolatedPostgres(t, base))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "kv-hunter2-secret"
	// The test cluster trusts loopback: any password is accepted, and none
	// may be shown.
	dsn := fmt.Sprintf("host=%s port=%s user=%s password='%s' dbname=%s sslmode=disable",
		u.Hostname(), u.Port(), u.User.Username(), secret, strings.TrimPrefix(u.Path, "/"))
	out, err := exec.Command(packregBin, "config", "print", "--data", t.TempDir(), "--database", dsn).CombinedOutput()
	if err != nil || strings.Contains(string(out), secret) || !strings.Contains(string(out), "password=xxxxx") {
		t.Errorf("config print (%v):\n%s", err, out)
	}
	s := startServer(t, "--database", dsn)
	c := newClient(t, s.URL)
	c.pushImage("edge/kv", "v1", makeImage(t, "kv"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := strings.Replace(dsn, "port="+u.Port(), "port=1", 1)
	failed, err := exec.CommandContext(ctx, packregBin, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--database", bad).CombinedOutput()
	if err == nil || strings.Contains(string(failed), secret) || !strings.Contains(string(failed), "password=xxxxx") {
		t.Errorf("serve on an unreachable database (%v):\n%s", err, failed)
	}
	s.stop()
	log, _ := os.ReadFile(s.logPath)
	if strings.Contains(string(log), secret) || !strings.Contains(string(log), "password=xxxxx") {
		t.Errorf("the log shows the DSN unredacted, or not at all:\n%s", clip(string(log)))
	}
}
