package sqlmeta

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// A manifest PUT in one statement (PostgreSQL, Dialect.WritableCTE). The
// transaction of PutManifest is five round trips there (BEGIN, the
// references locked, the manifest, the tag with its events, COMMIT), and
// at 16 clients the database's share of each, a parse, bind and execute
// and a wake-up of both processes, was most of a PUT's CPU. One statement
// is atomic on its own, so the common put (tags without claims or
// conditions, no pack index changes, a repository whose id is known) goes
// as one, in autocommit:
//
//	ok     the references found by a read just before (the put's
//	       CheckPresent judged that read), locked FOR SHARE, all still
//	       there: one row, else none
//	first, man, tg, q
//	       the first push, the manifest, its tags, the events' queue rows:
//	       each written only with ok's row
//
// It answers ok's rows: none means a reference went between the read and
// the statement, which then wrote nothing, and the put runs again as a
// transaction, which judges the references under its locks and refuses
// the put as ever. A refusal by the read is judged again the same way.
// The tags' foreign key is checked at the end of the statement, after the
// manifest's row is in.
//
// Its events are queued for the audit trail too (never appended inline),
// as the writes that are not alone do (auditturn.go); a write that is its
// store's only one under way keeps the transaction, and its records
// inline.

// oneShape is what the text of a one-statement put depends on: how many
// references it locks in each table, tags it writes and events it queues.
type oneShape struct{ blobs, manifests, tags, events int }

// oneTexts caches the statement of each oneShape, built on first use.
type oneTexts struct{ m sync.Map }

func (c *oneTexts) get(s *Store, k oneShape) string {
	if t, ok := c.m.Load(k); ok {
		return t.(string)
	}
	t := s.sql(putOneText(k))
	c.m.Store(k, t)
	return t
}

// putOneText is the statement of a put of shape k. Its arguments, in
// order: repo_id and the locked blobs' digests, repo_id and the locked
// manifests' digests (each when there are any), the first push's repo,
// digest and time, the manifest's columns but created, then repo_id, name,
// digest and time of each tag, the events (eventValuesText) and the
// consumer to leave out.
func putOneText(k oneShape) string {
	var b strings.Builder
	b.WriteString("WITH ")
	var conds []string
	for _, t := range []struct {
		name, table string
		n           int
	}{{"pb", "blobs", k.blobs}, {"pm", "manifests", k.manifests}} {
		if t.n == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s AS MATERIALIZED (SELECT 1 FROM %s WHERE repo_id = ? AND digest IN %s ORDER BY digest{{forshare}}),\n",
			t.name, t.table, inDigests(t.n))
		conds = append(conds, fmt.Sprintf("(SELECT count(*) FROM %s) = %d", t.name, t.n))
	}
	b.WriteString("ok AS (SELECT 1 AS one")
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString("),\nfirst AS (" + firstPushInsert + "SELECT ?, ?, ? FROM ok " + firstPushConflict + "),\n")
	b.WriteString("man AS (INSERT INTO manifests " + manifestColumns +
		" SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT at FROM first), ? FROM ok " + manifestConflict + " RETURNING 1),\n")
	if k.tags > 0 {
		b.WriteString("tg AS (" + tagsInsert + "SELECT t.* FROM ok, (VALUES ")
		for i := range k.tags {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(CAST(? AS {{int}}), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS {{int}}))")
		}
		b.WriteString(") t " + tagUpsert + " RETURNING 1),\n")
	}
	b.WriteString(eventValuesText(k.events) + ",\nq AS (" + queueEventsFrom(" AND EXISTS (SELECT 1 FROM ok)") + " RETURNING 1)\n")
	// Read in this order, the writes run in the transaction's order.
	b.WriteString("SELECT (SELECT count(*) FROM ok), (SELECT count(*) FROM man)")
	if k.tags > 0 {
		b.WriteString(", (SELECT count(*) FROM tg)")
	}
	b.WriteString(", (SELECT count(*) FROM q)")
	return b.String()
}

// putManifestOne runs the put as one statement when it can: done says
// whether it did, err is then the put's. When not done nothing was
// written, and the caller runs the put as a transaction. ann, refs,
// created and now are PutManifest's; tags are sorted.
func (s *Store) putManifestOne(ctx context.Context, m *storage.Manifest, tags []string, o storage.PutManifestOptions,
	payload []byte, ann any, refs string, created, now int64) (done bool, err error) {
	if !s.d.WritableCTE || s.ops != nil || len(o.Claims) > 0 || len(o.TagWas) > 0 ||
		len(o.Index.Puts) > 0 || len(o.Index.Deletes) > 0 || len(o.Events) == 0 || len(o.Events) > eventRows {
		return false, nil
	}
	id, ok := s.repos.get(m.Repo)
	if !ok || s.closed.Load() {
		return false, nil
	}
	if s.auditInline.Load() && s.d.AuditLockWait != "" {
		if s.inflight.Load() == 0 && s.auditHeld.Load() == 0 {
			return false, nil // alone: the transaction appends inline
		}
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
	}
	found, err := s.present(ctx, s.r, false, id, m, o)
	if err != nil {
		return false, nil // judged again under the transaction's locks
	}
	var blobs, manifests []digest.Digest
	for d, r := range found {
		if r.Manifest {
			manifests = append(manifests, d)
		} else {
			blobs = append(blobs, d)
		}
	}
	if len(blobs) > presentRows || len(manifests) > presentRows {
		return false, nil
	}
	slices.Sort(blobs) // one lock order for every put
	slices.Sort(manifests)
	k := oneShape{blobs: len(blobs), manifests: len(manifests), tags: len(tags), events: len(o.Events)}
	var args []any
	for _, ds := range [][]digest.Digest{blobs, manifests} {
		if len(ds) > 0 {
			args = append(args, digestArgs(id, ds)...)
		}
	}
	args = append(args, m.Repo, string(m.Digest), created, id, string(m.Digest), m.MediaType, m.ArtifactType,
		m.Size, payload, string(m.Subject), ann, refs, m.IndexDepth, now)
	for _, t := range tags {
		args = append(args, id, t, string(m.Digest), now)
	}
	args = appendEventArgs(args, o.Events, time.Now().UTC())
	args = append(args, "") // every consumer, the audit trail's too

	counts := make([]int64, 3+min(k.tags, 1))
	dst := make([]any, len(counts))
	for i := range counts {
		dst[i] = &counts[i]
	}
	start := time.Now()
	err = s.w.QueryRowContext(ctx, s.one.get(s, k), args...).Scan(dst...)
	s.observe("query", start, err)
	switch {
	case err != nil && s.class(err) == ClassRetry:
		return false, nil // a lost race: the transaction retries it
	case err != nil:
		return true, s.fail("put manifest", err)
	case counts[0] == 0:
		return false, nil // a reference went meanwhile
	}
	s.writes.Add(1)
	rows := counts[len(counts)-1]
	return true, s.committed(ctx, nil, queuedRows{rows: rows, audit: rows > 0})
}

// appendEventArgs appends the columns of evs as eventValuesText takes
// them, at for those without a time.
func appendEventArgs(args []any, evs []storage.Event, at time.Time) []any {
	for _, e := range evs {
		t := e.At
		if t.IsZero() {
			t = at
		}
		args = append(args, t.UnixNano(), e.Actor, e.Action, e.Target, string(e.Digest), storage.AuditDetailsJSON(e.Details))
	}
	return args
}
