package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDebugConfig(t *testing.T) {
	for _, tc := range []struct {
		file, wantErr string
	}{
		{"", ""},
		{"debug: {pprof_listen: 127.0.0.1:6060}\n", ""},
		{"debug: {pprof_listen: \"[::1]:0\", block_profile_rate: 1, mutex_profile_fraction: 5}\n", ""},
		{"debug: {pprof_listen: localhost:6060}\n", ""},
		{"debug: {pprof_listen: 0.0.0.0:6060}\n", "must be a loopback address"},
		{"debug: {pprof_listen: \":6060\"}\n", "must be a loopback address"},
		{"debug: {pprof_listen: profiles.example:6060}\n", "must be a loopback address"},
		{"debug: {pprof_listen: 127.0.0.1}\n", "want HOST:PORT"},
		{"debug: {pprof_listen: 127.0.0.1:0, block_profile_rate: -1}\n", "debug.block_profile_rate must be >= 0"},
		{"debug: {pprof_listen: 127.0.0.1:0, mutex_profile_fraction: -1}\n", "debug.mutex_profile_fraction must be >= 0"},
		{"debug: {block_profile_rate: 1}\n", "need debug.pprof_listen"},
		{"debug: {pprof: true}\n", "field pprof not found"},
	} {
		_, err := parse(t, tc.file, "--data", t.TempDir())
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: err = %v, want %q", tc.file, err, tc.wantErr)
		}
	}
	if c := DefaultConfig(); c.Debug != (DebugConfig{}) {
		t.Errorf("debug is on by default: %+v", c.Debug)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The profiles are served on their own listener, with the sampling rates
// the config asks for, and nowhere once it is closed.
func TestPprofListener(t *testing.T) {
	if p, err := startPprof(DebugConfig{}, slog.New(slog.DiscardHandler)); p != nil || err != nil {
		t.Fatalf("off: %v, %v", p, err)
	}
	// Off, nothing samples the heap for a profile nobody can read.
	if runtime.MemProfileRate != 0 {
		t.Errorf("profiles off: MemProfileRate %d, want 0", runtime.MemProfileRate)
	}
	p, err := startPprof(DebugConfig{PprofListen: "127.0.0.1:0", BlockProfileRate: 1, MutexProfileFraction: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.MemProfileRate != defaultMemProfileRate {
		t.Errorf("profiles on: MemProfileRate %d, want %d", runtime.MemProfileRate, defaultMemProfileRate)
	}
	base := "http://" + p.addr()
	if code, body := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("index: %d %q", code, clipString(body))
	}
	// A block and a mutex contention the samplers must have seen.
	ch := make(chan struct{})
	go func() { time.Sleep(5 * time.Millisecond); close(ch) }()
	<-ch
	for _, name := range []string{"block", "mutex", "heap", "goroutine"} {
		code, body := get(t, base+"/debug/pprof/"+name+"?debug=1")
		if code != 200 {
			t.Fatalf("%s: %d %q", name, code, clipString(body))
		}
		if name == "block" && !strings.Contains(body, "TestPprofListener") {
			t.Errorf("block profile has no sample of this test's wait:\n%s", clipString(body))
		}
	}
	if code, body := get(t, base+"/debug/pprof/profile?seconds=1"); code != 200 || len(body) == 0 {
		t.Fatalf("cpu profile: %d, %d bytes", code, len(body))
	}
	if code, _ := get(t, base+"/debug/pprof/cmdline"); code != 200 {
		t.Fatalf("cmdline: %d", code)
	}
	p.close()
	if _, err := http.Get(base + "/debug/pprof/"); err == nil {
		t.Fatal("profiles still served after close")
	}
}

// serve starts the listener from the config file and stops it with the
// server; the registry's own address does not serve the profiles.
func TestServePprof(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addr, profAddr := free(), free()
	cfg := filepath.Join(t.TempDir(), "packreg.yaml")
	if err := os.WriteFile(cfg, []byte("debug: {pprof_listen: \""+profAddr+"\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--data", t.TempDir(), "--addr", addr}, io.Discard, io.Discard)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(t, "http://"+profAddr+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof: %d %q", code, clipString(body))
	}
	if code, _ := get(t, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("main address serves /debug/pprof/: %d", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve = %d", code)
	}
	if _, err := http.Get("http://" + profAddr + "/debug/pprof/"); err == nil {
		t.Fatal("profiles still served after serve returned")
	}
}

func clipString(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}
