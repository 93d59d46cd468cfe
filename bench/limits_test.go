package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPullBesideSamplesTheRowsTransfers: the pull limit of a row reads a
// file of the row's size the row's number of times per sample, and the
// row's cell is compared with the median of those samples, not with the
// figure from the start.
func TestPullBesideSamplesTheRowsTransfers(t *testing.T) {
	b := &bench{rep: &report{}, diskData: t.TempDir()}
	b.rep.limits.loopback = 1e9 // the start figure, which the row must not use
	p, err := b.startPullBeside("pull 3 MiB x2", 3<<20+5, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.sample(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	runs := *b.rep.limits.beside["pull 3 MiB x2"]
	if len(runs) != 3 {
		t.Fatalf("samples %v, want 3", runs)
	}
	limit, what := b.rep.limits.pullLimit("pull 3 MiB x2")
	if limit != statsOf(runs).median || !strings.Contains(what, "beside") {
		t.Fatalf("limit %v (%s), want the median of %v", limit, what, runs)
	}
	p.close()
	if left, _ := filepath.Glob(filepath.Join(b.diskData, "*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	// A row without samples (a failed start) falls back to the start figure.
	if limit, _ := b.rep.limits.pullLimit("pull 1 MiB x16"); limit != 1e9 {
		t.Fatalf("fallback limit %v, want the start figure", limit)
	}
}

// TestFileServerReadsWholeFile: a sample is the whole file each time; a
// short body is an error, not a faster figure.
func TestFileServerReadsWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, genBytes(7, 1<<20+3), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := serveFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	if mbps, err := fs.get(t.Context(), 2, make([]byte, 1<<20)); err != nil || mbps <= 0 {
		t.Fatalf("get: %v MB/s, %v", mbps, err)
	}
	fs.size++ // the file now looks one byte short of what the server must send
	if _, err := fs.get(t.Context(), 1, make([]byte, 1<<20)); err == nil {
		t.Fatal("a short read passed")
	}
}
