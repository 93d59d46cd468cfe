package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// resident counts path's pages in the page cache (mincore over a mapping).
func resident(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestEvictBinary(t *testing.T) {
	// In the package's own directory, not $TMPDIR: on tmpfs the page
	// cache is the file, and nothing can be dropped.
	dir, err := os.MkdirTemp(".", "evict-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "bin")
	body := bytes.Repeat([]byte("packreg "), 1<<17) // 1 MiB, just written: all cached
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, path); n == 0 {
		t.Fatal("a file just written has no page in the page cache")
	}
	if err := evictBinary(path); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, path); n != 0 {
		t.Fatalf("%d pages still cached after evictBinary", n)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes (%v), want the file unchanged", len(got), err)
	}
}
