package main

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

// The client CPU of a pull row is the bench's own, read from /proc like
// the server's: it must move when this process works, and a process that
// is gone reads as 0, not as garbage.
func TestProcCPUCountsThisProcess(t *testing.T) {
	before := procCPU(os.Getpid())
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for procCPU(os.Getpid()) < before+50*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("procCPU(self) stayed at %v after 30 s of hashing (from %v)", procCPU(os.Getpid()), before)
		}
		sha256.Sum256(buf)
	}
	if got := procCPU(1 << 30); got != 0 {
		t.Errorf("procCPU(no such pid) = %v, want 0", got)
	}
}

func TestClientCPUPerOp(t *testing.T) {
	r := result{ops: 4, clientCPU: 200 * time.Millisecond, cpu: 100 * time.Millisecond}
	if got := metricClientCPUPerOp.of(r); got != 50 {
		t.Errorf("client cpu per op = %v ms, want 50", got)
	}
	if got := metricCPUPerOp.of(r); got != 25 {
		t.Errorf("server cpu per op = %v ms, want 25", got)
	}
}
