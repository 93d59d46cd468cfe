package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Mirrors, upstreams, their runs and parity history (migration 4):
//
//	mirrors         id PK, kind, name, url, spec (JSON), secret (JSON),
//	                created, updated; UNIQUE (kind, name)
//	mirror_runs     id PK (increasing), mirror_id, kind, trigger_name, scope,
//	                state, holder, counts, errors, attempts, started,
//	                updated, finished
//	                  INDEX (mirror_id, kind, id)   -- newest runs of a kind
//	                  INDEX (mirror_id, state, id)  -- runs to carry on
//	parity_checks   id PK (increasing), mirror_id, in_parity, counts,
//	                started, finished; INDEX (mirror_id, id)
//	parity_entries  (check_id, name, version) PK, status, primary_digest,
//	                mirror_digest, detail; INDEX (check_id, status, name, version)
//
// No foreign keys: DeleteMirror removes the history itself, in the same
// transaction, and a run row must never block a mirror's deletion.

func (s *Store) CreateMirror(ctx context.Context, m *storage.Mirror, evs ...storage.Event) error {
	return s.writeQueued(ctx, "create mirror", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, qCreateMirror, m.ID, m.Kind, m.Name, m.URL, m.Spec, m.Secret, nanos(m.Created), nanos(m.Updated))
		if err == nil && n == 0 {
			err = fmt.Errorf("mirror %s (%s %s): %w", m.ID, m.Kind, m.Name, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

func (s *Store) GetMirror(ctx context.Context, id string) (*storage.Mirror, error) {
	m, err := scanMirror(s.row(ctx, s.r, qGetMirror, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mirror %s: %w", id, storage.ErrNotFound)
	}
	return m, s.fail("get mirror", err)
}

func (s *Store) ListMirrors(ctx context.Context, kind string) ([]*storage.Mirror, error) {
	rows, err := s.rows(ctx, s.r, qListMirrors, kind, kind)
	if err != nil {
		return nil, s.fail("list mirrors", err)
	}
	defer rows.Close()
	var out []*storage.Mirror
	for rows.Next() {
		m, err := scanMirror(rows)
		if err != nil {
			return nil, s.fail("list mirrors", err)
		}
		out = append(out, m)
	}
	return out, s.fail("list mirrors", rows.Err())
}

func (s *Store) UpdateMirror(ctx context.Context, m *storage.Mirror, evs ...storage.Event) error {
	return s.writeQueued(ctx, "update mirror", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		var kind string
		if err := s.row(ctx, tx, qMirrorKind, m.ID).Scan(&kind); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("mirror %s: %w", m.ID, storage.ErrNotFound)
			}
			return err
		}
		// Checked first rather than caught as a unique violation: drivers
		// report those differently, and a failed statement would end the
		// PostgreSQL transaction.
		var other string
		err := s.row(ctx, tx, qMirrorByName, kind, m.Name).Scan(&other)
		if err == nil && other != m.ID {
			return fmt.Errorf("mirror name %s: %w", m.Name, storage.ErrConflict)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err = s.exec(ctx, tx, qUpdateMirror, m.Name, m.URL, m.Spec, m.Secret, nanos(m.Updated), m.ID); err != nil {
			return err
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

func (s *Store) DeleteMirror(ctx context.Context, id string, evs ...storage.Event) error {
	return s.writeQueued(ctx, "delete mirror", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, qDeleteMirror, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("mirror %s: %w", id, storage.ErrNotFound)
		}
		for _, q := range []*Query{qDeleteMirrorRuns, qDeleteParityEntries, qDeleteParityChecks} {
			if _, err := s.exec(ctx, tx, q, id); err != nil {
				return err
			}
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

func scanMirror(r scanner) (*storage.Mirror, error) {
	var (
		m            storage.Mirror
		created, upd int64
	)
	if err := r.Scan(&m.ID, &m.Kind, &m.Name, &m.URL, &m.Spec, &m.Secret, &created, &upd); err != nil {
		return nil, err
	}
	m.Created, m.Updated = fromNanos(created), fromNanos(upd)
	return &m, nil
}

func (s *Store) CreateMirrorRun(ctx context.Context, r *storage.MirrorRun) error {
	return s.write(ctx, "create mirror run", func(ctx context.Context, tx *sql.Tx) error {
		return s.row(ctx, tx, qCreateRun, r.MirrorID, r.Kind, r.Trigger, r.Scope, r.State, r.Holder,
			r.Counts, r.Errors, r.Attempts, nanos(r.Started), nanos(r.Updated), nanos(r.Finished)).Scan(&r.ID)
	})
}

func (s *Store) GetMirrorRun(ctx context.Context, id int64) (*storage.MirrorRun, error) {
	r, err := scanRun(s.row(ctx, s.r, qGetRun, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mirror run %d: %w", id, storage.ErrNotFound)
	}
	return r, s.fail("get mirror run", err)
}

func (s *Store) UpdateMirrorRun(ctx context.Context, r *storage.MirrorRun) error {
	return s.write(ctx, "update mirror run", func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, qUpdateRun, r.State, r.Holder, r.Counts, r.Errors, r.Attempts,
			nanos(r.Updated), nanos(r.Finished), r.ID)
		if err == nil && n == 0 {
			err = fmt.Errorf("mirror run %d: %w", r.ID, storage.ErrNotFound)
		}
		return err
	})
}

func (s *Store) ListMirrorRuns(ctx context.Context, mirrorID, kind string, before int64, n int) ([]*storage.MirrorRun, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	return s.runs(ctx, "list mirror runs", qListRuns, mirrorID, kind, kind, before, n)
}

func (s *Store) RunningMirrorRuns(ctx context.Context, mirrorID string) ([]*storage.MirrorRun, error) {
	return s.runs(ctx, "running mirror runs", qRunningRuns, mirrorID, storage.RunRunning)
}

func (s *Store) runs(ctx context.Context, op string, q *Query, args ...any) ([]*storage.MirrorRun, error) {
	rows, err := s.rows(ctx, s.r, q, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []*storage.MirrorRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, r)
	}
	return out, s.fail(op, rows.Err())
}

func scanRun(r scanner) (*storage.MirrorRun, error) {
	var (
		run                    storage.MirrorRun
		started, upd, finished int64
	)
	if err := r.Scan(&run.ID, &run.MirrorID, &run.Kind, &run.Trigger, &run.Scope, &run.State, &run.Holder,
		&run.Counts, &run.Errors, &run.Attempts, &started, &upd, &finished); err != nil {
		return nil, err
	}
	run.Started, run.Updated, run.Finished = fromNanos(started), fromNanos(upd), fromNanos(finished)
	return &run, nil
}

func (s *Store) PutParityCheck(ctx context.Context, c *storage.ParityCheck, entries []storage.ParityEntry) error {
	return s.write(ctx, "put parity check", func(ctx context.Context, tx *sql.Tx) error {
		inParity := 0 // an integer column: PostgreSQL will not cast a bool parameter
		if c.InParity {
			inParity = 1
		}
		if err := s.row(ctx, tx, qCreateParity, c.MirrorID, inParity, c.Counts, nanos(c.Started), nanos(c.Finished)).Scan(&c.ID); err != nil {
			return err
		}
		for i := range entries {
			e := &entries[i]
			e.CheckID = c.ID
			if _, err := s.exec(ctx, tx, qCreateParityEntry, c.ID, c.MirrorID, e.Name, e.Version, e.Status,
				string(e.PrimaryDigest), string(e.MirrorDigest), e.Detail); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) GetParityCheck(ctx context.Context, id int64) (*storage.ParityCheck, error) {
	c, err := scanParity(s.row(ctx, s.r, qGetParity, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("parity check %d: %w", id, storage.ErrNotFound)
	}
	return c, s.fail("get parity check", err)
}

func (s *Store) ListParityChecks(ctx context.Context, mirrorID string, before int64, n int) ([]*storage.ParityCheck, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.rows(ctx, s.r, qListParity, mirrorID, before, n)
	if err != nil {
		return nil, s.fail("list parity checks", err)
	}
	defer rows.Close()
	var out []*storage.ParityCheck
	for rows.Next() {
		c, err := scanParity(rows)
		if err != nil {
			return nil, s.fail("list parity checks", err)
		}
		out = append(out, c)
	}
	return out, s.fail("list parity checks", rows.Err())
}

func scanParity(r scanner) (*storage.ParityCheck, error) {
	var (
		c                           storage.ParityCheck
		inParity, started, finished int64
	)
	if err := r.Scan(&c.ID, &c.MirrorID, &inParity, &c.Counts, &started, &finished); err != nil {
		return nil, err
	}
	c.InParity = inParity != 0
	c.Started, c.Finished = fromNanos(started), fromNanos(finished)
	return &c, nil
}

func (s *Store) ParityEntries(ctx context.Context, checkID int64, status string) ([]storage.ParityEntry, error) {
	rows, err := s.rows(ctx, s.r, qParityEntries, checkID, status, status)
	if err != nil {
		return nil, s.fail("parity entries", err)
	}
	defer rows.Close()
	var out []storage.ParityEntry
	for rows.Next() {
		var (
			e              storage.ParityEntry
			primary, other string
		)
		if err := rows.Scan(&e.CheckID, &e.Name, &e.Version, &e.Status, &primary, &other, &e.Detail); err != nil {
			return nil, s.fail("parity entries", err)
		}
		e.PrimaryDigest, e.MirrorDigest = digest.Digest(primary), digest.Digest(other)
		out = append(out, e)
	}
	return out, s.fail("parity entries", rows.Err())
}

const (
	mirrorColumns = `id, kind, name, url, spec, secret, created, updated`
	runColumns    = `id, mirror_id, kind, trigger_name, scope, state, holder, counts, errors, attempts, started, updated, finished`
	parityColumns = `id, mirror_id, in_parity, counts, started, finished`
)

var (
	// DO NOTHING on either unique constraint: a taken id or name is a
	// conflict the caller reports, not a driver error to classify.
	qCreateMirror = query(`INSERT INTO mirrors (` + mirrorColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	qGetMirror    = query(`SELECT ` + mirrorColumns + ` FROM mirrors WHERE id = ?`)
	qListMirrors  = query(`SELECT ` + mirrorColumns + ` FROM mirrors WHERE ? = '' OR kind = ? ORDER BY kind, name`)
	qMirrorKind   = query(`SELECT kind FROM mirrors WHERE id = ?`)
	qMirrorByName = query(`SELECT id FROM mirrors WHERE kind = ? AND name = ?`)
	qUpdateMirror = query(`UPDATE mirrors SET name = ?, url = ?, spec = ?, secret = ?, updated = ? WHERE id = ?`)
	qDeleteMirror = query(`DELETE FROM mirrors WHERE id = ?`)

	qDeleteMirrorRuns    = query(`DELETE FROM mirror_runs WHERE mirror_id = ?`)
	qDeleteParityEntries = query(`DELETE FROM parity_entries WHERE mirror_id = ?`)
	qDeleteParityChecks  = query(`DELETE FROM parity_checks WHERE mirror_id = ?`)

	qCreateRun = query(`INSERT INTO mirror_runs (mirror_id, kind, trigger_name, scope, state, holder, counts, errors, attempts, started, updated, finished)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	qGetRun    = query(`SELECT ` + runColumns + ` FROM mirror_runs WHERE id = ?`)
	qUpdateRun = query(`UPDATE mirror_runs SET state = ?, holder = ?, counts = ?, errors = ?, attempts = ?, updated = ?, finished = ?
		WHERE id = ?`)
	qListRuns = query(`SELECT ` + runColumns + ` FROM mirror_runs
		WHERE mirror_id = ? AND (? = '' OR kind = ?) AND id < ? ORDER BY id DESC LIMIT ?`)
	qRunningRuns = query(`SELECT ` + runColumns + ` FROM mirror_runs WHERE mirror_id = ? AND state = ? ORDER BY id`)

	qCreateParity = query(`INSERT INTO parity_checks (mirror_id, in_parity, counts, started, finished)
		VALUES (?, ?, ?, ?, ?) RETURNING id`)
	qCreateParityEntry = query(`INSERT INTO parity_entries (check_id, mirror_id, name, version, status, primary_digest, mirror_digest, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	qGetParity  = query(`SELECT ` + parityColumns + ` FROM parity_checks WHERE id = ?`)
	qListParity = query(`SELECT ` + parityColumns + ` FROM parity_checks
		WHERE mirror_id = ? AND id < ? ORDER BY id DESC LIMIT ?`)
	qParityEntries = query(`SELECT check_id, name, version, status, primary_digest, mirror_digest, detail
		FROM parity_entries WHERE check_id = ? AND (? = '' OR status = ?) ORDER BY name, version`)
)
