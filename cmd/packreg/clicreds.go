package main

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The CLI's credentials for a server with authentication: Basic, from
// $PACKREG_USERNAME and $PACKREG_PASSWORD (a user, or robot:<name> and its
// secret), never from a flag (a flag is seen by every process listing).
// They go to the --server origin only: a redirect elsewhere, or a URL the
// server hands back on another host, gets none.

// cliHTTP is the HTTP client of a CLI command talking to server.
func cliHTTP(server string, timeout time.Duration) *http.Client {
	hc := &http.Client{Timeout: timeout}
	user, pass := os.Getenv("PACKREG_USERNAME"), os.Getenv("PACKREG_PASSWORD")
	u, err := url.Parse(server)
	if user == "" || err != nil || u.Host == "" {
		return hc
	}
	hc.Transport = &basicTransport{origin: originOf(u), user: user, pass: pass, next: http.DefaultTransport}
	return hc
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// basicTransport adds Basic credentials to requests for one origin.
type basicTransport struct {
	origin, user, pass string
	next               http.RoundTripper
}

func (t *basicTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if originOf(req.URL) == t.origin && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.SetBasicAuth(t.user, t.pass)
	}
	return t.next.RoundTrip(req)
}
