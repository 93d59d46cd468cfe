package auth_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/auth"
)

// TestHtpasswdChangedWhileVerifying: Basic auth on many requests at once
// while the file changes under them (a password rotated several times).
// A password never in the file is never accepted, and once the last
// change is written only its password is.
func TestHtpasswdChangedWhileVerifying(t *testing.T) {
	const versions = 4
	lines := make([]string, versions)
	for i := range lines {
		// Other users too, so the file's size moves with each version.
		lines[i] = htpasswdLine(t, "alice", fmt.Sprint("pw", i)) + htpasswdLine(t, fmt.Sprint("user", i), "x")
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, p, lines[0])
	h, err := auth.LoadHtpasswd(p)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var checks atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() || i < versions; i++ {
				if h.Verify("alice", "never") {
					t.Error("a password never in the file was accepted")
				}
				h.Verify("alice", fmt.Sprint("pw", (g+i)%versions))
				h.Exists(fmt.Sprint("user", i%versions))
				checks.Add(1)
			}
		})
	}
	for _, l := range lines[1:] {
		// Each version stands until the verifiers have read it a few times.
		for n := checks.Load(); checks.Load() < n+8; {
			runtime.Gosched()
		}
		writeFile(t, p, l)
	}
	stop.Store(true)
	wg.Wait()
	last := versions - 1
	for i := range versions {
		if got := h.Verify("alice", fmt.Sprint("pw", i)); got != (i == last) {
			t.Errorf("after the last change, alice's password pw%d: %v", i, got)
		}
		if got := h.Exists(fmt.Sprint("user", i)); got != (i == last) {
			t.Errorf("after the last change, user%d exists: %v", i, got)
		}
	}
}

// TestLimiterConcurrentFailures: failed logins of one source counted at
// once are each counted once, and the source is refused after them.
func TestLimiterConcurrentFailures(t *testing.T) {
	const n = 50
	l := auth.NewLimiter(n, time.Minute, time.Now)
	seen := make([]atomic.Int32, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l.Blocked("10.0.0.1")
			seen[l.Fail("10.0.0.1")].Add(1)
			l.Fail(fmt.Sprint("10.0.1.", i)) // other sources at once
		})
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		if seen[i].Load() != 1 {
			t.Fatalf("Fail returned %d %d times, want once each of 1..%d", i, seen[i].Load(), n)
		}
	}
	if b, _ := l.Blocked("10.0.0.1"); !b {
		t.Fatal("not blocked after its failures")
	}
	l.Succeed("10.0.0.1")
	if b, _ := l.Blocked("10.0.0.1"); b {
		t.Fatal("blocked after a success")
	}
}
