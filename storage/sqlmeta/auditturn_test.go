package sqlmeta

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// fakeDrain is a drain function that announces each call on calls and
// returns what the test sends it, or its context's error once that ends.
type fakeDrain struct{ calls chan *drainCall }

type drainCall struct {
	ctx    context.Context
	n      int
	answer chan drainAnswer
}

type drainAnswer struct {
	got int
	err error
}

func newFakeDrain() *fakeDrain { return &fakeDrain{calls: make(chan *drainCall)} }

func (f *fakeDrain) fn(ctx context.Context, n int) (int, error) {
	c := &drainCall{ctx: ctx, n: n, answer: make(chan drainAnswer)}
	f.calls <- c
	select {
	case a := <-c.answer:
		return a.got, a.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// drainResult is what a call of drainTurns.do returned.
type drainResult struct {
	got int
	err error
}

// goDo calls g.do on a goroutine; its result comes on the channel.
func goDo(ctx context.Context, g *drainTurns, n int, f *fakeDrain) <-chan drainResult {
	res := make(chan drainResult, 1)
	go func() {
		got, err := g.do(ctx, n, f.fn)
		res <- drainResult{got, err}
	}()
	return res
}

// waitJoined waits until k callers wait for g's next drain.
func waitJoined(g *drainTurns, k int) {
	for {
		g.mu.Lock()
		ok := g.next != nil && g.next.waiting == k
		g.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// idle says whether g's turn is free.
func idle(g *drainTurns) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur == nil && g.next == nil
}

// stuckTurn starts a drain of g that stays in f until answered (stuck),
// then a caller that asks for the next drain, with a context leave ends.
func stuckTurn(g *drainTurns, f *fakeDrain) (first <-chan drainResult, stuck *drainCall, leaver <-chan drainResult, leave context.CancelFunc) {
	first = goDo(context.Background(), g, 8, f)
	stuck = <-f.calls
	ctx, leave := context.WithCancel(context.Background())
	leaver = goDo(ctx, g, 8, f)
	waitJoined(g, 1)
	return first, stuck, leaver, leave
}

// runsAfterwards checks that g's turn is free and the next drain runs,
// for its caller alone (its count).
func runsAfterwards(t *testing.T, g *drainTurns, f *fakeDrain) {
	t.Helper()
	again := goDo(context.Background(), g, 8, f)
	(<-f.calls).answer <- drainAnswer{got: 1}
	if r := <-again; r.got != 1 || r.err != nil {
		t.Fatalf("a drain afterwards got %d, %v; want 1, nil", r.got, r.err)
	}
	if !idle(g) {
		t.Fatal("the turn is still taken")
	}
}

// TestDrainTurnsRunnerLeaves: the caller that asked for the next drain
// leaves when its context ends, though the drain ahead of it is stuck
// (at a head another session holds); the caller that joined it still
// gets that drain, run once the one ahead ends, with a live context, and
// its count. Before, the first caller waited for the drain ahead
// whatever its context, then ran the next with it.
func TestDrainTurnsRunnerLeaves(t *testing.T) {
	var g drainTurns
	f := newFakeDrain()
	first, stuck, leaver, cancel := stuckTurn(&g, f)
	joiner := goDo(context.Background(), &g, 8, f)
	waitJoined(&g, 2)

	cancel()
	if r := <-leaver; !errors.Is(r.err, context.Canceled) || r.got != 0 {
		t.Fatalf("the leaver got %d, %v; want context.Canceled", r.got, r.err)
	}

	stuck.answer <- drainAnswer{got: 8}
	if r := <-first; r.got != 8 || r.err != nil {
		t.Fatalf("the first got %d, %v; want 8, nil", r.got, r.err)
	}
	next := <-f.calls // begun after the joiner called: the one ahead had not ended
	if err := next.ctx.Err(); err != nil || next.n != 8 {
		t.Fatalf("the next drain ran with n %d and a context ended (%v); want 8 and a live one", next.n, err)
	}
	next.answer <- drainAnswer{got: 3}
	if r := <-joiner; r.got != 3 || r.err != nil {
		t.Fatalf("the joiner got %d, %v; want the next drain's 3, nil", r.got, r.err)
	}
	runsAfterwards(t, &g, f)
}

// TestDrainTurnsAllLeave: when every caller of the next drain left, it
// does not run (or its context ends if it began), and the turn is free
// for the drains after it.
func TestDrainTurnsAllLeave(t *testing.T) {
	for _, begun := range []bool{false, true} {
		var g drainTurns
		f := newFakeDrain()
		first, stuck, leaver, cancel := stuckTurn(&g, f)
		if begun {
			stuck.answer <- drainAnswer{got: 8}
			stuck = <-f.calls // the next drain, its caller still there
		}
		cancel()
		if r := <-leaver; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("begun %v: the leaver got %d, %v; want context.Canceled", begun, r.got, r.err)
		}
		if begun {
			<-stuck.ctx.Done() // the drain nobody waits for is cancelled
		} else {
			stuck.answer <- drainAnswer{got: 8}
		}
		<-first

		// The next drain, if it ran or was skipped, handed the turn on.
		runsAfterwards(t, &g, f)
	}
}

// TestDrainTurnsNextPanics: a panic in a next drain, on a goroutine no
// net/http recovers, is its callers' error, and the turn is handed on.
func TestDrainTurnsNextPanics(t *testing.T) {
	var g drainTurns
	f := newFakeDrain()
	first := goDo(context.Background(), &g, 8, f)
	stuck := <-f.calls
	res := make(chan drainResult, 1)
	go func() {
		got, err := g.do(context.Background(), 8, func(context.Context, int) (int, error) { panic("drain bug") })
		res <- drainResult{got, err}
	}()
	waitJoined(&g, 1)
	stuck.answer <- drainAnswer{got: 8}
	<-first
	if r := <-res; r.err == nil || !strings.Contains(r.err.Error(), "drain bug") {
		t.Fatalf("the next drain's caller got %d, %v; want the panic as its error", r.got, r.err)
	}
	runsAfterwards(t, &g, f)
}
