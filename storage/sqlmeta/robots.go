package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/packreg/packreg/storage"
)

// Robot accounts (migration 12):
//
//	robots  name PK, secret_hash, rules (JSON), expires, disabled,
//	        created, created_by

func (s *Store) CreateRobot(ctx context.Context, r *storage.Robot, evs ...storage.Event) error {
	return s.writeQueued(ctx, "create robot", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, qCreateRobot, r.Name, r.SecretHash, r.Rules, nanos(r.ExpiresAt),
			boolInt(r.Disabled), nanos(r.Created), r.CreatedBy)
		if err == nil && n == 0 {
			err = fmt.Errorf("robot %s: %w", r.Name, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		return s.recordEvents(ctx, tx, evs, queued)
	})
}

func (s *Store) GetRobot(ctx context.Context, name string) (*storage.Robot, error) {
	r, err := scanRobot(s.row(ctx, s.r, qGetRobot, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("robot %s: %w", name, storage.ErrNotFound)
	}
	return r, s.fail("get robot", err)
}

func (s *Store) ListRobots(ctx context.Context) ([]*storage.Robot, error) {
	rows, err := s.rows(ctx, s.r, qListRobots)
	if err != nil {
		return nil, s.fail("list robots", err)
	}
	defer rows.Close()
	var out []*storage.Robot
	for rows.Next() {
		r, err := scanRobot(rows)
		if err != nil {
			return nil, s.fail("list robots", err)
		}
		out = append(out, r)
	}
	return out, s.fail("list robots", rows.Err())
}

func (s *Store) SetRobotDisabled(ctx context.Context, name string, disabled bool, evs ...storage.Event) error {
	return s.robotWrite(ctx, "disable robot", name, evs, qDisableRobot, boolInt(disabled), name)
}

func (s *Store) DeleteRobot(ctx context.Context, name string, evs ...storage.Event) error {
	return s.robotWrite(ctx, "delete robot", name, evs, qDeleteRobot, name)
}

// robotWrite runs one statement on an existing robot and records evs.
func (s *Store) robotWrite(ctx context.Context, what, name string, evs []storage.Event, q *Query, args ...any) error {
	var queued queuedRows
	err := s.write(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, q, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("robot %s: %w", name, storage.ErrNotFound)
		}
		return s.recordEvents(ctx, tx, evs, &queued)
	})
	return s.committed(ctx, err, queued)
}

func scanRobot(r scanner) (*storage.Robot, error) {
	var (
		b                          storage.Robot
		expires, disabled, created int64
	)
	if err := r.Scan(&b.Name, &b.SecretHash, &b.Rules, &expires, &disabled, &created, &b.CreatedBy); err != nil {
		return nil, err
	}
	b.ExpiresAt, b.Disabled, b.Created = fromNanos(expires), disabled != 0, fromNanos(created)
	return &b, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const robotColumns = `name, secret_hash, rules, expires, disabled, created, created_by`

var (
	qCreateRobot = query(`INSERT INTO robots (` + robotColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	qGetRobot     = query(`SELECT ` + robotColumns + ` FROM robots WHERE name = ?`)
	qListRobots   = query(`SELECT ` + robotColumns + ` FROM robots ORDER BY name`)
	qDisableRobot = query(`UPDATE robots SET disabled = ? WHERE name = ?`)
	qDeleteRobot  = query(`DELETE FROM robots WHERE name = ?`)
)
