package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the test reads while serve may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The log is buffered; a graceful stop still leaves a line for every
// request served, the last ones included, and the stop's own lines after
// them.
func TestServeLogsEveryRequestOnStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--addr", addr}, io.Discard, &stderr)
	}()
	served := 0
	request := func(path string) bool {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		served++
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !request("/healthz"); {
		select {
		case code := <-done:
			t.Fatalf("serve = %d before serving:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 200 {
		request([]string{"/v2/", "/v2/r/manifests/missing", "/healthz"}[i%3])
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve = %d:\n%s", code, stderr.String())
	}
	out := stderr.String() // as serve returns: no later flush can help
	if got := strings.Count(out, "msg=request "); got != served {
		t.Fatalf("%d request lines after a graceful stop, want %d (one per request served)", got, served)
	}
	stopped := strings.LastIndex(out, "msg=stopped")
	if stopped < 0 {
		t.Fatalf("no line for the stop when serve returned:\n%s", out)
	}
	if last := strings.LastIndex(out, "msg=request "); last > stopped {
		t.Fatalf("a request line after the stop's:\n%s", out[last:])
	}
}

// A request's log line written to a file as it comes and through
// logWriter: the difference is the write syscall per request.
func BenchmarkRequestLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(map[bool]string{false: "direct", true: "buffered"}[buffered], func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var out io.Writer = f
			if buffered {
				lw := newLogWriter(f)
				defer lw.Close()
				out = lw
			}
			log := slog.New(slog.NewTextHandler(out, nil))
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("request_id", "de5712e72cf5bbb9"),
						slog.String("method", "GET"), slog.String("path", "/v2/bench/manifests/t1"), slog.Int("status", 200),
						slog.Int64("bytes_in", 0), slog.Int64("bytes_out", 428), slog.Duration("duration", 180*time.Microsecond),
						slog.String("remote", "127.0.0.1:51880"), slog.String("user_agent", "Go-http-client/1.1"))
				}
			})
		})
	}
}
