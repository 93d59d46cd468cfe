package storage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memLeases is one lease in memory, counting takes; other, when set, is
// the holder that has it.
type memLeases struct {
	mu       sync.Mutex
	takes    int
	released int
	other    bool
	fail     bool // takes fail: the database is gone
}

func (m *memLeases) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.takes++
	if m.fail {
		return false, errors.New("connection refused")
	}
	return !m.other, nil
}

func (m *memLeases) ReleaseLease(context.Context, string, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released++
	return nil
}

func (m *memLeases) count() (takes, released int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takes, m.released
}

func nop(context.Context) error { return nil }

// Passes within TTL/3 of the last take reuse the lease; later ones renew
// it, and after a release the next pass takes it again.
func TestKeptLeaseRenewsOnlyWhenStale(t *testing.T) {
	m := &memLeases{}
	k := NewKeptLease(m, "w", "h", time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k.now = func() time.Time { return now }
	pass := func(wantTakes int) {
		t.Helper()
		if ok, err := k.Run(t.Context(), nop); !ok || err != nil {
			t.Fatalf("Run = %v, %v", ok, err)
		}
		if n, _ := m.count(); n != wantTakes {
			t.Fatalf("after the pass at %s: %d takes, want %d", now.Format(time.TimeOnly), n, wantTakes)
		}
	}
	pass(1)
	now = now.Add(19 * time.Second)
	pass(1) // 19 s < TTL/3
	now = now.Add(time.Second)
	pass(2) // 20 s: renewed
	if err := k.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, r := m.count(); r != 1 {
		t.Fatalf("%d releases, want 1", r)
	}
	pass(3)
}

// A pass that finds another holder does not run, and the lease is
// forgotten: the next pass asks again.
func TestKeptLeaseHeldByAnother(t *testing.T) {
	m := &memLeases{other: true}
	k := NewKeptLease(m, "w", "h", time.Minute)
	for want := 1; want <= 2; want++ {
		ran := false
		ok, err := k.Run(t.Context(), func(context.Context) error { ran = true; return nil })
		if ok || err != nil || ran {
			t.Fatalf("Run = %v, %v, ran %v; want false, nil, not run", ok, err, ran)
		}
		if n, _ := m.count(); n != want {
			t.Fatalf("%d takes, want %d", n, want)
		}
	}
}

// A long pass renews the lease every TTL/3; when a renewal finds another
// holder, the pass's context ends and the lease is forgotten.
func TestKeptLeaseRenewedDuringAPassAndLost(t *testing.T) {
	m := &memLeases{}
	k := NewKeptLease(m, "w", "h", 30*time.Millisecond)
	ok, err := k.Run(t.Context(), func(ctx context.Context) error {
		deadline := time.Now().Add(10 * time.Second)
		for n, _ := m.count(); n < 3; n, _ = m.count() {
			if time.Now().After(deadline) {
				return errors.New("no renewals during the pass")
			}
			time.Sleep(time.Millisecond) // polling for the renewals
		}
		m.mu.Lock()
		m.other = true
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == nil {
				return errors.New("no cause")
			}
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the pass went on after its lease was lost")
		}
	})
	if !ok || err != nil {
		t.Fatalf("Run = %v, %v", ok, err)
	}
	if k.fresh() {
		t.Fatal("a lost lease is still fresh: the next pass would run without it")
	}
}

// A renewal that fails ends the pass but leaves the lease alone until the
// pass has returned: freed at once, another worker could start while this
// one is still stopping. A first take that fails gives it up at once: it
// may have committed, and no pass runs under it.
func TestKeptLeaseFailedRenewalReleasesAfterThePass(t *testing.T) {
	m := &memLeases{}
	k := NewKeptLease(m, "w", "h", 30*time.Millisecond)
	var releasedInPass int
	ok, err := k.Run(t.Context(), func(ctx context.Context) error {
		m.mu.Lock()
		m.fail = true
		m.mu.Unlock()
		<-ctx.Done() // the renewal TTL/3 later fails
		_, releasedInPass = m.count()
		return nil
	})
	if !ok || err != nil {
		t.Fatalf("Run = %v, %v", ok, err)
	}
	if releasedInPass != 0 {
		t.Fatalf("the lease was released %d times while the pass was still running", releasedInPass)
	}
	if ok, err := k.Run(t.Context(), nop); ok || err == nil {
		t.Fatalf("Run with a failing take = %v, %v", ok, err)
	}
	if _, released := m.count(); released != 1 {
		t.Fatalf("a failed first take released the lease %d times, want 1", released)
	}
}
