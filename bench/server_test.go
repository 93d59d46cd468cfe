package main

import (
	"os"
	"strings"
	"testing"
)

// statusKB reads the asked keys in order and refuses a key the kernel
// does not have, so a report row is never a silent zero.
func TestStatusKB(t *testing.T) {
	v, err := statusKB(os.Getpid(), "VmRSS", "RssAnon", "RssFile", "RssShmem")
	if err != nil {
		t.Fatal(err)
	}
	if v[1] <= 0 || v[2] <= 0 {
		t.Errorf("RssAnon %d, RssFile %d kB: want both > 0", v[1], v[2])
	}
	// The kernel's VmRSS is the sum of the three, read at one instant.
	if v[0] != v[1]+v[2]+v[3] {
		t.Errorf("VmRSS %d kB != RssAnon+RssFile+RssShmem %d kB", v[0], v[1]+v[2]+v[3])
	}
	if _, err := statusKB(os.Getpid(), "VmRSS", "NoSuchKey"); err == nil || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("missing key: err %v, want one naming it", err)
	}
}
