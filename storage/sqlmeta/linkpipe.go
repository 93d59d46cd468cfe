package sqlmeta

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// A blob link pipelined (PostgreSQL, Dialect.Pipeline). The transaction
// of an inline-audited link is six round trips there (BEGIN, the link
// with its queue rows, a savepoint with the head's lock_timeout, the head
// bumped, the records with the head's hash, COMMIT) and a push then reads
// the tombstones (a seventh): at 1 client each is a wake-up of the
// server's goroutines and of the database's process, most of a small
// push's CPU. The same statements go in two pipelines, one round trip
// each:
//
//	1  BEGIN, the link with its queue rows, SAVEPOINT and lock_timeout,
//	   the head bumped (its seq and hash: the records' hashes need them)
//	2  the records with the head's new hash, COMMIT, the tombstones read
//
// A link that appends no records inline (no events, or another write of
// the store under way: auditturn.go) is one: BEGIN, the link, COMMIT, the
// read. The read runs after the COMMIT in the database's order, as it
// ran after the commit before: tombstones committed before it are seen,
// and a collector that commits its tombstones later reads the links
// after the link committed (storage.LinkConfirmer). A head locked past
// lock_timeout rolls back to the savepoint and queues the events for the
// trail, as the transaction does (a round trip more).
//
// A pipeline stops at the first statement that fails; those after it do
// not run. A failure before the COMMIT wrote nothing: the transaction is
// rolled back and linkBlob runs it as ever, and reports its error. A
// connection lost once the COMMIT was sent is the write's error, as a
// lost commit is.

// Piped is one statement of a Dialect.Pipeline: its text and arguments,
// and Scan, the destinations of its one row (nil: it returns none). The
// run sets Tag, its command tag ("COMMIT"), and N, the rows it changed.
type Piped struct {
	SQL  string
	Args []any
	Scan []any
	Tag  string
	N    int64
}

// linkCheck is LinkBlobConfirmed's read for linkPiped: within as there,
// its answer into c.
type linkCheck struct {
	within time.Duration
	c      *storage.LinkCheck
}

// linkPiped runs linkBlob as pipelines when it can, with check's read
// after the commit when check is set: done says whether it did, err is
// then the link's. When not done nothing was written.
func (s *Store) linkPiped(ctx context.Context, repo string, d digest.Digest, size int64, evs []storage.Event, check *linkCheck) (done bool, err error) {
	if s.d.Pipeline == nil || s.ops != nil || len(evs) > eventRows || s.closed.Load() {
		return false, nil
	}
	id, ok := s.repos.get(repo)
	if !ok {
		return false, nil // the transaction inserts the repository
	}
	p := linkPipe{s: s, evs: evs, check: check, now: time.Now().UTC()}
	p.link = []any{id, string(d), size, p.now.UnixNano(), p.now.UnixNano()}
	var queued queuedRows
	done, err = p.send(ctx, &queued)
	if !done {
		if check != nil {
			*check.c = storage.LinkCheck{} // the transaction's to answer
		}
		return false, nil
	}
	if err != nil {
		return true, s.fail("link blob", err)
	}
	s.writes.Add(1)
	return true, s.committed(ctx, nil, queued)
}

// linkPipe is one linkPiped: its statements' inputs, and whether the
// connection is left in a state unknown (bad).
type linkPipe struct {
	s     *Store
	evs   []storage.Event
	check *linkCheck
	now   time.Time
	link  []any
	bad   bool
}

// send runs the pipelines on a connection of the writer pool, given
// back before linkPiped tells the listeners: a drain they run needs one.
func (p *linkPipe) send(ctx context.Context, queued *queuedRows) (done bool, err error) {
	ctx, end := p.s.withHeadTurn(ctx)
	defer end()
	conn, err := p.s.w.Conn(ctx)
	if err != nil {
		return false, nil // the transaction meets it too, and reports it
	}
	defer conn.Close()
	_ = conn.Raw(func(dc any) error {
		done, err = p.run(ctx, dc, queued)
		if p.bad {
			return driver.ErrBadConn // database/sql drops the connection
		}
		return nil
	})
	return done, err
}

func (p *linkPipe) run(ctx context.Context, dc any, queued *queuedRows) (done bool, err error) {
	s := p.s
	inline := len(p.evs) > 0 && s.auditInline.Load() && s.appendsInline(ctx)
	details, args := eventColumns(p.evs, p.now)
	link := Piped{SQL: s.linkQueue[0], Args: p.link}
	if len(p.evs) > 0 {
		exclude := "" // no consumer has an empty name (AddEventConsumer)
		if inline {
			exclude = storage.AuditConsumer
		}
		link = Piped{SQL: s.linkQueue[len(p.evs)], Args: append(append(p.link, args...), exclude)}
	}
	first := []Piped{{SQL: "BEGIN"}, link}
	if !inline {
		first, ci := p.commit(first)
		ran, err := p.pipe(ctx, dc, first)
		p.queued(first, ran, false, queued)
		return p.ended(ctx, dc, first, ci, ran, err)
	}
	var (
		seq  int64
		prev string
		h    bumpedHead
	)
	bump := Piped{SQL: s.text[qAuditBump.idx], Args: []any{len(p.evs)}, Scan: []any{&seq, &prev}}
	if s.d.AuditLockWait != "" {
		first = append(first, Piped{SQL: "SAVEPOINT audit_inline"}, Piped{SQL: s.d.AuditLockWait})
	}
	behind := s.d.AuditLockWait != "" && s.bumpBehind != ""
	if behind {
		bump = Piped{SQL: s.bumpBehind, Args: []any{storage.AuditConsumer, len(p.evs)}, Scan: h.dest()}
	}
	first = append(first, bump)
	ran, err := p.pipe(ctx, dc, first)
	if err == nil && behind {
		if seq, prev, err = h.result(); err != nil {
			ran-- // the bump failed
		}
	}
	p.queued(first, ran, true, queued)
	recs := eventRecords(p.evs, p.now)
	var second []Piped
	switch {
	case err == nil:
		_, cols, head := chainRecords(recs, details, seq, prev)
		second = []Piped{{SQL: s.auditLast[len(recs)-1], Args: append(cols, head)}}
	case ran == len(first)-1 && s.inlineRefused(err):
		// The head stayed locked, or events wait for the trail: it gets
		// these from the outbox, after those.
		// A round trip of its own: the statements after it are parsed
		// (prepared) once it ran, and an aborted transaction parses none.
		back := []Piped{{SQL: "ROLLBACK TO SAVEPOINT audit_inline"}}
		if ran, err := p.pipe(ctx, dc, back); err != nil {
			return p.ended(ctx, dc, back, -1, ran, err)
		}
		for i, e := range p.evs {
			second = append(second, Piped{SQL: s.text[qQueueEventFor.idx], Args: []any{storage.AuditConsumer,
				recs[i].At.UnixNano(), e.Actor, e.Action, e.Target, string(e.Digest), details[i]}})
		}
		queued.audit = true
	default:
		return p.ended(ctx, dc, first, -1, ran, err)
	}
	busy := queued.audit
	second, ci := p.commit(second)
	ran, err = p.pipe(ctx, dc, second)
	if busy {
		for _, st := range second[:ci] { // the events queued for the trail
			queued.rows += st.N
		}
	}
	return p.ended(ctx, dc, second, ci, ran, err)
}

// pipe is Dialect.Pipeline, reported to the observer (ObserveOps) as
// one statement: one round trip.
func (p *linkPipe) pipe(ctx context.Context, dc any, stmts []Piped) (int, error) {
	start := time.Now()
	ran, err := p.s.d.Pipeline(ctx, dc, stmts)
	p.s.observe("exec", start, err)
	return ran, err
}

// commit appends COMMIT and then the tombstones' read, if asked, to
// stmts; ci is the COMMIT's index.
func (p *linkPipe) commit(stmts []Piped) (_ []Piped, ci int) {
	ci = len(stmts)
	stmts = append(stmts, Piped{SQL: "COMMIT"})
	if c := p.check; c != nil {
		d := p.link[1]
		if c.within <= 0 {
			c.c.Begun = true
			stmts = append(stmts, Piped{SQL: p.s.text[qGCDeleting.idx], Args: []any{d, int64(storage.TombstoneTTL)},
				Scan: []any{&c.c.Deleting}})
		} else {
			stmts = append(stmts, Piped{SQL: p.s.text[qGCDeletingWithin.idx],
				Args: []any{int64(storage.TombstoneTTL), int64(c.within), d}, Scan: []any{&c.c.Deleting, &c.c.Begun}})
		}
	}
	return stmts, ci
}

// queued takes the queue rows of the link's statement, the second of
// the first pipeline, once it ran: some may be the trail's unless inline.
func (p *linkPipe) queued(first []Piped, ran int, inline bool, queued *queuedRows) {
	if ran > 1 && len(p.evs) > 0 {
		queued.rows = first[1].N
		queued.audit = !inline && queued.rows > 0
	}
}

// ended judges the last pipeline of a link, whose COMMIT is at ci (-1: it
// has none), of which ran statements ran before err.
func (p *linkPipe) ended(ctx context.Context, dc any, stmts []Piped, ci, ran int, err error) (done bool, _ error) {
	var server interface{ SQLState() string }
	switch {
	case ci >= 0 && ran > ci:
		if stmts[ci].Tag != "COMMIT" {
			return true, errors.New("the link's COMMIT rolled back")
		}
		if c := p.check; c != nil {
			c.c.Serial = err == nil
			if err != nil {
				*c.c = storage.LinkCheck{} // the caller reads after the commit itself
			}
		}
		p.bad = err != nil && !errors.As(err, &server)
		return true, nil
	case errors.As(err, &server):
		// The statements from the failed one on did not run: the
		// transaction is open, and wrote nothing that will stay.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := p.s.d.Pipeline(rctx, dc, []Piped{{SQL: "ROLLBACK"}}); rerr != nil {
			p.bad = true
		}
		return false, nil
	case ci < 0:
		p.bad = true // no COMMIT was sent: the server rolls back
		return false, nil
	default:
		p.bad = true // the COMMIT may have run
		return true, err
	}
}
