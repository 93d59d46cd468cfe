package registry_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
)

// BenchmarkBlobPushPull: a 64 MiB monolithic push (POST, PUT ?digest=)
// and a pull, over loopback HTTP, on the disk store. The client is in the
// process too, so compare profiles by function, not totals.
func BenchmarkBlobPushPull(b *testing.B) {
	const size = 64 << 20
	blobs, meta, _ := teststores.Open(b)
	srv := httptest.NewServer(registry.New(blobs, meta))
	defer srv.Close()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(data)
	d := sha(data)
	b.Run("push", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			pushWhole(b, srv.URL, data, d.String())
			b.StopTimer()
			if err := blobs.Delete(b.Context(), d); err != nil { // or the next push is a no-op
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	// The same blob in 8 MiB PATCHes: what a chunked push costs beyond
	// the monolithic one is per PATCH (session load and save, reopening
	// the data file, the hash state), so compare the two per op.
	b.Run("chunked", func(b *testing.B) {
		const chunk = 8 << 20
		b.SetBytes(size)
		for b.Loop() {
			resp, err := http.Post(srv.URL+"/v2/bench/blobs/uploads/", "", nil)
			if err != nil || resp.StatusCode != 202 {
				b.Fatalf("POST: %v %v", resp.Status, err)
			}
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			for off := 0; off < size; off += chunk {
				req, _ := http.NewRequest("PATCH", srv.URL+loc, bytes.NewReader(data[off:off+chunk]))
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+chunk-1))
				resp, err = http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 202 {
					b.Fatalf("PATCH: %v %v", resp.Status, err)
				}
				resp.Body.Close()
				loc = resp.Header.Get("Location")
			}
			req, _ := http.NewRequest("PUT", srv.URL+loc+queryJoin(loc)+"digest="+d.String(), nil)
			resp, err = http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 201 {
				b.Fatalf("PUT: %v %v", resp.Status, err)
			}
			resp.Body.Close()
			b.StopTimer()
			if err := blobs.Delete(b.Context(), d); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("pull", func(b *testing.B) {
		pushWhole(b, srv.URL, data, d.String()) // the pushes above deleted theirs
		b.SetBytes(size)
		for b.Loop() {
			resp, err := http.Get(srv.URL + "/v2/bench/blobs/" + d.String())
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("GET: %v %v", resp.Status, err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				b.Fatalf("GET: %d bytes, %v", n, err)
			}
		}
	})
}

// pushWhole pushes data as blob d in one PUT of an upload session.
func pushWhole(b *testing.B, base string, data []byte, d string) {
	resp, err := http.Post(base+"/v2/bench/blobs/uploads/", "", nil)
	if err != nil || resp.StatusCode != 202 {
		b.Fatalf("POST: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequest("PUT", base+loc+queryJoin(loc)+"digest="+d, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		b.Fatalf("PUT: %v %v", resp.Status, err)
	}
	resp.Body.Close()
}

// queryJoin is what goes between loc and one more query parameter.
func queryJoin(loc string) string {
	if strings.Contains(loc, "?") {
		return "&"
	}
	return "?"
}

// BenchmarkSmallPush: 1 KiB blobs pushed one at a time in a single
// request (POST ?digest=), each new, on the disk and SQLite stores, as the
// bench's 1-client small row does, without the network: the handler is
// called directly. Besides ns/op it reports the process's CPU per push
// (getrusage), which the machine's load moves less than the rate. Each
// push appends its audit record in its link's transaction, as a server's
// do (audit.Recorder.Watch).
func BenchmarkSmallPush(b *testing.B) {
	blobs, meta, _ := teststores.Open(b)
	meta.AuditInline()
	h := registry.New(blobs, meta)
	body := make([]byte, 1024)
	report := teststores.ReportCPU(b)
	n := 0
	for b.Loop() {
		binary.LittleEndian.PutUint64(body, uint64(n))
		n++
		req := httptest.NewRequest("POST", "/v2/bench/small/blobs/uploads/?digest="+sha(body).String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("push: %d %s", w.Code, w.Body)
		}
	}
	report()
}
