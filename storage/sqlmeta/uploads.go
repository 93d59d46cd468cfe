package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func (s *Store) CreateUpload(ctx context.Context, u *storage.Upload) error {
	return s.write(ctx, "create upload", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, qCreateUpload,
			u.ID, u.Repo, u.Offset, u.Algorithm, u.HashState, u.Backend, nanos(u.Created), nanos(u.Updated))
		return err
	})
}

const uploadColumns = `id, repo, offset_bytes, algorithm, hash_state, backend, created, updated`

func scanUpload(sc interface{ Scan(...any) error }) (*storage.Upload, error) {
	u := &storage.Upload{}
	var created, updated int64
	if err := sc.Scan(&u.ID, &u.Repo, &u.Offset, &u.Algorithm, &u.HashState, &u.Backend, &created, &updated); err != nil {
		return nil, err
	}
	u.Created, u.Updated = fromNanos(created), fromNanos(updated)
	return u, nil
}

func (s *Store) GetUpload(ctx context.Context, id string) (*storage.Upload, error) {
	u, err := scanUpload(s.row(ctx, s.r, qGetUpload, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	return u, s.fail("get upload", err)
}

// UpdateUpload is a compare-and-swap on the offset, so two requests carrying
// the same chunk cannot both advance the session.
//
// Its commit is relaxed (writeRelaxed): the blob store does not make a
// chunk durable before the closing PUT either (storage.BlobStore.Append),
// so waiting for the disk here, once per PATCH, would buy nothing. After a
// crash of the machine the session may be back at an earlier offset and
// hash state, which the blob store resumes from (it drops the bytes past
// it), or the store refuses the session; a killed process loses nothing.
func (s *Store) UpdateUpload(ctx context.Context, u *storage.Upload, prevOffset int64) error {
	return s.writeRelaxed(ctx, "update upload", func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, qUpdateUpload,
			u.Offset, u.Algorithm, u.HashState, u.Backend, nanos(u.Updated), u.ID, prevOffset)
		if err != nil || n == 1 {
			return err
		}
		// Nothing matched: tell a vanished session from a lost race.
		var one int
		err = s.row(ctx, tx, qUploadExists, u.ID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("upload %s: %w", u.ID, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("upload %s moved past offset %d: %w", u.ID, prevOffset, storage.ErrConflict)
	})
}

func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.write(ctx, "delete upload", func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, qDeleteUpload, id)
		if err == nil && n == 0 {
			err = fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
		}
		return err
	})
}

// FinishUpload is LinkBlob and DeleteUpload in one transaction.
func (s *Store) FinishUpload(ctx context.Context, id, repo string, d digest.Digest, size int64, evs ...storage.Event) error {
	now := time.Now().UnixNano()
	recorded := false
	var queued queuedRows
	var rid int64
	err := s.write(ctx, "finish upload", func(ctx context.Context, tx *sql.Tx) error {
		recorded = false
		var err error
		if rid, err = s.ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, qLinkBlob, rid, string(d), size, now, now); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, qDeleteUpload, id)
		if err != nil || n == 0 {
			return err // gone already: whoever removed it recorded the events
		}
		recorded = true
		return s.recordEvents(ctx, tx, evs, &queued)
	})
	if !recorded {
		queued = queuedRows{}
	}
	return s.committed(ctx, s.repos.remember(err, repo, rid), queued)
}

// StaleUploads reads the updated index, oldest first, so repeated calls by
// a janitor make progress.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, n int) ([]*storage.Upload, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.rows(ctx, s.r, qStaleUploads, nanos(before), n)
	if err != nil {
		return nil, s.fail("stale uploads", err)
	}
	defer rows.Close()
	var out []*storage.Upload
	for len(out) < n && rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, s.fail("stale uploads", err)
		}
		out = append(out, u)
	}
	return out, s.fail("stale uploads", rows.Err())
}

// CountUploads counts the sessions, on the reader.
func (s *Store) CountUploads(ctx context.Context) (int64, error) {
	var n int64
	return n, s.fail("count uploads", s.row(ctx, s.r, qCountUploads).Scan(&n))
}

// AcquireLease is one upsert judged by the database clock: insert, or take
// over a row that is ours or expired; a live row of another holder makes
// the update's WHERE false and nothing changes.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.write(ctx, "acquire lease", func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, qAcquireLease,
			name, holder, int64(ttl))
		ok = n == 1
		return err
	})
	return ok && err == nil, err
}

func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.write(ctx, "release lease", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, qReleaseLease, name, holder)
		return err
	})
}

var (
	qCreateUpload = query(`INSERT INTO uploads
			(id, repo, offset_bytes, algorithm, hash_state, backend, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	qGetUpload    = query(`SELECT ` + uploadColumns + ` FROM uploads WHERE id = ?`)
	qUpdateUpload = query(`UPDATE uploads
			SET offset_bytes = ?, algorithm = ?, hash_state = ?, backend = ?, updated = ?
			WHERE id = ? AND offset_bytes = ?`)
	qUploadExists = query(`SELECT 1 FROM uploads WHERE id = ?`)
	qDeleteUpload = query(`DELETE FROM uploads WHERE id = ?`)
	qStaleUploads = query(`SELECT ` + uploadColumns + ` FROM uploads
		WHERE updated < ? ORDER BY updated, id LIMIT ?`)
	qCountUploads = query(`SELECT COUNT(*) FROM uploads`)
	qAcquireLease = query(`INSERT INTO leases (name, holder, expires) VALUES (?, ?, {{now}} + ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
			WHERE leases.holder = excluded.holder OR leases.expires <= {{now}}`)
	qReleaseLease = query(`DELETE FROM leases WHERE name = ? AND holder = ?`)
)
