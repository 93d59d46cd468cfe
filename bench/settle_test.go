package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDirtySumsDirtyAndWriteback(t *testing.T) {
	meminfo := "MemTotal:       24641536 kB\nDirty:             10240 kB\nWriteback:          2048 kB\nWritebackTmp:          7 kB\n"
	got, err := parseDirty([]byte(meminfo))
	if err != nil || got != 12288<<10 {
		t.Fatalf("parseDirty = %d, %v; want %d", got, err, 12288<<10)
	}
	if _, err := parseDirty([]byte("MemTotal: 1 kB\nDirty: 5 kB\n")); err == nil {
		t.Fatal("a meminfo without Writeback parsed")
	}
	if _, err := parseDirty([]byte("Dirty: x kB\nWriteback: 0 kB\n")); err == nil {
		t.Fatal("a malformed Dirty line parsed")
	}
	// The real file has both lines.
	if _, err := dirtyBytes(); err != nil {
		t.Fatal(err)
	}
}

// TestSettleWaitsForTheCondition: settle syncs once, then reads until
// the figure is at most the limit, and no longer.
func TestSettleWaitsForTheCondition(t *testing.T) {
	seq := []int64{900 << 20, 300 << 20, 70 << 20, 60 << 20, 1 << 30}
	reads, syncs := 0, 0
	s := &settler{
		sync:  func() { syncs++ },
		dirty: func() (int64, error) { v := seq[reads]; reads++; return v, nil },
		limit: 64 << 20, poll: time.Millisecond, deadline: time.Minute,
	}
	d, ok, err := s.settle(t.Context())
	if err != nil || !ok || d != 60<<20 {
		t.Fatalf("settle = %d, %v, %v; want 60 MiB, settled", d, ok, err)
	}
	if reads != 4 || syncs != 1 {
		t.Fatalf("%d reads, %d syncs; want 4 and 1", reads, syncs)
	}
}

// TestSettleGivesUpAtTheDeadline: a machine that never drains ends the
// wait (not settled, with the figure), and an unreadable meminfo is an
// error.
func TestSettleGivesUpAtTheDeadline(t *testing.T) {
	s := &settler{sync: func() {}, dirty: func() (int64, error) { return 1 << 30, nil },
		limit: 64 << 20, poll: time.Millisecond, deadline: 20 * time.Millisecond}
	d, ok, err := s.settle(t.Context())
	if err != nil || ok || d != 1<<30 {
		t.Fatalf("settle = %d, %v, %v; want 1 GiB, not settled, no error", d, ok, err)
	}
	s.dirty = func() (int64, error) { return 0, errors.New("no meminfo") }
	if _, _, err := s.settle(t.Context()); err == nil {
		t.Fatal("a failed read settled")
	}
	// Through the bench, not settling is a note, not a failure.
	b := &bench{rep: &report{}, backend: "disk", settler: &settler{sync: func() {}, dirty: func() (int64, error) { return 1 << 30, nil },
		limit: 64 << 20, poll: time.Millisecond, deadline: time.Millisecond}}
	if err := b.settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(b.rep.notes) != 1 || !strings.Contains(b.rep.notes[0], "did not drain") {
		t.Fatalf("notes %q, want one saying the pages did not drain", b.rep.notes)
	}
}

// TestWriteBesideWritesTheRowsBytes: a sample writes the row's count of
// files of its size, fsynced, leaves nothing behind, and the push cell
// compares the row with the median of those samples.
func TestWriteBesideWritesTheRowsBytes(t *testing.T) {
	dir := t.TempDir()
	b := &bench{rep: &report{}, diskData: dir}
	b.rep.limits.shaRuns, b.rep.limits.writeRuns = []float64{1000}, []float64{1e9} // the run figures, which the row must not use
	w := b.startWriteBeside("push 3 MiB monolithic x2", 3<<20+5, 2)
	seen := 0
	w.buf = w.buf[:1<<20+3] // a buffer shorter than a file: it cycles
	for range 3 {
		if err := w.sample(); err != nil {
			t.Fatal(err)
		}
		seen++
	}
	runs := *b.rep.limits.beside["push 3 MiB monolithic x2"]
	if len(runs) != seen {
		t.Fatalf("samples %v, want %d", runs, seen)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	limit := b.rep.limits.writeLimit("push 3 MiB monolithic x2")
	if limit != statsOf(runs).median {
		t.Fatalf("write limit %v, want the median of %v", limit, runs)
	}
	r := result{ops: 2, bytes: int64(limit / 2 * 1e6), elapsed: time.Second}
	got := b.pushCell("push 3 MiB monolithic x2", r)(&b.rep.limits)
	if !strings.Contains(got, "50% of write beside it") {
		t.Fatalf("push cell %q, want 50%% of the write beside it", got)
	}
	// A row without samples beside it keeps the bracketing runs.
	if got := b.pushCell("push 9 MiB monolithic", r)(&b.rep.limits); strings.Contains(got, "beside") {
		t.Fatalf("push cell without samples %q names a write beside it", got)
	}
}

// TestWriteSyncedWritesExactlySize: the file holds size bytes of the
// cycled buffer.
func TestWriteSyncedWritesExactlySize(t *testing.T) {
	buf := genBytes(1, 1000)
	p, took, err := writeSynced(t.TempDir(), buf, 2500)
	if err != nil || took <= 0 {
		t.Fatal(took, err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, buf...), buf...), buf[:500]...)
	if string(got) != string(want) {
		t.Fatalf("file of %d bytes, want %d bytes of the cycled buffer", len(got), len(want))
	}
}
