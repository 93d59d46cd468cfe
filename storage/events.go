package storage

import (
	"context"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
)

// Event is one change of state, recorded in the metadata store's outbox by
// the same transaction that makes the change: a blob linked, a manifest
// stored or deleted, a tag moved, a key or a mirror changed. Consumers (the
// audit trail, signature indexing) read the events they have not
// acknowledged yet, so a crash or a failure between a change and its
// consequences loses nothing: the next drain, at the latest the one at the
// next start, finds the event still there.
//
// An event reads like the audit record it becomes (AuditRecord): the
// writer says what happened in the trail's words.
type Event struct {
	// ID is assigned by the store when the event is recorded, increasing
	// per consumer; a consumer acknowledges an event by it. An ID is never
	// given again, even once its event was acknowledged, so a late or
	// repeated acknowledgement cannot drop a newer event.
	ID     int64
	At     time.Time // when the change was made; the store's clock when zero
	Actor  string
	Action string // "manifest.push", "tag.move", "key.add", "mirror.update"...
	Target string // "repo", "repo:tag", "key:<id>", "mirror:<name>"...
	Digest digest.Digest
	// Details are small facts about the change, as in the audit record.
	Details map[string]string
}

// AuditRecord is the audit trail's record of e.
func (e *Event) AuditRecord() *AuditRecord {
	return &AuditRecord{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Digest: e.Digest, Details: e.Details}
}

// SkipExcept is an entry of AddEventConsumer's skip list that skips
// action except for the events whose Target matches like, an SQL LIKE
// pattern (% any run, _ any one character). A store may keep a few more
// (SQLite's LIKE ignores ASCII case): the consumer must still look at
// what it gets.
func SkipExcept(action, like string) string { return action + skipExceptSep + like }

// skipExceptSep separates SkipExcept's action and pattern: actions hold
// no space.
const skipExceptSep = " except "

// ParseSkip is the action and pattern of a skip entry (SkipExcept); like
// is "" for a plain action, skipped for every target.
func ParseSkip(entry string) (action, like string) {
	action, like, _ = strings.Cut(entry, skipExceptSep)
	return action, like
}

// AuditConsumer is the consumer every store knows from its creation: the
// audit trail, which AuditEvents drains.
const AuditConsumer = "audit"

// Outbox is the metadata store's durable queue of Events. Every writing
// method that takes events records them in its own transaction, once for
// each consumer registered at that moment; a consumer processes them in
// order and acknowledges them. Processing must be idempotent: an event
// processed and not yet acknowledged when the process dies is delivered
// again.
type Outbox interface {
	// AddEventConsumer registers consumer: events recorded from now on wait
	// for it until it acknowledges them, except those whose Action is in
	// skip (what it would acknowledge without doing anything: queueing
	// them would cost every write a row, a wake-up and an acknowledgement
	// for nothing); an entry made by SkipExcept skips its action but for
	// some targets. Registering again is not an error and replaces the
	// skip list. A consumer that stops draining keeps its events forever.
	AddEventConsumer(ctx context.Context, consumer string, skip ...string) error
	// PendingEvents returns up to n events consumer has not acknowledged,
	// oldest first.
	PendingEvents(ctx context.Context, consumer string, n int) ([]Event, error)
	// AckEvents forgets events of consumer (unknown IDs are ignored).
	AckEvents(ctx context.Context, consumer string, ids ...int64) error
	// CountPendingEvents is how many events consumer has not acknowledged.
	CountPendingEvents(ctx context.Context, consumer string) (int64, error)
	// AuditEvents appends the audit records of up to n events pending for
	// AuditConsumer (few once the store audits inline, InlineAuditor) (n
	// <= 0: a default batch) and acknowledges them, in one transaction,
	// extending the chain under its head's lock: each event becomes
	// exactly one record, however many drains run at once (replicas too).
	// It returns how many it recorded; a call that ran while another of
	// the same store did may share that one's successor, which records
	// what both were called for, and then returns 0 unless the shared
	// drain took n events (the counts add up to what was recorded).
	// Called by an OnEvents listener after a commit that queued for
	// AuditConsumer, it may record them behind its caller instead (and
	// return 0, with the failure of an earlier such drain that no call
	// reported yet): a store that does so records what is queued before
	// each read of the trail (AuditLog's ListAudit, ScanAudit, AuditHead).
	AuditEvents(ctx context.Context, n int) (int, error)
	// OnEvents registers fn, called after every commit that queued events
	// for a consumer (not after one whose events every consumer skips or
	// the inline audit trail took), on the committing goroutine, before
	// the writing method returns: the place to drain (or wake a drainer)
	// right away. fn gets a context that outlives the caller's
	// cancellation; when the write queued nothing for AuditConsumer (it
	// appended its records inline), an AuditEvents with that context
	// returns 0 without reading the queue.
	OnEvents(fn func(ctx context.Context))
}

// InlineAuditor is an Outbox that can append the audit records of the
// events it records in the transaction that records them, instead of
// queueing them for AuditConsumer: a change and its record then commit
// together, in one commit, and little is left for AuditEvents: what was
// queued before (by an earlier start, or by a replica that does not
// record inline), and what a store whose writers would wait for each
// other at the chain head queues instead (PostgreSQL, while another
// write of the store is under way). The chain and its head lock are
// those of AppendAudit: the head is extended last in the writing
// transaction, after the writer's own row locks.
type InlineAuditor interface {
	// AuditInline makes every later write record its events' audit
	// records in its own transaction, or queue them for AuditConsumer
	// there when the store says so (above). It cannot be undone.
	AuditInline()
}

// Settler spaces the passes an outbox consumer starts on wake-ups. A pass
// reads the queue and acknowledges what it took (a commit at least), and
// every write wakes its consumers: a pass per wake-up doubled a client's
// commits. Waiting out Window since the last pass lets one pass take
// every event committed meanwhile; a wake-up after a quiet spell runs at
// once. Its state belongs to the consumer's one worker goroutine.
type Settler struct {
	Window time.Duration
	// After waits (time.After when nil; tests hold it).
	After func(time.Duration) <-chan time.Time
	last  time.Time
}

// Started marks the start of a pass.
func (s *Settler) Started() { s.last = time.Now() }

// Wait waits out the rest of Window since the last pass started. It is
// false when ctx ended first.
func (s *Settler) Wait(ctx context.Context) bool {
	wait := s.Window - time.Since(s.last)
	if wait <= 0 {
		return true
	}
	after := s.After
	if after == nil {
		after = time.After
	}
	select {
	case <-ctx.Done():
		return false
	case <-after(wait):
		return true
	}
}
