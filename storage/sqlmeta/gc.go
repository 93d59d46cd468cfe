package sqlmeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The collector's sweep (storage.Collector). Each delete locks the row it
// deletes first (FOR UPDATE on PostgreSQL), then reads what would keep it
// with statements that each see the latest commits (READ COMMITTED): a
// put that locked the row first (FOR SHARE of its Present digests, or the
// upsert of a manifest or a link) has committed by then, and its tag, its
// refs or its fresh pushed/linked time keeps the row. A put that comes
// after waits for the sweep, finds the row gone and fails (Present) or
// inserts it anew (the upserts). Under SQLite write transactions are
// serial and the same reads decide.

func (s *Store) GCManifests(ctx context.Context, fn func(storage.GCManifest) error) error {
	return s.eachRow(ctx, "gc manifests", qGCManifests, func(rows *sql.Rows) error {
		var (
			m             storage.GCManifest
			subject, refs string
			pushed        int64
		)
		if err := rows.Scan(&m.Repo, &m.Digest, &m.Size, &subject, &refs, &pushed, &m.Tagged); err != nil {
			return s.fail("gc manifests", err)
		}
		m.Subject, m.Pushed = digest.Digest(subject), fromNanos(pushed)
		if refs != "" {
			for r := range strings.SplitSeq(refs, "\n") {
				m.Refs = append(m.Refs, digest.Digest(r))
			}
		}
		return fn(m)
	})
}

func (s *Store) GCLinks(ctx context.Context, fn func(storage.GCLink) error) error {
	return s.eachRow(ctx, "gc links", qGCLinks, func(rows *sql.Rows) error {
		var (
			l      storage.GCLink
			linked int64
		)
		if err := rows.Scan(&l.Repo, &l.Digest, &l.Size, &linked); err != nil {
			return s.fail("gc links", err)
		}
		l.Linked = fromNanos(linked)
		return fn(l)
	})
}

// eachRow runs q on the readers and calls each for every row, stopping
// at its first error.
func (s *Store) eachRow(ctx context.Context, op string, q *Query, each func(*sql.Rows) error) error {
	rows, err := s.rows(ctx, s.r, q)
	if err != nil {
		return s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return s.fail(op, rows.Err())
}

func (s *Store) SweepManifest(ctx context.Context, repo string, d digest.Digest, cutoff time.Time, o storage.DeleteOptions) (bool, error) {
	var (
		evs     []storage.Event
		deleted bool
	)
	var queued queuedRows
	err := s.write(ctx, "sweep manifest", func(ctx context.Context, tx *sql.Tx) error {
		deleted = false
		id, err := s.repoID(ctx, tx, repo)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var (
			pushed  int64
			subject string
		)
		err = s.row(ctx, tx, qGCLockManifest, id, string(d)).Scan(&pushed, &subject)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // gone already
		}
		if err != nil || pushed >= nanos(cutoff) {
			return err
		}
		if keep, err := s.anyOf(ctx, tx, []check{
			{qGCTagged, []any{id, string(d)}},
			{qGCManifestReferenced, []any{id, string(d), refPattern(d)}},
		}); keep || err != nil {
			return err
		}
		if subject != "" {
			if keep, err := s.anyOf(ctx, tx, []check{{qGCManifestStored, []any{id, subject}}}); keep || err != nil {
				return err
			}
		}
		if err := s.deleteManifestRow(ctx, tx, id, d); err != nil {
			return err
		}
		deleted = true
		return s.recordWith(ctx, tx, o.Events, o.Index, &evs, &queued)
	})
	if !deleted {
		queued = queuedRows{}
	}
	return deleted, s.committed(ctx, err, queued)
}

func (s *Store) SweepLinks(ctx context.Context, cutoff time.Time, ls []storage.LinkSweep) ([]bool, error) {
	done := make([]bool, len(ls))
	var evs []storage.Event
	var queued queuedRows
	err := s.write(ctx, "sweep links", func(ctx context.Context, tx *sql.Tx) error {
		clear(done)
		evs = evs[:0]
		for i, l := range ls {
			ok, err := s.sweepLink(ctx, tx, l.Repo, l.Digest, cutoff)
			if err != nil {
				return err
			}
			if done[i] = ok; ok {
				evs = append(evs, l.Events...)
			}
		}
		return s.recordEvents(ctx, tx, evs, &queued)
	})
	if err != nil {
		clear(done)
		queued = queuedRows{}
	}
	return done, s.committed(ctx, err, queued)
}

// sweepLink is one link of SweepLinks.
func (s *Store) sweepLink(ctx context.Context, tx *sql.Tx, repo string, d digest.Digest, cutoff time.Time) (bool, error) {
	id, err := s.repoID(ctx, tx, repo)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var linked int64
	err = s.row(ctx, tx, qGCLockLink, id, string(d)).Scan(&linked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil || linked >= nanos(cutoff) {
		return false, err
	}
	if keep, err := s.anyOf(ctx, tx, []check{{qGCManifestReferenced, []any{id, "", refPattern(d)}}}); keep || err != nil {
		return false, err
	}
	_, err = s.exec(ctx, tx, qGCUnlink, id, string(d))
	return err == nil, err
}

// BeginBlobDelete commits the tombstones before it looks for links: a
// writer links first and looks for a tombstone after, so whichever comes
// second sees the other.
func (s *Store) BeginBlobDelete(ctx context.Context, ds []digest.Digest) ([]bool, error) {
	err := s.write(ctx, "begin blob delete", func(ctx context.Context, tx *sql.Tx) error {
		// Ended tombstones are kept for storage.DeleteHistory, then go.
		if _, err := s.exec(ctx, tx, qGCPurgeTombstones, int64(tombstoneKeep)); err != nil {
			return err
		}
		for _, d := range ds {
			if _, err := s.exec(ctx, tx, qGCTombstone, string(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	free := make([]bool, len(ds))
	for i, d := range ds {
		var linked bool
		if err := s.row(ctx, s.r, qGCLinkedAnywhere, string(d)).Scan(&linked); err != nil {
			return nil, s.fail("begin blob delete", err)
		}
		free[i] = !linked
	}
	return free, nil
}

// EndBlobDelete ends the tombstones of ds and keeps them (DeleteHistory).
func (s *Store) EndBlobDelete(ctx context.Context, ds []digest.Digest) error {
	return s.write(ctx, "end blob delete", func(ctx context.Context, tx *sql.Tx) error {
		for _, d := range ds {
			if _, err := s.exec(ctx, tx, qGCUntombstone, string(d)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) BlobDeleting(ctx context.Context, d digest.Digest) (bool, error) {
	var ok bool
	err := s.row(ctx, s.r, qGCDeleting, string(d), int64(storage.TombstoneTTL)).Scan(&ok)
	return ok, s.fail("blob deleting", err)
}

// tombstoneNear says, in tx, whether d has a tombstone put up within
// TombstoneTTL or within, the only ones that can make a link deleting or
// begun. Most links find none, and a statement's count says so with no
// rows to read: inside a transaction every query costs database/sql a
// watcher goroutine and a thread woken for it, a tenth of a small push's
// statements. The UPDATE changes nothing; it writes the row only in the
// rare case it finds one, which is then read.
func (s *Store) tombstoneNear(ctx context.Context, tx *sql.Tx, d digest.Digest, within time.Duration) (bool, error) {
	n, err := s.exec(ctx, tx, qGCTombstoneNear, string(d), int64(max(within, storage.TombstoneTTL)))
	return n > 0, err
}

var _ storage.DeleteHistory = (*Store)(nil)

// tombstoneKeep is how long an ended tombstone stays (DeleteHistory).
const tombstoneKeep = 3 * storage.TombstoneTTL

// BlobDeletingWithin is storage.DeleteHistory: one read for both.
func (s *Store) BlobDeletingWithin(ctx context.Context, d digest.Digest, within time.Duration) (deleting, begun bool, err error) {
	err = s.row(ctx, s.r, qGCDeletingWithin, int64(storage.TombstoneTTL), int64(within), string(d)).Scan(&deleting, &begun)
	return deleting, begun, s.fail("blob deleting", err)
}

func (s *Store) RecordGCRun(ctx context.Context, run *storage.GCRun) error {
	return s.recordRun(ctx, "record gc run", qGCRecordRun, runRow{dry: run.DryRun, trigger: run.Trigger,
		started: run.Started, finished: run.Finished, err: run.Error}, run.Counts, &run.ID)
}

func (s *Store) GCRuns(ctx context.Context, before int64, n int) ([]storage.GCRun, error) {
	var out []storage.GCRun
	err := s.listRuns(ctx, "gc runs", qGCRuns, before, n, func(r runRow, counts []byte) error {
		run := storage.GCRun{ID: r.id, DryRun: r.dry, Trigger: r.trigger, Started: r.started, Finished: r.finished, Error: r.err}
		out = append(out, run)
		return json.Unmarshal(counts, &out[len(out)-1].Counts)
	})
	return out, err
}

// runRow is the columns every table of background runs shares (gc_runs,
// retention_runs); each kind keeps its own counts as JSON.
type runRow struct {
	id                int64
	dry               bool
	trigger           string
	started, finished time.Time
	err               string
}

// recordRun inserts a run with q (the columns of runRow, then counts)
// and sets *id.
func (s *Store) recordRun(ctx context.Context, op string, q *Query, r runRow, counts any, id *int64) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		return s.row(ctx, tx, q, boolInt(r.dry), r.trigger, nanos(r.started), nanos(r.finished), r.err, string(b)).Scan(id)
	})
}

// listRuns reads up to n runs with q (id < before, newest first) and
// hands each to each with its counts.
func (s *Store) listRuns(ctx context.Context, op string, q *Query, before int64, n int, each func(runRow, []byte) error) error {
	if n <= 0 {
		return nil
	}
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := s.rows(ctx, s.r, q, before, n)
	if err != nil {
		return s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r                 runRow
			dry               int
			started, finished int64
			counts            string
		)
		if err := rows.Scan(&r.id, &dry, &r.trigger, &started, &finished, &r.err, &counts); err != nil {
			return s.fail(op, err)
		}
		r.dry, r.started, r.finished = dry != 0, fromNanos(started), fromNanos(finished)
		if err := each(r, []byte(counts)); err != nil {
			return s.fail(op, fmt.Errorf("run %d counts: %w", r.id, err))
		}
	}
	return s.fail(op, rows.Err())
}

func (s *Store) MarkBlobBad(ctx context.Context, d digest.Digest, detail string, evs ...storage.Event) (bool, error) {
	return s.changeBadBlob(ctx, "mark blob bad", qMarkBlobBad, evs, string(d), time.Now().UnixNano(), detail)
}

func (s *Store) ClearBlobBad(ctx context.Context, d digest.Digest, evs ...storage.Event) (bool, error) {
	return s.changeBadBlob(ctx, "clear blob bad", qClearBlobBad, evs, string(d))
}

// changeBadBlob runs q on bad_blobs and records evs with it, only when it
// changed a row.
func (s *Store) changeBadBlob(ctx context.Context, op string, q *Query, evs []storage.Event, args ...any) (bool, error) {
	changed := false
	var queued queuedRows
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, q, args...)
		if changed = n > 0; err != nil || !changed {
			return err
		}
		return s.recordEvents(ctx, tx, evs, &queued)
	})
	if !changed {
		queued = queuedRows{}
	}
	return changed, s.committed(ctx, err, queued)
}

func (s *Store) BlobBad(ctx context.Context, d digest.Digest) (string, bool, error) {
	var detail string
	err := s.row(ctx, s.r, qBlobBad, string(d)).Scan(&detail)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return detail, err == nil, s.fail("blob bad", err)
}

func (s *Store) BadBlobs(ctx context.Context) (map[digest.Digest]string, error) {
	out := map[digest.Digest]string{}
	err := s.eachRow(ctx, "bad blobs", qBadBlobs, func(rows *sql.Rows) error {
		var d, detail string
		if err := rows.Scan(&d, &detail); err != nil {
			return s.fail("bad blobs", err)
		}
		out[digest.Digest(d)] = detail
		return nil
	})
	return out, err
}

// check is one EXISTS query and its arguments.
type check struct {
	q    *Query
	args []any
}

// anyOf reports whether any of the checks finds a row.
func (s *Store) anyOf(ctx context.Context, tx *sql.Tx, cs []check) (bool, error) {
	for _, c := range cs {
		var ok bool
		if err := s.row(ctx, tx, c.q, c.args...).Scan(&ok); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// refPattern matches a refs column (digests one per line) that lists d.
// Digests hold no LIKE wildcard, and a digest is never part of a longer
// one: each starts with its algorithm and a colon.
func refPattern(d digest.Digest) string { return "%" + string(d) + "%" }

var (
	qGCManifests = query(`SELECT r.name, m.digest, m.size, m.subject, m.refs, m.pushed,
			EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)
		FROM manifests m JOIN repositories r ON r.id = m.repo_id`)
	qGCLinks = query(`SELECT r.name, b.digest, b.size, b.linked
		FROM blobs b JOIN repositories r ON r.id = b.repo_id`)
	qGCLockManifest = query(`SELECT pushed, subject FROM manifests
		WHERE repo_id = ? AND digest = ?{{forupdate}}`)
	qGCLockLink = query(`SELECT linked FROM blobs WHERE repo_id = ? AND digest = ?{{forupdate}}`)
	qGCTagged   = query(`SELECT EXISTS (SELECT 1 FROM tags WHERE repo_id = ? AND digest = ?)`)
	// Another manifest of the repository lists the digest.
	qGCManifestReferenced = query(`SELECT EXISTS (SELECT 1 FROM manifests
		WHERE repo_id = ? AND digest <> ? AND refs LIKE ?)`)
	qGCManifestStored = query(`SELECT EXISTS (SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?)`)
	qGCUnlink         = query(`DELETE FROM blobs WHERE repo_id = ? AND digest = ?`)
	// Tombstones are timed and aged by the database's clock ({{now}}), the
	// one clock every replica shares: a delete on one replica and a push
	// on another agree on a tombstone's age however far their clocks are
	// apart. Ages are parameters in nanoseconds.
	qGCTombstone = query(`INSERT INTO gc_tombstones (digest, at, ended) VALUES (?, {{now}}, 0)
		ON CONFLICT (digest) DO UPDATE SET at = excluded.at, ended = 0`)
	qGCUntombstone    = query(`UPDATE gc_tombstones SET ended = {{now}} WHERE digest = ?`)
	qGCLinkedAnywhere = query(`SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?)`)
	qGCDeleting       = query(`SELECT EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = ? AND at > {{now}} - ? AND ended = 0)`)
	// A tombstone up (as qGCDeleting), and one put up within the second
	// age, ended or not: one row by the primary key either way.
	qGCDeletingWithin = query(`SELECT COALESCE(MAX(CASE WHEN at > {{now}} - ? AND ended = 0 THEN 1 ELSE 0 END), 0) = 1,
		COALESCE(MAX(CASE WHEN at > {{now}} - ? THEN 1 ELSE 0 END), 0) = 1 FROM gc_tombstones WHERE digest = ?`)
	qGCTombstoneNear   = query(`UPDATE gc_tombstones SET ended = ended WHERE digest = ? AND at > {{now}} - ?`)
	qGCPurgeTombstones = query(`DELETE FROM gc_tombstones WHERE ended <> 0 AND at < {{now}} - ?`)
	qGCRecordRun       = query(`INSERT INTO gc_runs (dry_run, trigger_name, started, finished, error, counts)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`)
	qMarkBlobBad = query(`INSERT INTO bad_blobs (digest, found, detail) VALUES (?, ?, ?)
		ON CONFLICT (digest) DO NOTHING`)
	qClearBlobBad = query(`DELETE FROM bad_blobs WHERE digest = ?`)
	qBlobBad      = query(`SELECT detail FROM bad_blobs WHERE digest = ?`)
	qBadBlobs     = query(`SELECT digest, detail FROM bad_blobs`)
	qGCRuns       = query(`SELECT id, dry_run, trigger_name, started, finished, error, counts FROM gc_runs
		WHERE id < ? ORDER BY id DESC LIMIT ?`)
)
