package s3

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The direct calls (direct.go) to a plain http:// endpoint go over
// HTTP/1.1 connections the Store keeps itself: net/http's Transport gives
// every connection a reader and a writer goroutine, and a call hands its
// request to one and its answer back from the other, three goroutines
// woken per call. A 1 KiB push on S3 + PostgreSQL spent 0.33 of its 4.8 s
// of profiled CPU (7%) in them. Here the caller's goroutine writes the
// request and reads the answer. What the Transport did that matters is
// kept: connections reused and pooled (up to maxIdleRaw, none older
// than rawIdleTimeout), the call's context and a response header
// timeout, a call on a reused connection that the server had closed sent
// again on a fresh one (the direct calls are idempotent), and the same
// answer parsing (http.ReadResponse), with the head capped as the
// Transport caps it (here at maxRawHeader, as rawGet's). A connection
// goes back to the pool only once its answer was read to the end and the
// server keeps it open.

const (
	maxIdleRaw     = 100 // as the Transport's MaxIdleConnsPerHost
	rawIdleTimeout = 90 * time.Second
)

// rawClient is an aws.HTTPClient over the Store's own connections to
// one plain-HTTP host.
type rawClient struct {
	addr string // host:port to dial
	mu   sync.Mutex
	idle []*rawConn // most recently used last
}

type rawConn struct {
	c    net.Conn
	hr   *headerReader // caps an answer's head at maxRawHeader, as rawGet's
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it went idle
}

// newRawClient returns the client for endpoint, or nil when its calls
// must go through net/http: not plain http, or sent through a proxy.
func newRawClient(endpoint string) *rawClient {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	return &rawClient{addr: hostPort(u)}
}

// Do sends req (whose body, if any, GetBody gives again) and returns its
// answer; closing the body returns the connection to the pool when the
// body was read to its end.
func (rc *rawClient) Do(req *http.Request) (*http.Response, error) {
	for {
		// Before taking a connection: a body that cannot be given again
		// (a streamed part's, once some of it went) fails the call
		// without costing an idle connection.
		if req.Body != nil && req.GetBody != nil {
			var err error
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		c, reused, err := rc.get(req.Context())
		if err != nil {
			return nil, err
		}
		resp, answered, err := rc.roundTrip(c, req)
		if err == nil {
			return resp, nil
		}
		c.c.Close()
		// A reused connection the server closed while it sat idle fails
		// before any answer: that is not the server's answer to this
		// call, so it goes again on a new connection, as net/http does.
		// A silent server (a timeout) is an answer of sorts: the retryer
		// decides.
		var ne net.Error
		if !reused || answered || req.Context().Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, err
		}
	}
}

// get takes the most recent idle connection, or dials one.
func (rc *rawClient) get(ctx context.Context) (c *rawConn, reused bool, err error) {
	rc.mu.Lock()
	for len(rc.idle) > 0 {
		c = rc.idle[len(rc.idle)-1]
		rc.idle = rc.idle[:len(rc.idle)-1]
		if time.Since(c.used) < rawIdleTimeout {
			rc.mu.Unlock()
			return c, true, nil
		}
		c.c.Close()
	}
	rc.mu.Unlock()
	d := net.Dialer{Timeout: rawDialTimeout}
	nc, err := d.DialContext(ctx, "tcp", rc.addr)
	if err != nil {
		return nil, false, err
	}
	hr := &headerReader{r: nc, left: -1}
	return &rawConn{c: nc, hr: hr, br: bufio.NewReader(hr), bw: bufio.NewWriter(nc)}, false, nil
}

// put returns c to the pool, or closes it when the pool is full.
func (rc *rawClient) put(c *rawConn) {
	c.used = time.Now()
	rc.mu.Lock()
	if len(rc.idle) < maxIdleRaw {
		rc.idle = append(rc.idle, c)
		c = nil
	}
	rc.mu.Unlock()
	if c != nil {
		c.c.Close()
	}
}

// roundTrip writes req on c and reads the answer's head. answered
// reports that some of the answer arrived (so the call is not to be sent
// again).
func (rc *rawClient) roundTrip(c *rawConn, req *http.Request) (resp *http.Response, answered bool, err error) {
	ctx := req.Context()
	// A cancelled call unblocks the write or the read at once.
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	c.c.SetDeadline(time.Now().Add(responseHeaderTimeout))
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, false, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, false, err
	}
	c.hr.left = maxRawHeader
	if _, err := c.br.Peek(1); err != nil {
		stop()
		return nil, false, err
	}
	resp, err = http.ReadResponse(c.br, req)
	if err != nil {
		if c.hr.left == 0 {
			err = errRawHeaderTooLarge
		}
		stop()
		return nil, true, err
	}
	c.hr.left = -1 // the body: its reader bounds it
	resp.Body = &rawAnswer{body: resp.Body, rc: rc, c: c, stop: stop, keep: !resp.Close}
	return resp, true, nil
}

// rawAnswer is an answer's body: its connection goes back to the pool
// when it was read to EOF and the server keeps it open.
type rawAnswer struct {
	body io.ReadCloser
	rc   *rawClient
	c    *rawConn
	stop func() bool
	keep bool
	eof  bool
}

func (a *rawAnswer) Read(p []byte) (int, error) {
	n, err := a.body.Read(p)
	if errors.Is(err, io.EOF) {
		a.eof = true
	}
	return n, err
}

func (a *rawAnswer) Close() error {
	if a.c == nil {
		return nil
	}
	c := a.c
	a.c = nil
	// The context's deadline-setter must not fire on a pooled connection.
	if a.stop() && a.eof && a.keep {
		c.c.SetDeadline(time.Time{})
		a.rc.put(c)
		return nil
	}
	return c.c.Close()
}
