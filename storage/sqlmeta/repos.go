package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// RepositoryExists is true while repo holds a blob or a manifest (every
// tag points at a manifest of its repository). A repository row whose
// content is all gone stays behind but no longer counts.
func (s *Store) RepositoryExists(ctx context.Context, repo string) (bool, error) {
	var ok bool
	err := s.row(ctx, s.r, qRepoExists, repo).Scan(&ok)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return ok, s.fail("repository exists", err)
}

// ListRepositories walks the unique index on name, so a page costs n rows
// however many repositories there are.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.rows(ctx, s.r, qListRepos, last, n)
	if err != nil {
		return nil, s.fail("list repositories", err)
	}
	names, err := scanStrings(rows, n)
	return names, s.fail("list repositories", err)
}

func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64, evs ...storage.Event) error {
	if done, err := s.linkPiped(ctx, repo, d, size, evs, nil); done {
		return err
	}
	return s.linkBlob(ctx, repo, d, size, evs, nil)
}

// linkBlob is LinkBlob, then after (when set) in the same transaction.
func (s *Store) linkBlob(ctx context.Context, repo string, d digest.Digest, size int64, evs []storage.Event, after func(context.Context, *sql.Tx) error) error {
	now := time.Now().UnixNano()
	var id int64
	err := s.writeQueued(ctx, "link blob", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		var err error
		if id, err = s.ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		link := []any{id, string(d), size, now, now}
		if s.linkQueue != nil {
			// One round trip for the link and its events' queue rows.
			err = s.recordEventsLed(ctx, tx, s.linkQueue, link, evs, queued)
		} else if _, err = s.exec(ctx, tx, qLinkBlob, link...); err == nil {
			err = s.recordEvents(ctx, tx, evs, queued)
		}
		if err != nil {
			return err
		}
		if after != nil {
			return after(ctx, tx)
		}
		return nil
	})
	return s.repos.remember(err, repo, id)
}

var _ storage.LinkConfirmer = (*Store)(nil)

// LinkBlobConfirmed is storage.LinkConfirmer: serial on a dialect with
// SerialWrites, where the tombstones are read after the link, in its
// transaction (the store keeps ended ones: DeleteHistory), and on one
// with Pipeline, where they are read right after its COMMIT, in the
// COMMIT's round trip (linkpipe.go); elsewhere it is LinkBlob.
func (s *Store) LinkBlobConfirmed(ctx context.Context, repo string, d digest.Digest, size int64, within time.Duration, evs ...storage.Event) (c storage.LinkCheck, err error) {
	if done, err := s.linkPiped(ctx, repo, d, size, evs, &linkCheck{within, &c}); done {
		return c, err
	}
	if !s.d.SerialWrites {
		// Not LinkBlob: the pipelines were tried already.
		return c, s.linkBlob(ctx, repo, d, size, evs, nil)
	}
	err = s.linkBlob(ctx, repo, d, size, evs, func(ctx context.Context, tx *sql.Tx) error {
		c.Begun = within <= 0
		if near, err := s.tombstoneNear(ctx, tx, d, within); err != nil || !near {
			return err
		}
		if within <= 0 {
			return s.row(ctx, tx, qGCDeleting, string(d), int64(storage.TombstoneTTL)).Scan(&c.Deleting)
		}
		return s.row(ctx, tx, qGCDeletingWithin, int64(storage.TombstoneTTL), int64(within), string(d)).Scan(&c.Deleting, &c.Begun)
	})
	c.Serial = err == nil
	return c, err
}

func (s *Store) BlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	var size int64
	err := s.row(ctx, s.r, qBlobSize, repo, string(d)).Scan(&size)
	if err == sql.ErrNoRows {
		return 0, fmt.Errorf("blob %s in %s: %w", d, repo, storage.ErrNotFound)
	}
	return size, s.fail("blob size", err)
}

func (s *Store) BlobSizes(ctx context.Context, repo string, ds []digest.Digest) ([]int64, error) {
	sizes := make([]int64, len(ds))
	at := make(map[digest.Digest][]int, len(ds)) // a digest may be listed twice
	for i, d := range ds {
		sizes[i] = -1
		at[d] = append(at[d], i)
	}
	for chunk := range slices.Chunk(ds, blobSizeRows) {
		rows, err := s.rows(ctx, s.r, qBlobSizes[len(chunk)-1], digestArgs(repo, chunk)...)
		if err != nil {
			return nil, s.fail("blob sizes", err)
		}
		for rows.Next() {
			var (
				d    string
				size int64
			)
			if err := rows.Scan(&d, &size); err != nil {
				rows.Close()
				return nil, s.fail("blob sizes", err)
			}
			for _, i := range at[digest.Digest(d)] {
				sizes[i] = size
			}
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, s.fail("blob sizes", err)
		}
	}
	return sizes, nil
}

// blobSizeRows is how many digests one query of BlobSizes asks for: a
// manifest's config and its few layers in one.
const blobSizeRows = 8

func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest, evs ...storage.Event) error {
	return s.writeQueued(ctx, "unlink blob", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, qUnlinkBlob, repo, string(d))
		if err == nil && n == 0 {
			err = fmt.Errorf("blob %s in %s: %w", d, repo, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

func (s *Store) FindBlob(ctx context.Context, d digest.Digest) (string, int64, error) {
	var (
		repo string
		size int64
	)
	err := s.row(ctx, s.r, qFindBlob, string(d)).Scan(&repo, &size)
	if err == sql.ErrNoRows {
		return "", 0, fmt.Errorf("blob %s: %w", d, storage.ErrNotFound)
	}
	return repo, size, s.fail("find blob", err)
}

// scanStrings reads one text column, never more than n rows.
func scanStrings(rows *sql.Rows, n int) ([]string, error) {
	defer rows.Close()
	out := make([]string, 0, min(n, 1024))
	for len(out) < n && rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

var (
	qRepoExists = query(`SELECT EXISTS (SELECT 1 FROM blobs b WHERE b.repo_id = r.id)
		OR EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)
		FROM repositories r WHERE r.name = ?`)
	qListRepos = query(`SELECT r.name FROM repositories r
		WHERE r.name > ? AND (EXISTS (SELECT 1 FROM blobs b WHERE b.repo_id = r.id)
			OR EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id))
		ORDER BY r.name LIMIT ?`)
	// A link again refreshes linked: a collector's sweep keeps a blob
	// linked since its mark (gc.go). The upsert locks the row, so it waits
	// for a sweep that locked it first and then inserts it anew.
	qLinkBlob = query(`INSERT INTO blobs (repo_id, digest, size, created, linked) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (repo_id, digest) DO UPDATE SET linked = excluded.linked`)
	qBlobSize = query(`SELECT b.size FROM blobs b JOIN repositories r ON r.id = b.repo_id
		WHERE r.name = ? AND b.digest = ?`)
	qBlobSizes = queriesUpTo(blobSizeRows, func(n int) string {
		return `SELECT b.digest, b.size FROM blobs b JOIN repositories r ON r.id = b.repo_id
		WHERE r.name = ? AND b.digest IN ` + inDigests(n)
	})
	qUnlinkBlob = query(`DELETE FROM blobs
			WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?`)
	qFindBlob = query(`SELECT r.name, b.size FROM blobs b JOIN repositories r ON r.id = b.repo_id
		WHERE b.digest = ? LIMIT 1`)
)
