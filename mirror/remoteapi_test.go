package mirror_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
)

// TestRemotePackAPI: the pack API of a packreg remote is asked through the
// remote's own transport, with its credentials, and its answers mean what
// they say: 404 is an unknown pack, 5xx a failure worth retrying, a
// refusal names its code, and an answer past the listing cap is refused.
func TestRemotePackAPI(t *testing.T) {
	d := digest.FromBytes(digest.SHA256, []byte("m"))
	var lifecycle atomic.Value
	var unauthenticated atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "hunter2" {
			unauthenticated.Add(1)
			http.Error(w, `{"error":{"code":"UNAUTHORIZED","message":"who are you"}}`, http.StatusUnauthorized)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/packs":
			fmt.Fprintf(w, `{"items":[{"name":"acme/rules","version":"1.0.0","digest":%q,"status":"active"}]}`, d)
		case "GET /api/v1/packs/acme/rules/versions":
			fmt.Fprintf(w, `{"versions":[{"version":"1.0.0","digest":%q,"status":"deprecated"},{"version":"1.1.0","digest":"junk","status":"active"}]}`, d)
		case "GET /api/v1/packs/acme/busy/versions":
			http.Error(w, `{"error":{"code":"UNAVAILABLE","message":"later"}}`, http.StatusServiceUnavailable)
		case "GET /api/v1/packs/acme/huge/versions":
			io.WriteString(w, `{"versions":[],"pad":"`+strings.Repeat("x", 9<<20)+`"}`)
		case "POST /api/v1/packs/acme/rules/versions/1.0.0/lifecycle":
			b, _ := io.ReadAll(r.Body)
			lifecycle.Store(r.Header.Get("Content-Type") + " " + string(b))
			io.WriteString(w, `{}`)
		case "POST /api/v1/packs/acme/rules/versions/2.0.0/lifecycle":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":"DENIED","message":"archived here"}}`)
		default:
			http.Error(w, `{"error":{"code":"NOT_FOUND","message":"no such pack"}}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	rm := newRemote(t, srv.URL, mirror.Credentials{Username: "bob", Password: "hunter2"})
	ctx := t.Context()

	if is, err := rm.IsPackreg(ctx); !is || err != nil {
		t.Fatalf("IsPackreg: %v, %v", is, err)
	}
	vs, err := rm.PackVersions(ctx, "acme/rules")
	if err != nil || len(vs) != 2 || vs[0].Name != "acme/rules" || vs[0].Digest != d || vs[0].Status != "deprecated" || vs[1].Digest != "" {
		t.Fatalf("PackVersions: %+v, %v", vs, err)
	}
	if vs, err := rm.PackVersions(ctx, "acme/none"); vs != nil || err != nil {
		t.Errorf("versions of an unknown pack: %+v, %v; want none", vs, err)
	}
	var he *mirror.HTTPError
	if _, err := rm.PackVersions(ctx, "acme/busy"); !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || !he.Temporary() {
		t.Errorf("versions while the remote is busy: %v, want a temporary HTTPError", err)
	}
	if _, err := rm.PackVersions(ctx, "acme/huge"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("versions past the listing cap: %v", err)
	}
	if all, err := rm.ListPacks(ctx); err != nil || len(all) != 1 || all[0].Version != "1.0.0" {
		t.Errorf("ListPacks: %+v, %v", all, err)
	}
	if err := rm.SetLifecycle(ctx, "acme/rules", "1.0.0", "deprecated", "old", true); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	sent, _ := lifecycle.Load().(string)
	ct, raw, _ := strings.Cut(sent, " ")
	if err := json.Unmarshal([]byte(raw), &body); err != nil || ct != "application/json" ||
		body["state"] != "deprecated" || body["reason"] != "old" || body["force"] != true {
		t.Errorf("lifecycle request: %q", sent)
	}
	err = rm.SetLifecycle(ctx, "acme/rules", "2.0.0", "active", "", false)
	if !errors.Is(err, mirror.ErrDenied) || !strings.Contains(err.Error(), "DENIED archived here") {
		t.Errorf("refused lifecycle: %v, want ErrDenied naming the code", err)
	}
	if n := unauthenticated.Load(); n != 0 {
		t.Errorf("%d requests came without the credentials", n)
	}
}

// TestRemoteNotPackreg: a plain registry is told apart from a packreg,
// and a failure to ask is not remembered as the answer.
func TestRemoteNotPackreg(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	rm := newRemote(t, srv.URL, mirror.Credentials{})
	if _, err := rm.IsPackreg(t.Context()); err == nil {
		t.Fatal("IsPackreg of a remote answering 503: no error")
	}
	down.Store(false)
	if is, err := rm.IsPackreg(t.Context()); is || err != nil {
		t.Fatalf("IsPackreg of a plain registry: %v, %v", is, err)
	}
}
