package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// edgeApp wires the whole server (packs, attest, mirrors, registry) over
// the embedded stores, as serve does, and returns its handler.
func edgeApp(t *testing.T, change func(*Config)) http.Handler {
	t.Helper()
	return testApp(t, change).handler
}

// testApp is edgeApp's whole app.
func testApp(t *testing.T, change func(*Config)) *app {
	t.Helper()
	a, _ := restartableApp(t, change)
	return a
}

// restartableApp is testApp with the close of its stores, for a test that
// starts another app on the same data: a SQLite database serves one
// process at a time (sqlite.Claim).
func restartableApp(t *testing.T, change func(*Config)) (*app, func()) {
	t.Helper()
	c := DefaultConfig()
	c.Data = t.TempDir()
	c.Mirrors.Worker = false
	if change != nil {
		change(&c)
	}
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := openStores(t.Context(), c, log)
	if err != nil {
		t.Fatal(err)
	}
	closeStores := sync.OnceFunc(func() { st.Close() })
	t.Cleanup(closeStores)
	ob, err := newObserver(c, log)
	if err != nil {
		t.Fatal(err)
	}
	ob.watchStores(st)
	var draining atomic.Bool
	a, err := wire(t.Context(), st, c, log, &draining, ob)
	if err != nil {
		t.Fatal(err)
	}
	return a, closeStores
}

// publishForm is a publish request body with one file, and its type.
func publishForm(name, version string, data []byte) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("metadata", `{"name":"`+name+`","version":"`+version+`"}`)
	fw, _ := mw.CreateFormFile("file", "file.bin")
	fw.Write(data)
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// send serves one request with the raw target (never cleaned) and Host
// 127.0.0.1:5000 unless hdr sets "Host".
func send(h http.Handler, method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Host = "127.0.0.1:5000"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// code returns the error code of an OCI envelope or an /api/v1 error.
func code(w *httptest.ResponseRecorder) string {
	var env struct {
		Errors []struct{ Code string }
		Error  *struct{ Code string }
	}
	if json.Unmarshal(w.Body.Bytes(), &env) != nil {
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

func want(t *testing.T, w *httptest.ResponseRecorder, status int, errCode, what string) {
	t.Helper()
	if w.Code != status || errCode != "" && code(w) != errCode {
		t.Fatalf("%s: %d %q, want %d %s; body %s", what, w.Code, code(w), status, errCode, w.Body.String())
	}
}

// TestEdgeNeverRedirects: unclean paths reach the route they name and are
// refused there; nothing is ever redirected (the outer mux used to answer
// 307 to the cleaned path, another repository's, on writes too).
func TestEdgeNeverRedirects(t *testing.T) {
	h := edgeApp(t, nil)
	for _, tc := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", "/v2/a/../b/tags/list", 400, "NAME_INVALID"},
		{"PUT", "/v2/a/../b/manifests/t", 400, "NAME_INVALID"},
		{"POST", "/v2/victim/../attacker/blobs/uploads/", 400, "NAME_INVALID"},
		{"DELETE", "/v2/a/./b/manifests/t", 400, "NAME_INVALID"},
		{"PATCH", "/v2/a/%2e%2e/b/blobs/uploads/x", 400, "NAME_INVALID"},
		{"PUT", "/v2/a//b/manifests/t", 400, "NAME_INVALID"},
		{"PUT", "/v2/a//manifests/t", 400, "NAME_INVALID"},
		{"POST", "/v2/a//blobs/uploads/", 400, "NAME_INVALID"},
		{"GET", "/v2//a/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/../v2/a/tags/list", 400, "NAME_INVALID"},
		{"PUT", "/v2/a/manifests/v1%2Fx", 400, "MANIFEST_INVALID"},
		{"GET", "/v2/a/blobs/uploads/..%2F..%2Fx", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PATCH", "/v2/a/blobs/uploads/..%2F..%2Fx", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"POST", "/api/v1/packs//x/lifecycle", 400, "BAD_REQUEST"},
		{"GET", "/api/v1/packs/a/../b/versions", 400, "BAD_REQUEST"},
		{"GET", "/api/v1/packs/../keys", 400, "BAD_REQUEST"},
		{"GET", "/api/v1/packs/a%2F..%2Fb/versions", 400, "NAME_INVALID"},
		// An encoded slash is no separator: a bad name, never a/b.
		{"GET", "/v2/a%2Fb/manifests/t", 400, "NAME_INVALID"},
		{"GET", "/api/v1/packs/a%2Fb/versions", 400, "NAME_INVALID"},
		{"POST", "/api/v1/packs/a%2fb/lifecycle", 400, "NAME_INVALID"},
		{"GET", "/api/v1/packs/a%2Fb/versions/1.0.0/signatures", 400, "NAME_INVALID"},
		{"GET", "/api/v1/keys/", 404, "NOT_FOUND"},
		{"POST", "/api/v1/keys/", 404, "NOT_FOUND"},
		{"GET", "/api/v1/keys//x", 400, "BAD_REQUEST"},
		{"POST", "/api/v1/keys/x/./retire", 400, "BAD_REQUEST"},
		{"GET", "/api/v1/keys/../../v2/", 400, "BAD_REQUEST"},
		{"POST", "/api/v1/mirrors/../upstreams", 400, "BAD_REQUEST"},
		{"GET", "/api/v1/parity/.", 400, "BAD_REQUEST"},
		{"GET", "/healthz/", 404, ""},
		{"GET", "//healthz", 400, ""},
		{"GET", "/./healthz", 400, ""},
		{"GET", "/api/v1/../../healthz", 400, "BAD_REQUEST"},
	} {
		w := send(h, tc.method, tc.target, nil, "Content-Type", "application/json")
		if w.Code >= 300 && w.Code < 400 || w.Header().Get("Location") != "" {
			t.Errorf("%s %s: redirected: %d Location %q", tc.method, tc.target, w.Code, w.Header().Get("Location"))
			continue
		}
		if w.Code != tc.status || tc.code != "" && code(w) != tc.code {
			t.Errorf("%s %s: %d %q, want %d %s; body %s", tc.method, tc.target, w.Code, code(w), tc.status, tc.code, w.Body.String())
		}
	}
	// The server's own endpoints answer GET and HEAD only.
	want(t, send(h, "GET", "/healthz", nil), 200, "", "GET /healthz")
	want(t, send(h, "HEAD", "/readyz", nil), 200, "", "HEAD /readyz")
	if w := send(h, "POST", "/healthz", nil); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /healthz: %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestEdgeHost: anonymous on loopback, only loopback names and
// server.hosts are served (DNS rebinding); beyond loopback the check is off.
func TestEdgeHost(t *testing.T) {
	h := edgeApp(t, func(c *Config) { c.Server.Hosts = []string{"registry.internal", "10.1.2.3"} })
	for _, host := range []string{"127.0.0.1:5000", "127.0.0.1", "localhost:5000", "LocalHost", "localhost.:5000",
		"[::1]:5000", "[::1]", "127.9.8.7:1", "registry.internal:5000", "REGISTRY.internal", "10.1.2.3:5000"} {
		want(t, send(h, "GET", "/v2/", nil, "Host", host), 200, "", "GET /v2/ Host "+host)
	}
	for _, host := range []string{"evil.example:5000", "evil.example", "0.0.0.0:5000", "", "localhost.evil.example",
		"127.0.0.1.nip.io:5000", "registry.internal.evil.example", "10.1.2.4", "[::2]:5000", "[fe80::1]"} {
		for _, r := range []struct{ method, target, code string }{
			{"GET", "/v2/", "DENIED"},
			{"GET", "/v2/_catalog", "DENIED"},
			{"POST", "/v2/a/blobs/uploads/", "DENIED"},
			{"GET", "/api/v1/packs", "DENIED"},
			{"POST", "/api/v1/keys", "DENIED"},
			{"GET", "/healthz", "DENIED"},
		} {
			w := send(h, r.method, r.target, []byte(`{}`), "Host", host, "Content-Type", "application/json")
			want(t, w, 403, r.code, r.method+" "+r.target+" Host "+host)
			if !strings.Contains(w.Body.String(), "server.hosts") {
				t.Errorf("Host %q: the refusal does not say what to do: %s", host, w.Body.String())
			}
		}
	}
	// The refusal takes the shape of the route.
	if w := send(h, "GET", "/api/v1/packs", nil, "Host", "evil.example"); !strings.Contains(w.Body.String(), `"error"`) {
		t.Errorf("/api/v1 refusal is not the API error shape: %s", w.Body.String())
	}
	if w := send(h, "GET", "/v2/", nil, "Host", "evil.example"); !strings.Contains(w.Body.String(), `"errors"`) {
		t.Errorf("/v2/ refusal is not the OCI envelope: %s", w.Body.String())
	}

	open := edgeApp(t, func(c *Config) { c.Addr = "0.0.0.0:5000"; c.AllowAnonymous = true })
	want(t, send(open, "GET", "/v2/", nil, "Host", "registry.example.com"), 200, "", "non-loopback server, any Host")
}

// TestEdgeCrossOrigin: a browser's cross-site state-changing request is
// refused on every route and changes nothing; the same request without
// browser headers (every real client) goes through.
func TestEdgeCrossOrigin(t *testing.T) {
	h := edgeApp(t, nil)
	form, formType := publishForm("csrf/pack", "1.0.0", []byte("rules: []\n"))
	key := `{"name":"evil","pem":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"}`
	mirror := `{"name":"exfil","url":"http://127.0.0.1:1"}`
	for _, r := range []struct {
		method, target, ct string
		body               []byte
	}{
		{"POST", "/v2/csrf/blobs/uploads/", "", nil},
		{"PUT", "/v2/csrf/manifests/t", "application/vnd.oci.image.manifest.v1+json", []byte(`{}`)},
		{"DELETE", "/v2/csrf/manifests/t", "", nil},
		{"POST", "/api/v1/packs", formType, form},
		{"POST", "/api/v1/keys", "text/plain", []byte(key)},
		{"POST", "/api/v1/mirrors", "application/json", []byte(mirror)},
		{"POST", "/api/v1/packs/csrf/pack/lifecycle", "application/json", []byte(`{"state":"archived"}`)},
	} {
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
			{"Origin", "http://evil.example"},
			{"Origin", "null"},
			{"Sec-Fetch-Site", "cross-site", "Origin", "http://127.0.0.1:5000"},
		} {
			w := send(h, r.method, r.target, r.body, append([]string{"Content-Type", r.ct}, hdr...)...)
			want(t, w, 403, "DENIED", r.method+" "+r.target+" with "+strings.Join(hdr, ": "))
		}
	}
	// Nothing changed.
	want(t, send(h, "GET", "/v2/_catalog", nil), 200, "", "catalog")
	if body := send(h, "GET", "/v2/_catalog", nil).Body.String(); strings.Contains(body, "csrf") {
		t.Errorf("a refused request created a repository: %s", body)
	}
	if body := send(h, "GET", "/api/v1/keys", nil).Body.String(); strings.Contains(body, "evil") {
		t.Errorf("a refused request added a key: %s", body)
	}
	if body := send(h, "GET", "/api/v1/mirrors", nil).Body.String(); strings.Contains(body, "exfil") {
		t.Errorf("a refused request added a mirror: %s", body)
	}

	// Same origin, reads, and clients without browser headers go through.
	want(t, send(h, "POST", "/v2/csrf/blobs/uploads/", nil, "Sec-Fetch-Site", "same-origin"), 202, "", "same-origin POST")
	want(t, send(h, "POST", "/v2/csrf/blobs/uploads/", nil, "Origin", "http://127.0.0.1:5000"), 202, "", "Origin = Host")
	want(t, send(h, "GET", "/v2/", nil, "Sec-Fetch-Site", "cross-site"), 200, "", "cross-site GET")
	want(t, send(h, "POST", "/v2/csrf/blobs/uploads/", nil), 202, "", "client POST")
	want(t, send(h, "POST", "/api/v1/packs", form, "Content-Type", formType), 201, "", "client publish")
	want(t, send(h, "POST", "/api/v1/mirrors", []byte(mirror), "Content-Type", "application/json"), 201, "", "client mirror")
}

// TestEdgeJSONBodies: JSON bodies of /api/v1 need Content-Type
// application/json (415 otherwise, nothing changes); publish keeps
// multipart/form-data; a request without a body needs no type.
func TestEdgeJSONBodies(t *testing.T) {
	h := edgeApp(t, nil)
	form, formType := publishForm("json/pack", "1.0.0", []byte("rules: []\n"))
	want(t, send(h, "POST", "/api/v1/packs", form, "Content-Type", formType), 201, "", "publish")

	mirror := []byte(`{"name":"m1","url":"http://127.0.0.1:1"}`)
	lifecycle := []byte(`{"state":"deprecated","reason":"csrf"}`)
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
		formType, "application/jsonx", "application/json-patch+json", "json"} {
		for _, r := range []struct {
			method, target string
			body           []byte
		}{
			{"POST", "/api/v1/mirrors", mirror},
			{"POST", "/api/v1/keys", []byte(`{"name":"k","pem":"x"}`)},
			{"POST", "/api/v1/packs/json/pack/versions/1.0.0/lifecycle", lifecycle},
			{"POST", "/api/v1/packs/json/pack/lifecycle", lifecycle},
			{"POST", "/api/v1/packs/json/pack/versions/1.0.0/signatures", []byte(`{"payload":"","signature":""}`)},
			{"POST", "/api/v1/packs/json/pack/versions/1.0.0/attestations", []byte(`{"payloadType":"x"}`)},
			{"POST", "/api/v1/parity", []byte(`{}`)},
		} {
			w := send(h, r.method, r.target, r.body, "Content-Type", ct)
			want(t, w, 415, "UNSUPPORTED_MEDIA_TYPE", r.method+" "+r.target+" as "+ct)
		}
	}
	// A JSON publish is not a publish.
	want(t, send(h, "POST", "/api/v1/packs", []byte(`{"name":"json/other","version":"1.0.0"}`), "Content-Type", "text/plain"),
		415, "UNSUPPORTED_MEDIA_TYPE", "publish as text/plain")
	// Nothing changed.
	if body := send(h, "GET", "/api/v1/mirrors", nil).Body.String(); strings.Contains(body, "m1") {
		t.Errorf("a refused request added a mirror: %s", body)
	}
	if body := send(h, "GET", "/api/v1/packs/json/pack/versions/1.0.0", nil).Body.String(); !strings.Contains(body, `"status": "active"`) {
		t.Errorf("a refused request changed the lifecycle: %s", body)
	}
	// The right type goes through, parameters allowed.
	want(t, send(h, "POST", "/api/v1/packs/json/pack/versions/1.0.0/lifecycle", lifecycle, "Content-Type", "application/json; charset=utf-8"),
		200, "", "lifecycle as JSON")
	want(t, send(h, "POST", "/api/v1/mirrors", mirror, "Content-Type", "Application/JSON"), 201, "", "mirror as JSON")
	// No body, no type needed.
	want(t, send(h, "POST", "/api/v1/packs/json/pack/versions/1.0.0/verification", nil), 200, "", "bodiless POST")
}

// TestEdgeKeepsRequestLog: refusals are logged like every answer.
func TestEdgeKeepsRequestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	reg := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "registry") })
	var draining atomic.Bool
	h := newHandler(newRouteTable(fakeOCI{reg}, &stores{}, &draining, log, nil, nil, nil, nil), log, edgeSettings{checkHost: true}, nil)
	w := send(h, "POST", "/v2/x/blobs/uploads/", nil, "Host", "evil.example")
	want(t, w, 403, "DENIED", "foreign host")
	if w.Header().Get("X-Request-Id") == "" || !strings.Contains(buf.String(), `"status":403`) {
		t.Errorf("refusal not logged with a request id: %v %s", w.Header(), buf.String())
	}
}
