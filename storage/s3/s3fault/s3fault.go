// Package s3fault is a reverse proxy for tests that sits in front of a real
// S3 endpoint and breaks a configurable fraction of requests the ways S3
// and networks break: 500/503 answers, operations that happened but whose
// answer was lost, responses cut mid-body, and request bodies cut
// mid-upload. Serve it with httptest.NewServer and point the store's
// Endpoint at it; black-box tests run it as a process, cmd/s3fault.
//
// The proxy keeps the client's Host header, so SigV4 signatures made for
// the proxy's address still verify at the server.
//
// s3fault imports only the standard library.
package s3fault

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// Faults are fractions of requests, each in [0, 1], summing to at most 1.
type Faults struct {
	// Reject answers 500 InternalError or 503 SlowDown without forwarding.
	Reject float64
	// Lose forwards the request, lets S3 act on it, then answers 500: the
	// client cannot tell the operation happened.
	Lose float64
	// Cut forwards the request and closes the connection halfway through
	// the response body (or before any response, when it has no body).
	Cut float64
	// CutRequest forwards only half of the request body, then fails it.
	CutRequest float64
	// Methods limits faults to these HTTP methods; empty means all.
	Methods []string
	// Match, when set, limits faults to the requests it accepts (say,
	// CopyObject: a PUT with an X-Amz-Copy-Source header).
	Match func(*http.Request) bool
}

func (f Faults) validate() error {
	for _, v := range []float64{f.Reject, f.Lose, f.Cut, f.CutRequest} {
		if v < 0 || v > 1 {
			return fmt.Errorf("s3fault: fraction %v outside [0, 1]", v)
		}
	}
	if f.Reject+f.Lose+f.Cut+f.CutRequest > 1 {
		return errors.New("s3fault: fractions sum above 1")
	}
	return nil
}

// Stats counts what the proxy did.
type Stats struct {
	Requests, Rejected, Lost, Cut, CutRequests int
}

// Injected is the number of requests that got a fault.
func (s Stats) Injected() int { return s.Rejected + s.Lost + s.Cut + s.CutRequests }

// Proxy is the fault-injecting http.Handler.
type Proxy struct {
	rp *httputil.ReverseProxy

	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	stats  Stats
}

// New returns a proxy to the S3 endpoint target (http://host:port) that
// injects f, drawing faults from a generator seeded with seed so a failing
// run can be replayed.
func New(target string, f Faults, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("s3fault: target %q: want http://host:port", target)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), faults: f}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed by the client
		},
		// Quiet: broken connections are the point, not news.
		ErrorLog: nil,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "InternalError", "s3fault: upstream: "+err.Error())
		},
	}
	return p, nil
}

// SetFaults changes the faults from now on (0 disables them).
func (p *Proxy) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	return nil
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

type fault int

const (
	none fault = iota
	reject
	lose
	cut
	cutRequest
)

func (p *Proxy) draw(r *http.Request) (fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	f := p.faults
	if len(f.Methods) > 0 {
		ok := false
		for _, m := range f.Methods {
			ok = ok || m == r.Method
		}
		if !ok {
			return none, false
		}
	}
	if f.Match != nil && !f.Match(r) {
		return none, false
	}
	x := p.rng.Float64()
	coin := p.rng.IntN(2) == 0
	switch {
	case x < f.Reject:
		p.stats.Rejected++
		return reject, coin
	case x < f.Reject+f.Lose:
		p.stats.Lost++
		return lose, coin
	case x < f.Reject+f.Lose+f.Cut:
		p.stats.Cut++
		return cut, coin
	case x < f.Reject+f.Lose+f.Cut+f.CutRequest:
		p.stats.CutRequests++
		return cutRequest, coin
	}
	return none, false
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, coin := p.draw(r)
	switch f {
	case reject:
		io.Copy(io.Discard, r.Body)
		if coin {
			writeError(w, http.StatusServiceUnavailable, "SlowDown", "s3fault: injected slow down")
		} else {
			writeError(w, http.StatusInternalServerError, "InternalError", "s3fault: injected error")
		}
	case lose:
		rec := &discard{header: http.Header{}}
		p.rp.ServeHTTP(rec, r)
		writeError(w, http.StatusInternalServerError, "InternalError", "s3fault: answer lost")
	case cut:
		p.rp.ServeHTTP(&cutter{ResponseWriter: w}, r)
		// A response too short to cut halfway: drop the connection instead.
		panic(http.ErrAbortHandler)
	case cutRequest:
		if r.ContentLength > 1 {
			r.Body = &truncated{r: r.Body, left: r.ContentLength / 2}
		}
		p.rp.ServeHTTP(w, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

// discard swallows a response.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// cutter passes the headers and the first half of the body, then aborts
// the connection, so the client sees a short body after a 2xx.
type cutter struct {
	http.ResponseWriter
	left    int64
	started bool
}

func (c *cutter) WriteHeader(status int) {
	if status < 200 { // 100 Continue, from the proxy's transport goroutine
		c.ResponseWriter.WriteHeader(status)
		return
	}
	var n int64
	fmt.Sscan(c.Header().Get("Content-Length"), &n)
	if n < 2 {
		panic(http.ErrAbortHandler) // nothing to cut: drop the connection
	}
	c.left = n / 2
	c.started = true
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutter) Write(b []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if int64(len(b)) >= c.left {
		c.ResponseWriter.Write(b[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

// truncated yields left bytes of r, then an error, as a client that died
// mid-upload would.
type truncated struct {
	r    io.ReadCloser
	left int64
}

func (t *truncated) Read(b []byte) (int, error) {
	if t.left <= 0 {
		return 0, errors.New("s3fault: request body cut")
	}
	if int64(len(b)) > t.left {
		b = b[:t.left]
	}
	n, err := t.r.Read(b)
	t.left -= int64(n)
	return n, err
}

func (t *truncated) Close() error { return t.r.Close() }
