package registry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// wrapStore serves its blobs through bodies wrap makes of the store's.
type wrapStore struct {
	storage.BlobStore
	wrap func(io.ReadCloser) io.ReadCloser
}

func (s *wrapStore) Open(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, error) {
	rc, err := s.BlobStore.Open(ctx, d, off)
	if err != nil {
		return nil, err
	}
	return s.wrap(rc), nil
}

// streamStore serves its blobs as plain readers, the way S3 bodies are,
// and notes the largest read the registry asks of them.
type streamStore struct {
	largest atomic.Int64
}

type notingReader struct {
	rc io.ReadCloser
	s  *streamStore
}

func (r *notingReader) Read(p []byte) (int, error) {
	for {
		old := r.s.largest.Load()
		if int64(len(p)) <= old || r.s.largest.CompareAndSwap(old, int64(len(p))) {
			break
		}
	}
	return r.rc.Read(p)
}

func (r *notingReader) Close() error { return r.rc.Close() }

// TestBlobBodyCopyBuffer: a blob body that is not a file is sent through
// 256 KiB reads, not net/http's 32 KiB ones (a read and a write syscall
// each), whole and in ranges.
func TestBlobBodyCopyBuffer(t *testing.T) {
	st := &streamStore{}
	getRanges(t, func(rc io.ReadCloser) io.ReadCloser { return &notingReader{rc: rc, s: st} },
		func(rg string, _ []byte) { st.largest.Store(0) },
		func(rg string, _ []byte) {
			if got := st.largest.Load(); got < 256<<10 {
				t.Fatalf("range %q: reads of at most %d bytes, want 256 KiB", rg, got)
			}
		})
}

// getRanges pushes a 1 MiB blob to a registry whose blob bodies wrap
// makes, and GETs it whole and in ranges over HTTP, checking the bytes;
// before and after run around each GET.
func getRanges(t *testing.T, wrap func(io.ReadCloser) io.ReadCloser, before, after func(rg string, want []byte)) {
	t.Helper()
	blobs, meta, _ := teststores.Open(t)
	srv := httptest.NewServer(registry.New(&wrapStore{BlobStore: blobs, wrap: wrap}, meta))
	defer srv.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	d := pushBlob(t, srv.Config.Handler, "copy/test", data)
	for _, c := range []struct {
		rg   string
		want []byte
	}{{"", data}, {"bytes=1000-", data[1000:]}, {"bytes=10-600009", data[10:600010]}} {
		before(c.rg, c.want)
		req, _ := http.NewRequest("GET", srv.URL+"/v2/copy/test/blobs/"+d.String(), nil)
		if c.rg != "" {
			req.Header.Set("Range", c.rg)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, c.want) {
			t.Fatalf("range %q: %d bytes (%v), want %d", c.rg, len(body), err, len(c.want))
		}
		after(c.rg, c.want)
	}
}

// fileWriter is a ResponseWriter with ReadFrom that notes what it was
// handed: the sendfile path needs the *os.File itself, under at most the
// io.LimitedReader net/http unwraps.
type fileWriter struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (w *fileWriter) ReadFrom(r io.Reader) (int64, error) {
	w.src = r
	return io.Copy(w.ResponseRecorder, r)
}

// TestBlobBodyFileKeepsSendfile: a disk blob, whole or a range, reaches
// the writer's ReadFrom as the file, so the kernel sends it, to a client
// on another host and on this one (a loopback client was once given a
// copy instead: README, Benchmarks, pulls on loopback).
func TestBlobBodyFileKeepsSendfile(t *testing.T) {
	h := newRegistry(t)
	data := bytes.Repeat([]byte("x"), 100000)
	d := pushBlob(t, h, "copy/file", data)
	for _, from := range []string{"192.0.2.1:1234", "127.0.0.1:40000", "[::1]:40000"} {
		for _, rg := range []string{"", "bytes=5-"} {
			req := httptest.NewRequest("GET", "/v2/copy/file/blobs/"+d.String(), nil)
			req.RemoteAddr = from
			if rg != "" {
				req.Header.Set("Range", rg)
			}
			w := &fileWriter{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(w, req)
			if w.Code/100 != 2 {
				t.Fatalf("%s, range %q: status %d", from, rg, w.Code)
			}
			src := w.src
			if lr, ok := src.(*io.LimitedReader); ok {
				src = lr.R
			}
			if _, ok := src.(*os.File); !ok {
				t.Fatalf("%s, range %q: ReadFrom got a %T, want the *os.File", from, rg, w.src)
			}
		}
	}
}

// halfSender is a body with SendTo (storage.BlobSender) that sends at
// most half of what it is asked, as an S3 body whose connection broke
// does.
type halfSender struct {
	io.ReadCloser
	sent *atomic.Int64
}

func (h *halfSender) SendTo(w io.Writer, n int64) (int64, error) {
	m, err := io.CopyN(w, h.ReadCloser, n/2)
	h.sent.Add(m)
	return m, err
}

// TestBlobBodySender: a body that can send itself (an S3 body spliced
// from its connection) is handed the writer, and what it did not send is
// read and sent after it, whole and in ranges.
func TestBlobBodySender(t *testing.T) {
	var sent atomic.Int64
	getRanges(t, func(rc io.ReadCloser) io.ReadCloser { return &halfSender{ReadCloser: rc, sent: &sent} },
		func(string, []byte) { sent.Store(0) },
		func(rg string, want []byte) {
			if got := sent.Load(); got != int64(len(want)/2) {
				t.Fatalf("range %q: SendTo sent %d bytes, want %d", rg, got, len(want)/2)
			}
		})
}
