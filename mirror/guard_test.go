package mirror_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/internal/netguard/netguardtest"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
)

// Remotes are hostile: these tests stand up registries that redirect,
// challenge and hand out upload locations where they should not. They
// reach loopback only: "public" is 127.0.0.2 declared public, and the
// link-local target is fe80::1 on the loopback interface, which no
// packet leaves even if it were dialed.

const presigned = "http://[fe80::1%25lo]:1/bucket/blob?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAEXAMPLE"

// publicOn127002 is the real classification, but 127.0.0.2 is public.
var publicOn127002 = netguardtest.PublicAt("127.0.0.2")

func serveAt(t *testing.T, ip string, h http.Handler) *httptest.Server {
	return netguardtest.ServeOn(t, ip, h)
}

// recorder is a server that notes the Authorization headers it receives.
type recorder struct {
	*httptest.Server
	seen seen
	hits atomic.Int64
}

func newRecorder(t *testing.T, h http.Handler) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.seen.note(req)
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// TestCredentialsFollowOrigin: credentials are bound to the origin (and
// token realms) they were given for. A PUT that moves the URL elsewhere,
// or adds a realm, without credentials drops them: the next sync sends
// nothing to the new host.
func TestCredentialsFollowOrigin(t *testing.T) {
	a := newPackReg(t, mutable)
	publish(a, "acme/rules", "1.0.0")
	home := newRecorder(t, a.Srv.Config.Handler)
	elsewhere := newRecorder(t, a.Srv.Config.Handler)
	c := newPrimary(t)
	var v mirror.View
	base := map[string]any{"name": "hq", "include": []string{"acme/*"}}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, x := range base {
			m[k] = x
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	c.call(t, "POST", "/api/v1/upstreams", with("url", home.URL, "credentials", map[string]string{"username": "bob", "password": "hunter2"}),
		http.StatusCreated, &v)
	id := v.ID
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", home.URL+"/v2/"), http.StatusOK, &v)
	if v.Auth != "basic" {
		t.Fatalf("same origin, another path: auth %q, want basic kept", v.Auth)
	}
	if run := c.sync(t, "upstream", id); run.State != "succeeded" || !home.seen.any() {
		t.Fatalf("sync with credentials: %+v (home saw credentials: %v)", run, home.seen.any())
	}

	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL), http.StatusOK, &v)
	if v.Auth != "none" {
		t.Fatalf("new origin without credentials: auth %q, want none", v.Auth)
	}
	c.call(t, "GET", "/api/v1/upstreams/"+id, nil, http.StatusOK, &v)
	if v.Auth != "none" {
		t.Fatalf("stored: auth %q, want none", v.Auth)
	}
	if run := c.sync(t, "upstream", id); run.State != "succeeded" {
		t.Fatalf("sync from the new origin: %+v", run)
	}
	if elsewhere.hits.Load() == 0 || elsewhere.seen.any() {
		t.Fatalf("the new origin saw %d requests, with credentials %q", elsewhere.hits.Load(), elsewhere.seen.auth)
	}
	// Going back does not bring them back: they are gone.
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", home.URL), http.StatusOK, &v)
	if v.Auth != "none" {
		t.Fatalf("back to the old origin: auth %q, want none", v.Auth)
	}
	// New credentials in the same request are bound to the new origin.
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "credentials", map[string]string{"token": "tok-new"}), http.StatusOK, &v)
	if v.Auth != "bearer" {
		t.Fatalf("new origin with new credentials: auth %q", v.Auth)
	}
	c.sync(t, "upstream", id)
	if !elsewhere.seen.any() {
		t.Fatal("the new credentials never reached the new origin")
	}
	// A realm added without credentials: they could go there, so they go.
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "authRealms", []string{home.URL}), http.StatusOK, &v)
	if v.Auth != "none" {
		t.Fatalf("token realm added without credentials: auth %q, want none", v.Auth)
	}
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "authRealms", []string{home.URL, home.URL + "/token"},
		"credentials", map[string]string{"username": "bob", "password": "pw"}), http.StatusOK, &v)
	if v.Auth != "basic" || len(v.AuthRealms) != 1 || !strings.HasSuffix(v.AuthRealms[0], home.URL[len("http://127.0.0.1"):]) {
		t.Fatalf("realms with credentials: %+v", v)
	}
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL), http.StatusOK, &v)
	if v.Auth != "basic" {
		t.Fatalf("a realm removed: auth %q, want basic kept", v.Auth)
	}
	// TLS verification turned off without credentials: they were given
	// for a peer that proved who it was, so they go.
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "insecure", true), http.StatusOK, &v)
	if v.Auth != "none" {
		t.Fatalf("verification turned off without credentials: auth %q, want none", v.Auth)
	}
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "insecure", true, "credentials", map[string]string{"token": "t"}), http.StatusOK, &v)
	c.call(t, "PUT", "/api/v1/upstreams/"+id, with("url", elsewhere.URL, "insecure", true), http.StatusOK, &v)
	if v.Auth != "bearer" {
		t.Fatalf("credentials given with verification off, settings re-sent: auth %q, want bearer kept", v.Auth)
	}
	for _, bad := range []map[string]any{
		with("url", "http://169.254.169.254"),
		with("url", "http://[fd00:ec2::254]:80"),
		with("url", "https://reg.example", "authRealms", []string{"http://auth.reg.example"}),
		with("url", elsewhere.URL, "authRealms", []string{"http://u:p@auth.example"}),
		with("url", elsewhere.URL, "authRealms", []string{"http://169.254.169.254"}),
	} {
		c.call(t, "PUT", "/api/v1/upstreams/"+id, bad, http.StatusBadRequest, nil)
	}
}

// blobRedirector answers blob GETs of reg with a redirect to target.
func blobRedirector(reg http.Handler, target func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			http.Redirect(w, r, target(r), http.StatusTemporaryRedirect)
			return
		}
		reg.ServeHTTP(w, r)
	})
}

// TestRemoteRedirectsGuarded: a blob redirect to a link-local address,
// from https to http, or from a public address back to a private one is
// refused, and the error says so without quoting the presigned query.
func TestRemoteRedirectsGuarded(t *testing.T) {
	src := newTestReg(t)
	fx := publish(src, "acme/rules", "1.0.0")
	ctx := context.Background()
	plain := newRecorder(t, src.Srv.Config.Handler)

	check := func(name string, rm *mirror.Remote, want string) {
		t.Helper()
		_, err := rm.Blob(ctx, "acme/rules", sha(fx.content))
		if !errors.Is(err, netguard.ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a refusal saying %q", name, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "deadbeef") || strings.Contains(err.Error(), "X-Amz")) {
			t.Errorf("%s: the error quotes the presigned query: %v", name, err)
		}
	}

	metadata := httptest.NewServer(blobRedirector(src.Srv.Config.Handler, func(*http.Request) string { return presigned }))
	defer metadata.Close()
	check("to link-local", newRemote(t, metadata.URL, mirror.Credentials{}), "link-local or metadata")

	secure := httptest.NewTLSServer(blobRedirector(src.Srv.Config.Handler, func(r *http.Request) string { return plain.URL + r.URL.Path }))
	defer secure.Close()
	rm, err := mirror.NewRemote(mirror.RemoteConfig{URL: secure.URL, Insecure: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	check("https to http", rm, "plain http after https")

	public := serveAt(t, "127.0.0.2", blobRedirector(src.Srv.Config.Handler, func(r *http.Request) string { return plain.URL + r.URL.Path }))
	rm, err = mirror.NewRemote(mirror.RemoteConfig{URL: public.URL, Classify: publicOn127002, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	check("public to private", rm, "after a public one")
	if n := plain.hits.Load(); n != 0 {
		t.Fatalf("the private server was reached %d times", n)
	}
	// The other way is the normal case: an internal registry sends blobs
	// to a public store.
	private := httptest.NewServer(blobRedirector(src.Srv.Config.Handler, func(r *http.Request) string { return public.URL + r.URL.Path }))
	defer private.Close()
	rm, _ = mirror.NewRemote(mirror.RemoteConfig{URL: private.URL, Classify: publicOn127002, Timeout: 2 * time.Second})
	if _, err := rm.Blob(ctx, "acme/rules", sha(fx.content)); !errors.Is(err, netguard.ErrRefused) {
		// public redirects blob GETs again, to plain (private): refused.
		t.Fatalf("private → public → private: %v, want a refusal", err)
	}
	rm, _ = mirror.NewRemote(mirror.RemoteConfig{URL: private.URL, Timeout: 2 * time.Second})
	rc, err := rm.Blob(ctx, "acme/rules", sha(fx.content))
	if err != nil {
		t.Fatalf("private → private → private (127.0.0.2 not declared public): %v", err)
	}
	rc.Close()
}

// TestRemoteUploadLocationGuarded: the PUT goes where the upload Location
// says only within the rules: not from a public sink to a private
// address, and never with credentials off the sink's origin.
func TestRemoteUploadLocationGuarded(t *testing.T) {
	inner := newRecorder(t, http.NotFoundHandler())
	sink := newTestReg(t)
	public := serveAt(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			w.Header().Set("Location", inner.URL+"/internal/admin?_state=x")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		sink.Srv.Config.Handler.ServeHTTP(w, r)
	}))
	rm, err := mirror.NewRemote(mirror.RemoteConfig{URL: public.URL, Classify: publicOn127002, Timeout: 2 * time.Second,
		Credentials: mirror.Credentials{Username: "bob", Password: "hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("blob bytes")
	err = rm.PutBlob(context.Background(), "acme/rules", oci.NewDescriptor("", sha(body), int64(len(body))), strings.NewReader(string(body)))
	if !errors.Is(err, netguard.ErrRefused) || strings.Contains(err.Error(), "_state") {
		t.Fatalf("upload Location from a public sink to a private address: %v, want a refusal without the query", err)
	}
	if inner.hits.Load() != 0 {
		t.Fatal("the private address received the upload")
	}
	// Loopback to loopback is allowed, without the credentials.
	rm, _ = mirror.NewRemote(mirror.RemoteConfig{URL: public.URL, Timeout: 2 * time.Second,
		Credentials: mirror.Credentials{Username: "bob", Password: "hunter2"}})
	_ = rm.PutBlob(context.Background(), "acme/rules", oci.NewDescriptor("", sha(body), int64(len(body))), strings.NewReader(string(body)))
	if inner.hits.Load() == 0 || inner.seen.any() {
		t.Fatalf("upload to another origin: %d hits, credentials %q", inner.hits.Load(), inner.seen.auth)
	}
}

// challenger is a registry behind the bearer flow whose realm is realm().
func challenger(t *testing.T, reg http.Handler, realm func() string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			reg.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test"`, realm()))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestRealmCredentials: the token realm gets the credentials on the
// remote's origin or when listed, never on another port by default, and
// never after a redirect; what it answers must be a token.
func TestRealmCredentials(t *testing.T) {
	src := newTestReg(t)
	publish(src, "acme/rules", "1.0.0")
	ctx := context.Background()
	creds := mirror.Credentials{Username: "bob", Password: "hunter2"}
	tokenSrv := func(answer string) *recorder {
		return newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hop" {
				http.Redirect(w, r, "/token", http.StatusTemporaryRedirect)
				return
			}
			io.WriteString(w, answer)
		}))
	}

	other := tokenSrv(`{"token":"t0k"}`)
	reg := challenger(t, src.Srv.Config.Handler, func() string { return other.URL + "/token" })
	if _, err := newRemote(t, reg.URL, creds).Resolve(ctx, "acme/rules", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if other.hits.Load() == 0 || other.seen.any() {
		t.Fatalf("realm on another port: %d hits, credentials %q", other.hits.Load(), other.seen.auth)
	}
	rm, err := mirror.NewRemote(mirror.RemoteConfig{URL: reg.URL, Credentials: creds, AuthRealms: []string{other.URL}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.Resolve(ctx, "acme/rules", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if !other.seen.any() {
		t.Fatal("a listed realm never received the credentials")
	}

	// The realm on the registry's own origin redirects: the hop gets nothing.
	var hopped seen
	var self *httptest.Server
	self = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/hop":
			http.Redirect(w, r, "/token", http.StatusTemporaryRedirect)
		case r.URL.Path == "/token":
			hopped.note(r)
			io.WriteString(w, `{"token":"t0k"}`)
		case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
			src.Srv.Config.Handler.ServeHTTP(w, r)
		default:
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/hop",service="test"`, self.URL))
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer self.Close()
	if _, err := newRemote(t, self.URL, creds).Resolve(ctx, "acme/rules", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if len(hopped.auth) == 0 || hopped.any() {
		t.Fatalf("credentials after a redirect of the realm: %q", hopped.auth)
	}

	for _, answer := range []string{`{"token":""}`, `{"token":"a b"}`, `{"token":"x\r\nX-Evil: 1"}`, `{"token":"` + strings.Repeat("a", 17<<10) + `"}`} {
		bad := tokenSrv(answer)
		reg := challenger(t, src.Srv.Config.Handler, func() string { return bad.URL + "/token" })
		if _, err := newRemote(t, reg.URL, creds).Resolve(ctx, "acme/rules", "1.0.0"); !errors.Is(err, mirror.ErrInvalid) || !strings.Contains(err.Error(), "no usable token") {
			t.Errorf("realm answering %.40s: %v, want ErrInvalid", answer, err)
		}
	}

	// A realm on a link-local address is never asked.
	reg = challenger(t, src.Srv.Config.Handler, func() string { return presigned })
	if _, err := newRemote(t, reg.URL, creds).Resolve(ctx, "acme/rules", "1.0.0"); !errors.Is(err, netguard.ErrRefused) || strings.Contains(err.Error(), "deadbeef") {
		t.Fatalf("realm on a link-local address: %v, want a refusal without its query", err)
	}
}

// TestRunErrorsHideSignatures: a sync whose blob redirect is refused
// fails saying why, and the run's stored errors hold no presigned query.
func TestRunErrorsHideSignatures(t *testing.T) {
	a := newPackReg(t, mutable)
	publish(a, "acme/rules", "1.0.0")
	hostile := httptest.NewServer(blobRedirector(a.Srv.Config.Handler, func(*http.Request) string { return presigned }))
	defer hostile.Close()
	c := newPrimary(t)
	var v mirror.View
	c.call(t, "POST", "/api/v1/upstreams", map[string]any{"name": "hq", "url": hostile.URL}, http.StatusCreated, &v)
	run := c.sync(t, "upstream", v.ID)
	all := strings.Join(run.Errors, "\n")
	if run.State != "failed" || !strings.Contains(all, "link-local or metadata") {
		t.Fatalf("run: %+v", run)
	}
	for _, secret := range []string{"deadbeef", "X-Amz-Signature", "AKIAEXAMPLE"} {
		if strings.Contains(all, secret) {
			t.Fatalf("run errors quote the presigned URL (%s):\n%s", secret, all)
		}
	}
}
