package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Context switches are summed over every thread's status: the process's
// own status counts its main thread only, where a Go server does little.
func TestTaskSwitchesSumsThreads(t *testing.T) {
	dir := t.TempDir()
	for tid, status := range map[string]string{
		"101": "Name:\tpackreg\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t2\n",
		"102": "Name:\tpackreg\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t30\nnonvoluntary_ctxt_switches:\t0\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, tid, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := taskSwitches(dir); err != nil || got != 39 {
		t.Errorf("taskSwitches = %d, %v; want 39", got, err)
	}
	// A thread whose status lacks a counter is an error, not a silent 0.
	if err := os.WriteFile(filepath.Join(dir, "101", "status"), []byte("voluntary_ctxt_switches:\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := taskSwitches(dir); err == nil {
		t.Error("taskSwitches with a counter missing: no error")
	}
}

// On the real /proc the sum moves when a thread of this process blocks
// (waiting for a child is a voluntary switch).
func TestTaskSwitchesCountsThisProcess(t *testing.T) {
	dir := fmt.Sprintf("/proc/%d/task", os.Getpid())
	before, err := taskSwitches(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		now, err := taskSwitches(dir)
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			break
		}
		if i == 100 {
			t.Fatalf("taskSwitches stayed at %d after %d child processes", now, i)
		}
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSwitchesPerOp(t *testing.T) {
	if got := metricSwitchesPerOp.of(result{ops: 4, switches: 100}); got != 25 {
		t.Errorf("switches per op = %v, want 25", got)
	}
}
