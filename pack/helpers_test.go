package pack_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"testing"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// env is a registry with packs and the audit trail wired as cmd wires
// them, on the real embedded stores (disk + SQLite), behind one handler.
type env struct {
	t     testing.TB
	svc   *pack.Service
	reg   *registry.Registry
	store *sqlmeta.Store
	h     http.Handler
	logs  *bytes.Buffer
}

func newEnv(t testing.TB, pol pack.Policy, opts ...pack.Option) *env {
	t.Helper()
	blobs, store, dir := teststores.Open(t)
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	svc := pack.New(store, append([]pack.Option{pack.WithPolicy(pol), pack.WithLogger(log), pack.WithSpoolDir(dir)}, opts...)...)
	audit.NewRecorder(store, log).Watch()
	reg := registry.New(blobs, store, append([]registry.Option{registry.WithLogger(log)}, svc.RegistryOptions()...)...)
	svc.Attach(reg)
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	for prefix, h := range map[string]http.Handler{pack.Prefix: svc.Handler(), audit.Prefix: audit.Handler(store, log)} {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	return &env{t: t, svc: svc, reg: reg, store: store, h: mux, logs: logs}
}

// do sends one request to the handler.
func (e *env) do(method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

// file is one file part of a publish request.
type file struct {
	name, contentType string
	data              []byte
}

// part is any multipart part, for malformed requests.
type part struct {
	form, filename, contentType string
	data                        []byte
}

// multipartBody encodes parts as multipart/form-data.
func multipartBody(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.form + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func metaPart(t testing.TB, md pack.Metadata) part {
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return part{form: "metadata", contentType: "application/json", data: b}
}

func fileParts(files []file) []part {
	var ps []part
	for _, f := range files {
		ps = append(ps, part{form: "file", filename: f.name, contentType: f.contentType, data: f.data})
	}
	return ps
}

// publish sends a publish request and returns the answer.
func (e *env) publish(md pack.Metadata, files ...file) *httptest.ResponseRecorder {
	e.t.Helper()
	body, ct := multipartBody(e.t, append([]part{metaPart(e.t, md)}, fileParts(files)...)...)
	return e.do("POST", pack.Prefix, body, "Content-Type", ct)
}

// mustPublish publishes and decodes the version, failing unless 201.
func (e *env) mustPublish(md pack.Metadata, files ...file) pack.Version {
	e.t.Helper()
	w := e.publish(md, files...)
	if w.Code != http.StatusCreated {
		e.t.Fatalf("publish %s:%s: %d %s", md.Name, md.Version, w.Code, w.Body)
	}
	return decode[pack.Version](e.t, w)
}

// lifecycle posts a state change; version "" changes the whole pack.
func (e *env) lifecycle(name, version, state, reason string, force bool) *httptest.ResponseRecorder {
	e.t.Helper()
	b, _ := json.Marshal(pack.LifecycleRequest{State: state, Reason: reason, Force: force})
	p := pack.Prefix + "/" + name + "/lifecycle"
	if version != "" {
		p = pack.Prefix + "/" + name + "/versions/" + version + "/lifecycle"
	}
	return e.do("POST", p, b, "Content-Type", "application/json")
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %T from %d %s: %v", v, w.Code, w.Body, err)
	}
	return v
}

// apiError decodes the one error shape, failing when the body is not it.
func apiError(t testing.TB, w *httptest.ResponseRecorder) (code, message string) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer has Content-Type %q", ct)
	}
	var env struct {
		Error *struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("not the API error shape: %d %s", w.Code, w.Body)
	}
	return env.Error.Code, env.Error.Message
}

func expectError(t testing.TB, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	got, msg := apiError(t, w)
	if got != code {
		t.Fatalf("code %s, want %s: %s", got, code, msg)
	}
	return msg
}

func sha(b []byte) digest.Digest { return digest.FromBytes(digest.SHA256, b) }

// pushBlob pushes data into repo over /v2/ (monolithic POST ?digest=).
func (e *env) pushBlob(repo string, data []byte) digest.Digest {
	e.t.Helper()
	d := sha(data)
	w := e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, "Content-Type", "application/octet-stream")
	if w.Code != http.StatusCreated {
		e.t.Fatalf("push blob: %d %s", w.Code, w.Body)
	}
	return d
}

// putManifest PUTs a manifest over /v2/ and returns the answer.
func (e *env) putManifest(repo, ref string, m any) *httptest.ResponseRecorder {
	e.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do("PUT", "/v2/"+repo+"/manifests/"+ref, b, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
}

// ociPack is what `oras push --artifact-type application/vnd.packreg.pack.v1`
// makes: the empty config, one titled layer per file, facts in annotations.
func (e *env) ociPack(repo string, annotations map[string]string, files ...file) map[string]any {
	e.t.Helper()
	empty := []byte("{}")
	cfg := e.pushBlob(repo, empty)
	var layers []map[string]any
	for _, f := range files {
		d := e.pushBlob(repo, f.data)
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
			"size": len(f.data), "annotations": map[string]string{oci.AnnotationTitle: f.name}})
	}
	return map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": oci.ArtifactTypePack,
		"config":       map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
		"layers":       layers, "annotations": annotations,
	}
}

// audit lists the audit trail (newest first) with the given query.
func (e *env) audit(query string) []audit.Record {
	e.t.Helper()
	w := e.do("GET", audit.Prefix+"?limit=1000&"+query, nil)
	if w.Code != http.StatusOK {
		e.t.Fatalf("audit list: %d %s", w.Code, w.Body)
	}
	return decode[audit.List](e.t, w).Items
}
