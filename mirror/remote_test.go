package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
)

// seen records the Authorization headers a server received.
type seen struct {
	mu   sync.Mutex
	auth []string
}

func (s *seen) note(r *http.Request) {
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
}

func (s *seen) any() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.auth {
		if a != "" {
			return true
		}
	}
	return false
}

func newRemote(t *testing.T, u string, c mirror.Credentials) *mirror.Remote {
	t.Helper()
	r, err := mirror.NewRemote(mirror.RemoteConfig{URL: u, Credentials: c, Timeout: 2 * time.Second, StallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRemoteTokenFlow: a registry behind the bearer token flow, its token
// service on the same host: credentials go to the token service, the
// token to the registry.
func TestRemoteTokenFlow(t *testing.T) {
	reg := newTestReg(t)
	fx := publish(reg, "acme/rules", "1.0.0")
	var tokenCalls seen
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			tokenCalls.note(r)
			if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "hunter2" {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"token":"tok-%s"}`, strings.ReplaceAll(r.URL.Query().Get("scope"), ":", "_"))
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test",scope="repository:acme/rules:pull"`, srv.URL))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		reg.Reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rm := newRemote(t, srv.URL, mirror.Credentials{Username: "bob", Password: "hunter2"})
	dst := newTestReg(t)
	if _, err := mirror.NewEngine(rm, dst.local(), mirror.EngineOptions{}).Copy(context.Background(), mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, dst, "acme/rules", "1.0.0", fx)
	if !tokenCalls.any() {
		t.Fatal("the token service never saw the credentials")
	}
	bad := newRemote(t, srv.URL, mirror.Credentials{Username: "bob", Password: "wrong"})
	if _, err := bad.Resolve(context.Background(), "acme/rules", "1.0.0"); !errors.Is(err, mirror.ErrDenied) {
		t.Fatalf("wrong password: %v, want ErrDenied", err)
	}
}

// TestRemoteCredentialsStayHome: a token realm or a redirect on another
// host never receives the credentials.
func TestRemoteCredentialsStayHome(t *testing.T) {
	var elsewhere seen
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.note(r)
		if r.URL.Path == "/token" {
			io.WriteString(w, `{"token":"anonymous"}`)
			return
		}
		io.WriteString(w, "blob bytes")
	}))
	defer other.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/blobs/"):
			http.Redirect(w, r, other.URL+"/presigned?sig=x", http.StatusTemporaryRedirect)
		case r.Header.Get("Authorization") == "Bearer anonymous":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"name":"x","tags":["1.0.0"]}`)
		default:
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="evil"`, other.URL))
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer home.Close()
	rm := newRemote(t, home.URL, mirror.Credentials{Username: "bob", Password: "hunter2"})
	tags, err := rm.Tags(context.Background(), "x")
	if err != nil || len(tags) != 1 {
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	rc, err := rm.Blob(context.Background(), "x", digest.FromBytes(digest.SHA256, []byte("blob bytes")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "blob bytes" {
		t.Fatalf("redirected blob: %q", b)
	}
	if elsewhere.any() {
		t.Fatalf("another host received credentials: %q", elsewhere.auth)
	}
}

// TestRemoteLimits: oversized answers and stalled servers fail, in bounded
// time; credentials do not show in formatted values or logs.
// A digest a remote made up (in a referrers index, a child manifest) is
// refused before it is asked for: an unsupported algorithm has no hash
// to check the bytes with (it panicked), and its text would go into the
// request path.
func TestRemoteRefusesMadeUpDigests(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	rm := newRemote(t, srv.URL, mirror.Credentials{})
	for _, d := range []digest.Digest{"md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:../../../v2/other/manifests/x", "sha256:ABC"} {
		if _, _, err := rm.Manifest(t.Context(), "x", d); !errors.Is(err, mirror.ErrInvalid) {
			t.Errorf("manifest %s: %v, want ErrInvalid", d, err)
		}
		if _, err := rm.Blob(t.Context(), "x", d); !errors.Is(err, mirror.ErrInvalid) {
			t.Errorf("blob %s: %v, want ErrInvalid", d, err)
		}
	}
	if len(asked) != 0 {
		t.Errorf("asked the remote for %q", asked)
	}
}

func TestRemoteLimits(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Write(bytes.Repeat([]byte(" "), 5<<20))
		case strings.Contains(r.URL.Path, "/tags/"):
			<-hang
		case strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
			<-hang
		}
	}))
	defer srv.Close()
	defer close(hang) // first: the server's Close waits for its handlers
	rm := newRemote(t, srv.URL, mirror.Credentials{Token: "very-secret-token"})
	ctx := context.Background()
	if _, _, err := rm.Manifest(ctx, "x", digest.FromBytes(digest.SHA256, nil)); !errors.Is(err, mirror.ErrInvalid) {
		t.Fatalf("5 MiB manifest: %v, want ErrInvalid", err)
	}
	start := time.Now()
	if _, err := rm.Tags(ctx, "x"); err == nil {
		t.Fatal("hung tag list succeeded")
	}
	rc, err := rm.Blob(ctx, "x", digest.FromBytes(digest.SHA256, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil {
		t.Fatal("stalled blob read succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("timeouts took %s", d)
	}

	c := mirror.Credentials{Username: "bob", Password: "hunter2", Token: "tok"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "creds", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v %#v", c, c), logs.String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "tok\"") || strings.Contains(s, "bob") {
			t.Fatalf("credentials formatted: %s", s)
		}
	}
	if _, err := mirror.NewRemote(mirror.RemoteConfig{URL: "http://bob:pw@host"}); err == nil {
		t.Fatal("credentials in the URL accepted")
	}
}
