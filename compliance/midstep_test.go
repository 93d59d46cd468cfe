package compliance

import (
	"context"
	"testing"
	"time"
)

// changeAfterRead is the worker's store where a change commits (once
// armed) right after the worker read the rules: in the middle of a step,
// before it reads its queue.
type changeAfterRead struct {
	pagedStore
	change func()
}

func (c *changeAfterRead) ComplianceRules(ctx context.Context) (string, time.Time, error) {
	doc, at, err := c.pagedStore.ComplianceRules(ctx)
	if change := c.change; change != nil {
		c.change = nil
		change()
	}
	return doc, at, err
}

// TestRuleChangeDuringAStep: rules put while a step runs, after it read
// the rules it evaluates by, are in force once the queue is drained. The
// step used to read its queue after the rules, take the change's event
// among it, evaluate by the rules it had read and acknowledge the event:
// the new rules then waited for the next full evaluation (reevaluate_every).
func TestRuleChangeDuringAStep(t *testing.T) {
	f := newFixture(t, Config{})
	f.publish("acme/a", "1.0.0")
	f.step()
	var sum Summary
	f.get(Prefix+"/summary", &sum)
	if sum.Compliant != 1 || sum.Failing != 0 {
		t.Fatalf("without rules: %+v", sum)
	}
	store := &changeAfterRead{pagedStore: f.svc.st.(pagedStore)}
	f.svc.st = store
	store.change = func() {
		if _, err := f.svc.PutRules(t.Context(), []Rule{{Name: "signed", Repositories: []string{"**"}, RequireSignature: true}}); err != nil {
			t.Fatal(err)
		}
	}
	for steps := 0; ; steps++ {
		if steps == 5 {
			t.Fatal("events still queued after 5 steps")
		}
		f.step()
		n, err := f.st.CountPendingEvents(t.Context(), Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if store.change != nil {
		t.Fatal("no step read the rules")
	}
	f.get(Prefix+"/summary", &sum)
	if sum.Compliant != 0 || sum.Failing != 1 {
		t.Fatalf("once the queue is drained, the rules put during a step are not in force: %+v", sum)
	}
}
