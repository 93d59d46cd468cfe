package sqlmeta

import (
	"cmp"
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
//	ok     the references locked FOR SHARE, all there: one row, else
//	       none. They are the blobs of the sizes the put's
//	       PresentBlobSizes gives, else what a read just before found
//	       (and the put's CheckPresent accepted)
//	man, tg, q
//	       the manifest (its created time the first push's:
//	       firstPushCreated), its tags, the events' queue rows: each
//	       written only with ok's row
//
// It answers ok's rows: none means a reference is not as expected (or
// went between the read and the statement), and the statement wrote
// nothing; the put runs again as a transaction, which judges the
// references under its locks and refuses the put as ever. A refusal by
// the read is judged again the same way.
// The tags have no foreign key to check here (storage/postgres drops it:
// migration 21); the manifest's row is written with them.
//
// Its events are queued for the audit trail too (never appended inline),
// as the writes that are not alone do (auditturn.go); a write that is its
// store's only one under way keeps the transaction, and its records
// inline.

// oneShape is what the text of a one-statement put depends on: how many
// references it locks in each table (the blobs by digest and size when
// sized), tags it writes and events it queues.
type oneShape struct {
	blobs, manifests, tags, events int
	sized                          bool
}

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
// order: repo_id and the locked blobs' digests (each with its size when
// k.sized), repo_id and the locked manifests' digests (each when there
// are any), the manifest's (manifestArgs), then repo_id, name,
// digest and time of each tag, the events (eventValuesText) and the
// consumer to leave out.
func putOneText(k oneShape) string {
	var b strings.Builder
	b.WriteString("WITH ")
	var conds []string
	for _, t := range []struct {
		name, table string
		n           int
		sized       bool
	}{{"pb", "blobs", k.blobs, k.sized}, {"pm", "manifests", k.manifests, false}} {
		if t.n == 0 {
			continue
		}
		keys := "digest IN " + inDigests(t.n)
		if t.sized {
			keys = "(digest, size) IN ((?, ?)" + strings.Repeat(", (?, ?)", t.n-1) + ")"
		}
		fmt.Fprintf(&b, "%s AS MATERIALIZED (SELECT 1 FROM %s WHERE repo_id = ? AND %s ORDER BY digest{{forshare}}),\n",
			t.name, t.table, keys)
		conds = append(conds, fmt.Sprintf("(SELECT count(*) FROM %s) = %d", t.name, t.n))
	}
	b.WriteString("ok AS (SELECT 1 AS one")
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString("),\nman AS (INSERT INTO manifests " + manifestColumns +
		" SELECT " + manifestValues + " FROM ok " + manifestConflict + " RETURNING 1),\n")
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
	payload []byte, ann any, refs string, created, now int64) (done bool, _ error) {
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
	k, args, ok := s.oneRefs(ctx, id, m, o)
	if !ok {
		return false, nil
	}
	k.tags, k.events = len(tags), len(o.Events)
	args = append(args, manifestArgs(id, m, payload, ann, refs, created, now)...)
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
	err := s.w.QueryRowContext(ctx, s.one.get(s, k), args...).Scan(dst...)
	s.observe("query", start, err)
	switch {
	case err != nil && s.class(err) == ClassRetry:
		return false, nil // a lost race: the transaction retries it
	case err != nil:
		return true, s.fail("put manifest", err)
	case counts[0] == 0:
		return false, nil // a reference is not as expected, or went meanwhile
	}
	s.writes.Add(1)
	rows := counts[len(counts)-1]
	return true, s.committed(ctx, nil, queuedRows{rows: rows, audit: rows > 0})
}

// oneRefs is the references part of a one-statement put into repository
// id: its shape and arguments, from o.PresentBlobSizes, else from a read
// of o.Present that o.CheckPresent accepted. Not ok: the put is the
// transaction's to run and judge.
func (s *Store) oneRefs(ctx context.Context, id int64, m *storage.Manifest, o storage.PutManifestOptions) (k oneShape, args []any, ok bool) {
	if len(o.PresentBlobSizes) == len(o.Present) && len(o.Present) > 0 {
		pairs := sizedBlobs(o.Present, o.PresentBlobSizes)
		if len(pairs) > presentRows {
			return k, nil, false
		}
		k.blobs, k.sized = len(pairs), true
		args = append(args, id)
		for _, p := range pairs {
			args = append(args, string(p.d), p.size)
		}
		return k, args, true
	}
	found, err := s.present(ctx, s.r, false, id, m, o)
	if err != nil {
		return k, nil, false // judged again under the transaction's locks
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
		return k, nil, false
	}
	k.blobs, k.manifests = len(blobs), len(manifests)
	for _, ds := range [][]digest.Digest{blobs, manifests} {
		if len(ds) > 0 {
			slices.Sort(ds) // one lock order for every put
			args = append(args, digestArgs(id, ds)...)
		}
	}
	return k, args, true
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

// sizedBlob is a blob a put expects, with its size.
type sizedBlob struct {
	d    digest.Digest
	size int64
}

// sizedBlobs is ds with their sizes, in digest order (the lock order),
// each pair once.
func sizedBlobs(ds []digest.Digest, sizes []int64) []sizedBlob {
	out := make([]sizedBlob, len(ds))
	for i, d := range ds {
		out[i] = sizedBlob{d, sizes[i]}
	}
	slices.SortFunc(out, func(a, b sizedBlob) int {
		if c := strings.Compare(string(a.d), string(b.d)); c != 0 {
			return c
		}
		return cmp.Compare(a.size, b.size)
	})
	return slices.Compact(out)
}
