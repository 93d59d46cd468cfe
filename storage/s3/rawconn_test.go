package s3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
)

// readRequest reads one request from a fake server's connection, head
// and body, before the server answers, as a server does: one that answers
// and closes with the request unread (or part of it, split across
// reads, still to come) has the kernel reset the connection and drop the
// answer's unsent tail.
func readRequest(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

// tcpRelay forwards connections to addr and remembers them, so a test
// can count them and cut them.
type tcpRelay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn // the client sides accepted
}

func newTCPRelay(t *testing.T, addr string) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{ln: ln}
	t.Cleanup(func() { ln.Close(); r.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return r
}

func (r *tcpRelay) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// cut closes every connection accepted so far, as a server closes idle
// keep-alive connections.
func (r *tcpRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

// relayedStore is a twin of the test store whose endpoint is a tcpRelay
// in front of the real one.
func relayedStore(t *testing.T, edit ...func(*Config)) (*Store, *Store, *tcpRelay) {
	t.Helper()
	s := newTestStore(t)
	u, err := url.Parse(s.cfg.Endpoint)
	if err != nil || u.Scheme != "http" {
		t.Skip("PACKREG_TEST_S3 has no plain http:// endpoint")
	}
	r := newTCPRelay(t, u.Host)
	edit = append([]func(*Config){func(c *Config) { c.Endpoint = "http://" + r.ln.Addr().String() }}, edit...)
	return s, twin(t, s, edit...), r
}

// TestSmallCallsOwnConnection: the PutObject and HeadObject of small
// pushes to a plain http:// endpoint go one after another over one
// connection the Store keeps, with none of net/http's per-connection
// goroutines (rawconn.go).
func TestSmallCallsOwnConnection(t *testing.T) {
	direct, s, relay := relayedStore(t)
	ctx := context.Background()
	// Other stores of the test process have Transport connections of
	// their own: only new ones count.
	before := transportConns()
	var blobs [][]byte
	for i := range 20 {
		data := randomBytes(uint64(700+i), 1024)
		d := digest.FromBytes(digest.SHA256, data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Stat(ctx, d); err != nil || n != int64(len(data)) {
			t.Fatalf("Stat = %d, %v; want %d", n, err, len(data))
		}
		blobs = append(blobs, data)
	}
	if after := transportConns(); after > before {
		t.Errorf("the small calls opened %d net/http Transport connections (goroutines up), want none", after-before)
	}
	if n := relay.accepted(); n != 1 {
		t.Errorf("20 Puts and Stats, one at a time, used %d connections, want 1", n)
	}
	for _, b := range blobs {
		checkBlob(t, direct, b)
	}
}

// transportConns counts the net/http Transport connections of the
// process by their reader goroutines.
func transportConns() int {
	buf := make([]byte, 4<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "net/http.(*persistConn).readLoop(")
}

// TestSmallCallsAfterServerClosed: a kept connection the server closed
// while it sat idle is not an error: the call goes on a new one, without
// using up an attempt of the retryer.
func TestSmallCallsAfterServerClosed(t *testing.T) {
	direct, s, relay := relayedStore(t, func(c *Config) { c.MaxAttempts = 1 })
	ctx := context.Background()
	for i := range 3 {
		data := randomBytes(uint64(800+i), 1024)
		d := digest.FromBytes(digest.SHA256, data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatalf("Put %d after the server closed the kept connection: %v", i, err)
		}
		relay.cut()
		if _, err := s.Stat(ctx, d); err != nil {
			t.Fatalf("Stat %d after the server closed the kept connection: %v", i, err)
		}
		relay.cut()
		checkBlob(t, direct, data)
	}
	if n := relay.accepted(); n != 6 {
		t.Errorf("6 calls, each after a cut, used %d connections, want 6", n)
	}
}

// TestSmallCallAnswerHeadCapped: a server whose answer's head runs on
// past maxRawHeader gets errRawHeaderTooLarge, not the memory to hold it
// (before, the head was read whole, however long).
func TestSmallCallAnswerHeadCapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// A client slow to read (under load) saw the head end short of the
		// cap (unexpected EOF) while this answered unread (readRequest).
		if readRequest(c) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for range 4 * maxRawHeader / len(line) {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		io.WriteString(c, "Content-Length: 0\r\n\r\n")
	}()
	rc := newRawClient("http://" + ln.Addr().String())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, "http://"+ln.Addr().String()+"/b/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, errRawHeaderTooLarge) {
		t.Fatalf("Do = %v, want %v", err, errRawHeaderTooLarge)
	}
}
