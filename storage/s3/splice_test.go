package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

// served is what a client got from serveBlob's server.
type served struct {
	body []byte
	err  error // the client's read error
	sent int64 // bytes SendTo sent
}

// serveBlob serves bytes [off, off+n) of blob d from s over real HTTP on
// loopback the way the registry does: Content-Length, SendTo, then Read
// for whatever SendTo left, the connection cut by net/http when the body
// falls short.
func serveBlob(t *testing.T, s *Store, d digest.Digest, off, n int64) served {
	t.Helper()
	sent := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.Open(r.Context(), d, off)
		if err != nil {
			sent <- -1
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
		m, err := rc.(storage.BlobSender).SendTo(w, n)
		sent <- m
		if err == nil && m < n {
			io.CopyN(struct{ io.Writer }{w}, rc, n-m)
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	return served{body: body, err: err, sent: <-sent}
}

// TestSpliceServesBlob: from a plain http:// endpoint, a blob, a range
// from an offset and a range in the middle reach the client byte-exact,
// all of them through SendTo (the raw connection spliced to the client's).
func TestSpliceServesBlob(t *testing.T) {
	s := newTestStore(t)
	if !spliceEndpoint(s.cfg) {
		t.Skipf("endpoint %s is not plain http", s.cfg.Endpoint)
	}
	data := randomBytes(71, 3<<20+17)
	d := putBlob(t, s, data)
	size := int64(len(data))
	var gets atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "GetObject" {
			gets.Add(1)
		}
	})
	for _, c := range []struct{ off, n int64 }{{0, size}, {12345, size - 12345}, {1000, 5000}, {size - 1, 1}} {
		got := serveBlob(t, s, d, c.off, c.n)
		if got.err != nil || !bytes.Equal(got.body, data[c.off:c.off+c.n]) {
			t.Fatalf("bytes %d+%d: got %d bytes (%v) that differ", c.off, c.n, len(got.body), got.err)
		}
		if got.sent != c.n {
			t.Fatalf("bytes %d+%d: SendTo sent %d, want all of them", c.off, c.n, got.sent)
		}
	}
	// The raw GETs are in the store's metrics, one each.
	if n := gets.Load(); n != 4 {
		t.Fatalf("%d GetObject calls observed for 4 reads", n)
	}
}

// TestSpliceOff: with splice=false the body is the SDK's, SendTo sends
// nothing, and the blob still reads back byte-exact.
func TestSpliceOff(t *testing.T) {
	direct := newTestStore(t)
	s := twin(t, direct, func(c *Config) { c.NoSplice = true })
	data := randomBytes(72, 1<<20)
	d := putBlob(t, direct, data)
	got := serveBlob(t, s, d, 0, int64(len(data)))
	if got.err != nil || !bytes.Equal(got.body, data) {
		t.Fatalf("got %d bytes (%v) that differ", len(got.body), got.err)
	}
	if got.sent != 0 {
		t.Fatalf("SendTo sent %d bytes with splice off", got.sent)
	}
}

// TestSpliceCutBodies: a spliced body that S3 cuts mid-way is resumed
// (byte-exact); when every GET is cut, the client's read fails, never a
// short body passed off as complete.
func TestSpliceCutBodies(t *testing.T) {
	direct := newTestStore(t)
	data := randomBytes(73, 2<<20)
	d := putBlob(t, direct, data)
	n := int64(len(data))

	s, proxy := faultyStore(t, direct, s3fault.Faults{Cut: 0.5, Methods: []string{http.MethodGet}})
	// Four reads, then more until a GET was cut: at 0.5 a seed may spare
	// the first four.
	for i := 0; i < 4 || proxy.Stats().Cut == 0 && i < 40; i++ {
		got := serveBlob(t, s, d, 0, n)
		if got.err != nil || !bytes.Equal(got.body, data) {
			t.Fatalf("read %d: %d bytes (%v) that differ", i, len(got.body), got.err)
		}
	}
	if proxy.Stats().Cut == 0 {
		t.Fatal("no GET was cut")
	}

	s, _ = faultyStore(t, direct, s3fault.Faults{Cut: 1, Methods: []string{http.MethodGet}})
	got := serveBlob(t, s, d, 0, n)
	if got.err == nil || int64(len(got.body)) >= n {
		t.Fatalf("every GET cut: the client read %d of %d bytes and error %v, want a cut connection", len(got.body), n, got.err)
	}
	if got.sent <= 0 || got.sent >= n {
		t.Fatalf("every GET cut: SendTo sent %d of %d, want part of it", got.sent, n)
	}
}

// fakeS3 answers every connection with answer, whatever it asked.
func fakeS3(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if readRequest(c) == nil {
					io.WriteString(c, answer)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestRawGetRefuses: answers the raw GET cannot take as they are are
// refused before any byte is sent (and Open then uses the SDK).
func TestRawGetRefuses(t *testing.T) {
	huge := "X-Pad: " + strings.Repeat("a", 40<<10) + "\r\n"
	for _, c := range []struct {
		name   string
		off    int64
		answer string
	}{
		{"header over 32 KiB", 0, "HTTP/1.1 200 OK\r\n" + huge + "Content-Length: 3\r\n\r\nabc"},
		{"chunked", 0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"no length", 0, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"},
		{"error status", 0, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"},
		{"whole object for a range", 5, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"},
		{"range elsewhere", 5, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/3\r\nContent-Length: 3\r\n\r\nabc"},
		{"range length mismatch", 5, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 3\r\n\r\nabc"},
		{"two lengths", 0, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc"},
		{"garbage", 0, "HELLO\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Bucket: "fake", Endpoint: fakeS3(t, c.answer), MaxAttempts: 1}
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			body, _, _, err := s.rawGet(context.Background(), "k", c.off)
			if err == nil {
				body.Close()
				t.Fatal("answer taken")
			}
			if c.name == "header over 32 KiB" && !errors.Is(err, errRawHeaderTooLarge) {
				t.Fatalf("error %v, want %v", err, errRawHeaderTooLarge)
			}
		})
	}
	// The same server answering well is taken: the refusals above are
	// the answers', not the fake's.
	cfg := Config{Bucket: "fake", Endpoint: fakeS3(t, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-7/8\r\nContent-Length: 3\r\nEtag: \"e\"\r\n\r\nabc")}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, etag, size, err := s.rawGet(context.Background(), "k", 5)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil || string(b) != "abc" || etag != `"e"` || size != 8 {
		t.Fatalf("body %q (%v), etag %s, size %d", b, err, etag, size)
	}
}

func TestSpliceEndpoint(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want bool
	}{
		{Config{Endpoint: "http://127.0.0.1:7070"}, true},
		{Config{Endpoint: "http://minio.internal"}, true},
		{Config{Endpoint: "http://127.0.0.1:7070", NoSplice: true}, false},
		{Config{Endpoint: "http://127.0.0.1:7070", ReadAhead: 2}, false},
		{Config{Endpoint: "https://s3.example.com"}, false},
		{Config{}, false},
	} {
		if got := spliceEndpoint(c.cfg); got != c.want {
			t.Errorf("%+v: %v, want %v", c.cfg, got, c.want)
		}
	}
}
