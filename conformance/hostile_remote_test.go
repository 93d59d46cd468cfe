package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Hostile remotes over the wire: packreg C syncs from fake registries
// (httptest servers in this process, on 127.0.0.1) that front a real
// packreg B and misbehave: they take credentials to a new host, put their
// token realm on another port, redirect blobs to a link-local address or
// from https to http, nest referrers forever, or never answer. The
// link-local target is fe80::1 on the loopback interface: even a packreg
// that dialed it would send nothing off this machine.

const hostilePresigned = "http://[fe80::1%25lo]:1/bucket/blob?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAEXAMPLE"

// front is a fake remote: a reverse proxy to a real registry, with a hook
// that answers some requests itself, and a record of the Authorization
// headers it saw.
type front struct {
	*httptest.Server
	mu    sync.Mutex
	auth  []string
	hits  atomic.Int64
	proxy *httputil.ReverseProxy
}

func newFront(t *testing.T, target string, tls bool, hook func(f *front, w http.ResponseWriter, r *http.Request) bool) *front {
	t.Helper()
	u, _ := url.Parse(target)
	f := &front{proxy: httputil.NewSingleHostReverseProxy(u)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if hook != nil && hook(f, w, r) {
			return
		}
		r.Header.Del("Authorization") // B has no authentication
		f.proxy.ServeHTTP(w, r)
	})
	if tls {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

// credentialed returns the Authorization headers seen that were not empty.
func (f *front) credentialed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.auth {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// remoteView is the part of a mirror or upstream the tests read.
type remoteView struct {
	ID         string   `json:"id"`
	Auth       string   `json:"auth"`
	AuthRealms []string `json:"authRealms"`
}

func TestMirrorHostileRemotes(t *testing.T) {
	oras := needTool(t, "oras")
	cfg := writeConfig(t, mirrorConfig)
	b := startServer(t, "--config", cfg)
	c := startServer(t, "--config", cfg)
	c.dumpLogOnFailure()
	tl := newTool(t)
	api := func(t *testing.T) *client { return newClient(t, c.URL) } // failing the subtest, not the test
	// Each upstream copies a pack of its own: a blob one of them copied
	// would be mounted here for the next, never fetched from its remote.
	upstream := func(t *testing.T, body map[string]any) remoteView {
		t.Helper()
		name := body["name"].(string)
		tl.write(name+".yaml", []byte("rules of "+name+"\n"))
		tl.run(oras, "push", "--plain-http", b.Addr+"/acme/"+name+":1.0.0", "--artifact-type", mirrorPackType, name+".yaml:application/vnd.packreg.pack.file.v1")
		body["include"] = []string{"acme/" + name}
		var v remoteView
		api(t).apiJSON("POST", "/api/v1/upstreams", jsonHeader, mustJSON(t, body), http.StatusCreated, &v)
		return v
	}

	t.Run("credentials follow the url", func(t *testing.T) {
		home := newFront(t, b.URL, false, nil)
		elsewhere := newFront(t, b.URL, false, nil)
		v := upstream(t, map[string]any{"name": "moved", "url": home.URL, "credentials": map[string]string{"username": "bob", "password": "hunter2"}})
		if run := syncWait(t, tl, c.URL, "moved", 0, "--upstream"); run.State != "succeeded" || len(home.credentialed()) == 0 {
			t.Fatalf("sync with credentials: %+v; home saw %q", run, home.credentialed())
		}
		api(t).apiJSON("PUT", "/api/v1/upstreams/"+v.ID, jsonHeader, mustJSON(t, map[string]any{"name": "moved", "url": elsewhere.URL, "include": []string{"acme/moved"}}),
			http.StatusOK, &v)
		if v.Auth != "none" {
			t.Fatalf("after the url moved without credentials: auth %q, want none", v.Auth)
		}
		syncWait(t, tl, c.URL, "moved", 0, "--upstream")
		if elsewhere.hits.Load() == 0 || len(elsewhere.credentialed()) != 0 {
			t.Fatalf("the new host got %d requests, with credentials %q", elsewhere.hits.Load(), elsewhere.credentialed())
		}
	})

	t.Run("token realm on another port", func(t *testing.T) {
		var realm *front
		realm = newFront(t, b.URL, false, func(f *front, w http.ResponseWriter, r *http.Request) bool {
			io.WriteString(w, `{"token":"t0k3n"}`)
			return true
		})
		reg := newFront(t, b.URL, false, func(f *front, w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("Authorization") == "Bearer t0k3n" {
				return false
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="hostile"`, realm.URL))
			w.WriteHeader(http.StatusUnauthorized)
			return true
		})
		v := upstream(t, map[string]any{"name": "realm", "url": reg.URL, "credentials": map[string]string{"username": "bob", "password": "hunter2"}})
		if run := syncWait(t, tl, c.URL, "realm", 0, "--upstream"); run.State != "succeeded" {
			t.Fatalf("sync through an anonymous token: %+v", run)
		}
		if realm.hits.Load() == 0 || len(realm.credentialed()) != 0 {
			t.Fatalf("the realm on another port got %d requests, with credentials %q", realm.hits.Load(), realm.credentialed())
		}
		// Listed by the operator, with the credentials, it gets them.
		api(t).apiJSON("PUT", "/api/v1/upstreams/"+v.ID, jsonHeader, mustJSON(t, map[string]any{"name": "realm", "url": reg.URL, "include": []string{"acme/realm"},
			"authRealms": []string{realm.URL}, "credentials": map[string]string{"username": "bob", "password": "hunter2"}}), http.StatusOK, &v)
		syncWait(t, tl, c.URL, "realm", 0, "--upstream")
		if len(realm.credentialed()) == 0 {
			t.Fatal("a realm listed in authRealms never got the credentials")
		}
	})

	redirectBlobs := func(to func(r *http.Request) string) func(*front, http.ResponseWriter, *http.Request) bool {
		return func(f *front, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
				http.Redirect(w, r, to(r), http.StatusTemporaryRedirect)
				return true
			}
			return false
		}
	}

	t.Run("redirect to link-local", func(t *testing.T) {
		hostile := newFront(t, b.URL, false, redirectBlobs(func(*http.Request) string { return hostilePresigned }))
		upstream(t, map[string]any{"name": "metadata", "url": hostile.URL})
		run := syncWait(t, tl, c.URL, "metadata", 1, "--upstream")
		all := strings.Join(run.Errors, "\n")
		if run.State != "failed" || !strings.Contains(all, "link-local or metadata") {
			t.Fatalf("sync redirected to a link-local address: %+v", run)
		}
		log := c.logNow(t)
		for _, secret := range []string{"deadbeef", "AKIAEXAMPLE"} {
			if strings.Contains(all, secret) || strings.Contains(log, secret) {
				t.Fatalf("the presigned query (%s) reached the run errors or the log:\n%s", secret, all)
			}
		}
		// A url on such an address is refused outright.
		api(t).apiJSON("POST", "/api/v1/upstreams", jsonHeader, mustJSON(t, map[string]any{"name": "imds", "url": "http://169.254.169.254"}), http.StatusBadRequest, nil)
		api(t).apiJSON("POST", "/api/v1/mirrors", jsonHeader, mustJSON(t, map[string]any{"name": "imds6", "url": "http://[fd00:ec2::254]"}), http.StatusBadRequest, nil)
	})

	t.Run("https to http", func(t *testing.T) {
		plain := newFront(t, b.URL, false, nil)
		secure := newFront(t, b.URL, true, redirectBlobs(func(r *http.Request) string { return plain.URL + r.URL.Path }))
		upstream(t, map[string]any{"name": "downgrade", "url": secure.URL, "insecure": true})
		run := syncWait(t, tl, c.URL, "downgrade", 1, "--upstream")
		if run.State != "failed" || !strings.Contains(strings.Join(run.Errors, "\n"), "plain http after https") {
			t.Fatalf("sync redirected from https to http: %+v", run)
		}
		if n := plain.hits.Load(); n != 0 {
			t.Fatalf("the plain http server got %d requests", n)
		}
	})

	t.Run("endless referrers", func(t *testing.T) {
		var (
			mu   sync.Mutex
			docs = map[string][]byte{}
			made int
		)
		chain := func(f *front, w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.Contains(r.URL.Path, "/referrers/"):
				if made++; made > 100 { // bounded even for a packreg without the cap
					http.Error(w, "enough", http.StatusInternalServerError)
					return true
				}
				subject := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
				m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"artifactType": "application/vnd.example.sig",
					"config": map[string]any{"mediaType": "application/vnd.oci.empty.v1+json",
						"digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
					"layers":      []any{},
					"subject":     map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 1},
					"annotations": map[string]string{"n": fmt.Sprint(made)}})
				sum := sha256.Sum256(m)
				d := "sha256:" + hex.EncodeToString(sum[:])
				docs[d] = m
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Write(mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
					"manifests": []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": len(m),
						"artifactType": "application/vnd.example.sig"}}}))
				return true
			case strings.Contains(r.URL.Path, "/manifests/sha256:"):
				d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
				m, ok := docs[d]
				if !ok {
					return false
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Docker-Content-Digest", d)
				w.Header().Set("Content-Length", fmt.Sprint(len(m)))
				if r.Method == http.MethodGet {
					w.Write(m)
				}
				return true
			}
			return false
		}
		upstream(t, map[string]any{"name": "endless", "url": newFront(t, b.URL, false, chain).URL})
		run := syncWait(t, tl, c.URL, "endless", 1, "--upstream")
		if run.State != "failed" || !strings.Contains(strings.Join(run.Errors, "\n"), "limit: referrer depth") {
			t.Fatalf("sync of an endless referrer chain: %+v", run)
		}
		mu.Lock()
		defer mu.Unlock()
		if made > 10 {
			t.Fatalf("%d referrers were asked for before the cap stopped the walk", made)
		}
	})

	t.Run("run timeout", func(t *testing.T) {
		d := startServer(t, "--config", writeConfig(t, mirrorConfig+"  run_timeout: 2s\n"))
		d.dumpLogOnFailure()
		stuck := make(chan struct{})
		never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stuck:
			case <-r.Context().Done():
			}
		}))
		defer never.Close()
		defer close(stuck)
		newClient(t, d.URL).apiJSON("POST", "/api/v1/upstreams", jsonHeader, mustJSON(t, map[string]any{"name": "never", "url": never.URL}), http.StatusCreated, nil)
		run := syncWait(t, tl, d.URL, "never", 1, "--upstream")
		if run.State != "failed" || len(run.Errors) == 0 || !strings.Contains(run.Errors[0], "limit: run timeout") {
			t.Fatalf("sync from a remote that never answers: %+v", run)
		}
	})
}
