package netguard

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Config builds a Transport. Zero values take the defaults.
type Config struct {
	// Binding is where the Authorization header may go.
	Binding Binding
	// TLS is the client TLS configuration (default: verify, TLS 1.2+).
	TLS *tls.Config
	// ResponseHeaderTimeout bounds the wait for an answer's headers.
	ResponseHeaderTimeout time.Duration
	// Classify judges addresses (default Classify). Tests only.
	Classify Classifier
	// Lookup resolves host names (default the system resolver). Tests only.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Connect dials an IP:port already judged (default a net.Dialer that
	// judges again). Tests only.
	Connect func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Transport is an http.RoundTripper that keeps to the package's rules.
// It has two connection pools, so that a request that may only reach
// public addresses never reuses a connection dialed for one that could
// reach private ones. Environment proxies are not used: the addresses
// must be the ones this process dials.
type Transport struct {
	binding         Binding
	classify        Classifier
	trusted, public *http.Transport
}

// NewTransport returns a Transport for c.
func NewTransport(c Config) *Transport {
	if c.Classify == nil {
		c.Classify = Classify
	}
	if c.TLS == nil {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	pool := func(publicOnly bool) *http.Transport {
		d := newDialer(c, publicOnly)
		return &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.dial(ctx, network, addr, publicOnly)
			},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: c.ResponseHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   32,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       c.TLS.Clone(),
		}
	}
	return &Transport{binding: c.Binding, classify: c.Classify, trusted: pool(false), public: pool(true)}
}

// CloseIdleConnections closes both pools' idle connections.
func (t *Transport) CloseIdleConnections() {
	t.trusted.CloseIdleConnections()
	t.public.CloseIdleConnections()
}

// RoundTrip sends req on its trail: refused when the trail used https and
// req is plain http, dialed through the public-only pool once the trail
// reached a public address, and without Authorization unless req goes
// where the Binding allows and is no redirect.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := OriginOf(req.URL)
	if o.IsZero() {
		return nil, &RefusedError{Addr: req.URL.Scheme + "://" + req.URL.Host, Reason: "only http and https are spoken"}
	}
	tr := trailOf(req)
	if !tr.enter(o.Scheme == "https") {
		return nil, &RefusedError{Addr: o.String(), Reason: "plain http after https"}
	}
	if req.Header.Get("Authorization") != "" && (req.Response != nil || !t.binding.Realm(req.URL)) {
		// Realm covers the home origin too. A redirect never carries
		// credentials: Go keeps them for the same host and its subdomains.
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	ctx := httptrace.WithClientTrace(WithTrail(req.Context(), tr), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if ap, err := netip.ParseAddrPort(info.Conn.RemoteAddr().String()); err == nil && t.classify(ap.Addr()) == Public {
				tr.markPublic()
			}
		},
	})
	pool := t.trusted
	if tr.isPublic() {
		pool = t.public
	}
	// The answer's Request carries the trail in its context: a redirect
	// of it finds the trail there (Client keeps the first request's
	// context for every hop).
	return pool.RoundTrip(req.WithContext(ctx))
}

// Trail is one chain of requests: where it has been decides where it may
// go next. It is safe for concurrent use.
type Trail struct {
	mu     sync.Mutex
	public bool // a hop connected to a public address
	https  bool // a hop used https
}

// NewTrail starts a chain.
func NewTrail() *Trail { return &Trail{} }

// Fork is a chain that continues t: a request made on the word of an
// answer on t (a token realm, an upload Location). What happens on the
// fork does not flow back into t.
func (t *Trail) Fork() *Trail {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &Trail{public: t.public, https: t.https}
}

func (t *Trail) enter(https bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.https && !https {
		return false
	}
	t.https = t.https || https
	return true
}

func (t *Trail) markPublic() {
	t.mu.Lock()
	t.public = true
	t.mu.Unlock()
}

func (t *Trail) isPublic() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.public
}

type trailKey struct{}

// WithTrail puts requests made under ctx on t.
func WithTrail(ctx context.Context, t *Trail) context.Context {
	return context.WithValue(ctx, trailKey{}, t)
}

// trailOf is the trail of req: its context's, that of the request it is a
// redirect of, or a new one.
func trailOf(req *http.Request) *Trail {
	if t, ok := req.Context().Value(trailKey{}).(*Trail); ok {
		return t
	}
	if req.Response != nil && req.Response.Request != nil {
		if t, ok := req.Response.Request.Context().Value(trailKey{}).(*Trail); ok {
			return t
		}
	}
	return NewTrail()
}

// Redact is u as it may be quoted in errors and logs: without user
// information and query, where upload state and presigned signatures are.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}
