package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Offline bundles (migration 11):
//
//	bundle_imports  id PK, state, actor, bundle_digest, chain, sequence,
//	                report (JSON), created, updated; INDEX (created, id)
//	bundle_chains   digest PK, chain, sequence, previous, import_id,
//	                applied; UNIQUE (chain, sequence)
//
// A chain's position is one row: two imports racing for the same
// position cannot both take it.

func (s *Store) PutBundleImport(ctx context.Context, imp *storage.BundleImport) error {
	return s.write(ctx, "put bundle import", func(ctx context.Context, tx *sql.Tx) error {
		return s.putImport(ctx, tx, imp)
	})
}

func (s *Store) putImport(ctx context.Context, tx *sql.Tx, imp *storage.BundleImport) error {
	_, err := s.exec(ctx, tx, qPutImport, imp.ID, imp.State, imp.Actor, string(imp.BundleDigest), imp.Chain,
		imp.Sequence, imp.Report, nanos(imp.Created), nanos(imp.Updated))
	return err
}

func (s *Store) GetBundleImport(ctx context.Context, id string) (*storage.BundleImport, error) {
	imp, err := scanImport(s.row(ctx, s.r, qGetImport, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("import %s: %w", id, storage.ErrNotFound)
	}
	return imp, s.fail("get bundle import", err)
}

func (s *Store) ListBundleImports(ctx context.Context, before time.Time, n int) ([]*storage.BundleImport, error) {
	b := int64(math.MaxInt64)
	if !before.IsZero() {
		b = nanos(before)
	}
	rows, err := s.rows(ctx, s.r, qListImports, b, limitArg(n))
	if err != nil {
		return nil, s.fail("list bundle imports", err)
	}
	defer rows.Close()
	var out []*storage.BundleImport
	for rows.Next() {
		imp, err := scanImport(rows)
		if err != nil {
			return nil, s.fail("list bundle imports", err)
		}
		out = append(out, imp)
	}
	return out, s.fail("list bundle imports", rows.Err())
}

func scanImport(r scanner) (*storage.BundleImport, error) {
	var (
		imp          storage.BundleImport
		d            string
		created, upd int64
	)
	if err := r.Scan(&imp.ID, &imp.State, &imp.Actor, &d, &imp.Chain, &imp.Sequence, &imp.Report, &created, &upd); err != nil {
		return nil, err
	}
	imp.BundleDigest, imp.Created, imp.Updated = digest.Digest(d), fromNanos(created), fromNanos(upd)
	return &imp, nil
}

func (s *Store) AppliedBundle(ctx context.Context, d digest.Digest) (*storage.AppliedBundle, error) {
	b, err := scanApplied(s.row(ctx, s.r, qAppliedBundle, string(d)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("bundle %s: %w", d, storage.ErrNotFound)
	}
	return b, s.fail("get applied bundle", err)
}

func (s *Store) ChainHead(ctx context.Context, chain string) (*storage.AppliedBundle, error) {
	b, err := scanApplied(s.row(ctx, s.r, qChainHead, chain))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("chain %s: %w", chain, storage.ErrNotFound)
	}
	return b, s.fail("get chain head", err)
}

func scanApplied(r scanner) (*storage.AppliedBundle, error) {
	var (
		b            storage.AppliedBundle
		d, prev      string
		appliedNanos int64
	)
	if err := r.Scan(&d, &b.Chain, &b.Sequence, &prev, &b.ImportID, &appliedNanos); err != nil {
		return nil, err
	}
	b.Digest, b.Previous, b.Applied = digest.Digest(d), digest.Digest(prev), fromNanos(appliedNanos)
	return &b, nil
}

func (s *Store) ApplyBundle(ctx context.Context, b *storage.AppliedBundle, imp *storage.BundleImport, recs ...*storage.AuditRecord) error {
	return s.writeAfterQueue(ctx, "apply bundle", func(ctx context.Context, tx *sql.Tx) error {
		head, err := scanApplied(s.row(ctx, tx, qChainHead, b.Chain))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if b.Sequence != 1 {
				return fmt.Errorf("bundle %d of chain %s follows nothing applied here: %w", b.Sequence, b.Chain, storage.ErrConflict)
			}
		case err != nil:
			return err
		case head.Sequence != b.Sequence-1 || head.Digest != b.Previous:
			return fmt.Errorf("bundle %d of chain %s does not follow its head, bundle %d (%s): %w",
				b.Sequence, b.Chain, head.Sequence, head.Digest, storage.ErrConflict)
		}
		n, err := s.exec(ctx, tx, qApplyBundle, string(b.Digest), b.Chain, b.Sequence, string(b.Previous), b.ImportID, nanos(b.Applied))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("bundle %s or position %d of chain %s is taken: %w", b.Digest, b.Sequence, b.Chain, storage.ErrConflict)
		}
		if err := s.putImport(ctx, tx, imp); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		return s.appendAfterQueue(ctx, tx, recs)
	})
}

const (
	importColumns  = `id, state, actor, bundle_digest, chain, sequence, report, created, updated`
	appliedColumns = `digest, chain, sequence, previous, import_id, applied`
)

var (
	qPutImport = query(`INSERT INTO bundle_imports (` + importColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, actor = excluded.actor,
			bundle_digest = excluded.bundle_digest, chain = excluded.chain, sequence = excluded.sequence,
			report = excluded.report, updated = excluded.updated`)
	qGetImport     = query(`SELECT ` + importColumns + ` FROM bundle_imports WHERE id = ?`)
	qListImports   = query(`SELECT ` + importColumns + ` FROM bundle_imports WHERE created < ? ORDER BY created DESC, id DESC LIMIT ?`)
	qAppliedBundle = query(`SELECT ` + appliedColumns + ` FROM bundle_chains WHERE digest = ?`)
	qChainHead     = query(`SELECT ` + appliedColumns + ` FROM bundle_chains WHERE chain = ? ORDER BY sequence DESC LIMIT 1`)
	qApplyBundle   = query(`INSERT INTO bundle_chains (` + appliedColumns + `) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
)
