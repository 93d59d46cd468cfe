package netguard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/internal/netguard/netguardtest"
)

// Tests reach loopback only. "Public" addresses are 127.0.0.2 declared
// public by the classifier; forbidden ones are resolved by a fake lookup
// and never really dialed: connect refuses anything but loopback.

// testClassify is the real classification, but 127.0.0.2 is public.
var testClassify = netguardtest.PublicAt("127.0.0.2")

// dialLog records what the transport asked to connect to, and connects
// only to loopback.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (l *dialLog) connect(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	l.addrs = append(l.addrs, addr)
	l.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("test: would have dialed %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (l *dialLog) dialed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

func serveOn(t *testing.T, ip string, h http.HandlerFunc) *httptest.Server {
	return netguardtest.ServeOn(t, ip, h)
}

func newClient(c netguard.Config) (*http.Client, *dialLog) {
	log := &dialLog{}
	if c.Classify == nil {
		c.Classify = testClassify
	}
	c.Connect = log.connect
	return &http.Client{Transport: netguard.NewTransport(c)}, log
}

func get(t *testing.T, hc *http.Client, ctx context.Context, u string) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

// TestForbiddenNeverDialed: a name resolving to a link-local or metadata
// address, or such an address literally, is refused before any
// connection; a name that also resolves to an allowed address gets that
// one; a name that rebinds between lookups is judged at every dial.
func TestForbiddenNeverDialed(t *testing.T) {
	ok := serveOn(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, port, _ := net.SplitHostPort(ok.Listener.Addr().String())
	var mu sync.Mutex
	lookups := 0
	hc, log := newClient(netguard.Config{Lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		case "aws6.test":
			return []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}, nil
		case "mixed.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("127.0.0.1")}, nil
		case "rebind.test":
			mu.Lock()
			defer mu.Unlock()
			lookups++
			if lookups > 1 {
				return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
			}
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, fmt.Errorf("test: no such host %s", host)
	}})
	ctx := context.Background()
	for _, u := range []string{
		"http://metadata.test:" + port + "/latest/meta-data/",
		"http://aws6.test:" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1%25lo]:" + port + "/",
		"http://[::ffff:169.254.169.254]/",
	} {
		if _, err := get(t, hc, ctx, u); !errors.Is(err, netguard.ErrRefused) || !strings.Contains(err.Error(), "link-local or metadata") {
			t.Errorf("GET %s: %v, want a refusal naming link-local or metadata", u, err)
		}
	}
	if d := log.dialed(); len(d) != 0 {
		t.Fatalf("forbidden addresses were dialed: %q", d)
	}
	if body, err := get(t, hc, ctx, "http://mixed.test:"+port+"/"); err != nil || body != "ok" {
		t.Fatalf("mixed.test: %q, %v", body, err)
	}
	if d := log.dialed(); len(d) != 1 || !strings.HasPrefix(d[0], "127.0.0.1:") {
		t.Fatalf("mixed.test dialed %q, want 127.0.0.1 only", d)
	}
	hc.CloseIdleConnections()
	if _, err := get(t, hc, ctx, "http://rebind.test:"+port+"/"); err != nil {
		t.Fatalf("rebind.test, first lookup: %v", err)
	}
	hc.CloseIdleConnections()
	if _, err := get(t, hc, ctx, "http://rebind.test:"+port+"/"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("rebind.test after rebinding to 169.254.169.254: %v, want a refusal", err)
	}
}

// TestNoPublicToPrivate: a chain that reached a public address may not
// come back to a private one, by redirect or by a request made on its
// word (Fork); a chain that starts private may go public; and the
// public-only requests never reuse a connection of the private pool.
func TestNoPublicToPrivate(t *testing.T) {
	var private *httptest.Server
	public := serveOn(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bounce" {
			http.Redirect(w, r, private.URL+"/secret", http.StatusTemporaryRedirect)
			return
		}
		io.WriteString(w, "public")
	})
	private = serveOn(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/out" {
			http.Redirect(w, r, public.URL+"/bounce", http.StatusFound)
			return
		}
		io.WriteString(w, "private")
	})
	hc, _ := newClient(netguard.Config{})
	ctx := context.Background()
	// Private first: the pool now holds a connection to the private server.
	if body, err := get(t, hc, ctx, private.URL+"/secret"); err != nil || body != "private" {
		t.Fatalf("private origin: %q, %v", body, err)
	}
	if body, err := get(t, hc, ctx, public.URL+"/x"); err != nil || body != "public" {
		t.Fatalf("public origin: %q, %v", body, err)
	}
	for _, u := range []string{public.URL + "/bounce", private.URL + "/out"} {
		body, err := get(t, hc, ctx, u)
		if !errors.Is(err, netguard.ErrRefused) || !strings.Contains(err.Error(), "after a public one") {
			t.Fatalf("GET %s (to public, then back to private): %q, %v; want a refusal", u, body, err)
		}
	}
	// A request made on a public answer's word: on a fork of its trail.
	tr := netguard.NewTrail()
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr), public.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr.Fork()), private.URL+"/secret"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("private request after a public one on the same trail: %v, want a refusal", err)
	}
	// A private chain forked to a public host stays usable for the private origin.
	tr = netguard.NewTrail()
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr), private.URL+"/secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr.Fork()), public.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr), private.URL+"/secret"); err != nil {
		t.Fatalf("the private trail after its fork went public: %v", err)
	}
}

// TestNoHTTPSDowngrade: after https, plain http is refused, by redirect
// or on a fork of the trail; http to https is fine.
func TestNoHTTPSDowngrade(t *testing.T) {
	plain := serveOn(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") })
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Redirect(w, r, plain.URL+"/x", http.StatusTemporaryRedirect)
			return
		}
		io.WriteString(w, "secure")
	}))
	defer secure.Close()
	up := serveOn(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, secure.URL+"/x", http.StatusTemporaryRedirect)
	})
	pool := x509.NewCertPool()
	pool.AddCert(secure.Certificate())
	hc, _ := newClient(netguard.Config{TLS: &tls.Config{RootCAs: pool}})
	ctx := context.Background()
	if _, err := get(t, hc, ctx, secure.URL+"/down"); !errors.Is(err, netguard.ErrRefused) || !strings.Contains(err.Error(), "plain http after https") {
		t.Fatalf("https redirected to http: %v, want a refusal", err)
	}
	tr := netguard.NewTrail()
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr), secure.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, hc, netguard.WithTrail(ctx, tr.Fork()), plain.URL+"/x"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("http on a fork of an https trail: %v, want a refusal", err)
	}
	if body, err := get(t, hc, ctx, up.URL+"/"); err != nil || body != "secure" {
		t.Fatalf("http redirected to https: %q, %v", body, err)
	}
	if _, err := get(t, hc, ctx, "ftp://127.0.0.1/x"); err == nil {
		t.Fatal("ftp was spoken")
	}
}

// TestAuthorizationBound: Authorization reaches the binding's origin and
// its realms only, and never a redirected request, even on the same origin.
func TestAuthorizationBound(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	note := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[name+r.URL.Path] = r.Header.Get("Authorization")
			mu.Unlock()
			if r.URL.Path == "/again" {
				http.Redirect(w, r, "/landed", http.StatusTemporaryRedirect)
			}
		}
	}
	home := serveOn(t, "127.0.0.1", note("home"))
	other := serveOn(t, "127.0.0.1", note("other"))
	listed := serveOn(t, "127.0.0.1", note("listed"))
	b := netguard.Binding{Origin: mustOrigin(t, home.URL), Realms: []netguard.Origin{mustOrigin(t, listed.URL)}}
	hc, _ := newClient(netguard.Config{Binding: b})
	for _, u := range []string{home.URL + "/direct", home.URL + "/again", other.URL + "/direct", listed.URL + "/direct"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Basic c2VjcmV0")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := map[string]string{
		"home/direct":   "Basic c2VjcmV0",
		"home/again":    "Basic c2VjcmV0",
		"home/landed":   "", // after a redirect, even home
		"other/direct":  "", // another port of the same host
		"listed/direct": "Basic c2VjcmV0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s received Authorization %q, want %q", k, got[k], v)
		}
	}
}
