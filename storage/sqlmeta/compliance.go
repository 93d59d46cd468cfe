package sqlmeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Compliance (migration 11):
//
//	compliance_versions     (name, version) PK, digest, lifecycle,
//	                        verification, attested, attestations (JSON),
//	                        compliant, findings (JSON), evaluated
//	                          INDEX (compliant, name, version)
//	compliance_attestations (name, version, predicate_type) PK
//	compliance_rules        id PK (one row, 1), body, updated
//	compliance_snapshots    at PK, counts (JSON)
//
// The summary is two GROUP BY queries over these rows, never a walk of
// the signatures: the worker that writes them did that once.

// PutComplianceRecords writes recs by up to complianceRows per statement:
// the worker writes every version of each repository an event touches
// (all of them on a full pass), and a statement per record and another
// for its attestation types was a round trip each, hundreds of thousands
// after a burst of pushes, competing with the requests for the database
// and the CPU for minutes.
func (s *Store) PutComplianceRecords(ctx context.Context, recs []storage.ComplianceRecord) error {
	recs = lastOfEach(recs)
	if len(recs) == 0 {
		return nil
	}
	return s.write(ctx, "put compliance records", func(ctx context.Context, tx *sql.Tx) error {
		for len(recs) > 0 {
			put, n := qPutCompliance.fit(len(recs))
			del, _ := qDeleteComplianceTypes.fit(n)
			if err := s.putCompliance(ctx, tx, put, del, recs[:n]); err != nil {
				return err
			}
			recs = recs[n:]
		}
		return nil
	})
}

// putCompliance writes recs, as many as put and del take, in those two
// statements and one more per attestation type.
func (s *Store) putCompliance(ctx context.Context, tx *sql.Tx, put, del *Query, recs []storage.ComplianceRecord) error {
	rows := make([]any, 0, len(recs)*complianceFields)
	keys := make([]any, 0, len(recs)*2)
	for _, r := range recs {
		types, err := json.Marshal(nonNil(r.Attestations))
		if err != nil {
			return err
		}
		findings, err := json.Marshal(r.Findings)
		if err != nil {
			return err
		}
		rows = append(rows, r.Name, r.Version, string(r.Digest), r.Lifecycle, r.Verification,
			boolInt(len(r.Attestations) > 0), string(types), boolInt(r.Compliant), string(findings), nanos(r.Evaluated))
		keys = append(keys, r.Name, r.Version)
	}
	if _, err := s.exec(ctx, tx, put, rows...); err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, del, keys...); err != nil {
		return err
	}
	for _, r := range recs {
		if r.Lifecycle == storage.PackDeleted {
			continue // counted nowhere
		}
		for _, t := range r.Attestations {
			if _, err := s.exec(ctx, tx, qPutComplianceType, r.Name, r.Version, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// lastOfEach is recs with only the last record of each version, in their
// order: one statement may not change a row twice (PostgreSQL), and the
// last record written is the one that stayed.
func lastOfEach(recs []storage.ComplianceRecord) []storage.ComplianceRecord {
	last := make(map[[2]string]int, len(recs))
	for i, r := range recs {
		last[[2]string{r.Name, r.Version}] = i
	}
	if len(last) == len(recs) {
		return recs
	}
	out := make([]storage.ComplianceRecord, 0, len(last))
	for i, r := range recs {
		if last[[2]string{r.Name, r.Version}] == i {
			out = append(out, r)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Store) ListComplianceRecords(ctx context.Context, q storage.ComplianceQuery) ([]storage.ComplianceRecord, error) {
	limit := int64(q.Limit)
	if limit <= 0 {
		limit = math.MaxInt32
	}
	// Two statements rather than optional clauses, so each is a range
	// scan of its index from the cursor: a page costs its size.
	var (
		rows *sql.Rows
		err  error
	)
	if q.Compliant != nil {
		rows, err = s.rows(ctx, s.r, qListComplianceByVerdict, boolInt(*q.Compliant), q.NamePrefix, prefixEnd(q.NamePrefix),
			q.AfterName, q.AfterVersion, limit)
	} else {
		rows, err = s.rows(ctx, s.r, qListCompliance, q.NamePrefix, prefixEnd(q.NamePrefix), q.AfterName, q.AfterVersion, limit)
	}
	if err != nil {
		return nil, s.fail("list compliance records", err)
	}
	defer rows.Close()
	var out []storage.ComplianceRecord
	for rows.Next() {
		var (
			r                    storage.ComplianceRecord
			d, types, findings   string
			compliant, evaluated int64
		)
		if err := rows.Scan(&r.Name, &r.Version, &d, &r.Lifecycle, &r.Verification, &types, &compliant, &findings, &evaluated); err != nil {
			return nil, s.fail("list compliance records", err)
		}
		r.Digest, r.Compliant, r.Evaluated = digest.Digest(d), compliant == 1, fromNanos(evaluated)
		if err := json.Unmarshal([]byte(types), &r.Attestations); err != nil {
			return nil, fmt.Errorf("compliance record %s:%s: attestations: %w", r.Name, r.Version, err)
		}
		if err := json.Unmarshal([]byte(findings), &r.Findings); err != nil {
			return nil, fmt.Errorf("compliance record %s:%s: findings: %w", r.Name, r.Version, err)
		}
		out = append(out, r)
	}
	return out, s.fail("list compliance records", rows.Err())
}

func (s *Store) ComplianceTallies(ctx context.Context) ([]storage.ComplianceTally, error) {
	rows, err := s.rows(ctx, s.r, qComplianceTallies)
	if err != nil {
		return nil, s.fail("compliance tallies", err)
	}
	defer rows.Close()
	var out []storage.ComplianceTally
	for rows.Next() {
		var (
			t                              storage.ComplianceTally
			compliant, attested, evaluated int64
		)
		if err := rows.Scan(&t.Name, &t.Verification, &t.Lifecycle, &compliant, &attested, &t.Versions, &evaluated); err != nil {
			return nil, s.fail("compliance tallies", err)
		}
		t.Compliant, t.Attested, t.Evaluated = compliant == 1, attested == 1, fromNanos(evaluated)
		out = append(out, t)
	}
	return out, s.fail("compliance tallies", rows.Err())
}

func (s *Store) ComplianceCoverage(ctx context.Context) ([]storage.ComplianceCoverage, error) {
	rows, err := s.rows(ctx, s.r, qComplianceCoverage)
	if err != nil {
		return nil, s.fail("compliance coverage", err)
	}
	defer rows.Close()
	var out []storage.ComplianceCoverage
	for rows.Next() {
		var c storage.ComplianceCoverage
		if err := rows.Scan(&c.Name, &c.PredicateType, &c.Versions); err != nil {
			return nil, s.fail("compliance coverage", err)
		}
		out = append(out, c)
	}
	return out, s.fail("compliance coverage", rows.Err())
}

func (s *Store) ComplianceRules(ctx context.Context) (string, time.Time, error) {
	var (
		body    string
		updated int64
	)
	err := s.row(ctx, s.r, qComplianceRules).Scan(&body, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, fmt.Errorf("compliance rules: %w", storage.ErrNotFound)
	}
	return body, fromNanos(updated), s.fail("compliance rules", err)
}

func (s *Store) PutComplianceRules(ctx context.Context, doc string, at time.Time, evs ...storage.Event) error {
	return s.writeRow(ctx, "put compliance rules", storage.ErrConflict, evs, qPutComplianceRules, doc, nanos(at))
}

func (s *Store) PutComplianceSnapshot(ctx context.Context, snap storage.ComplianceSnapshot) error {
	return s.write(ctx, "put compliance snapshot", func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, qPutComplianceSnapshot, nanos(snap.At), snap.Counts)
		return err
	})
}

func (s *Store) ComplianceSnapshots(ctx context.Context, from, to time.Time, n int) ([]storage.ComplianceSnapshot, error) {
	if n <= 0 {
		n = math.MaxInt32
	}
	rows, err := s.rows(ctx, s.r, qComplianceSnapshots, nanos(from), nanos(to), n)
	if err != nil {
		return nil, s.fail("compliance snapshots", err)
	}
	defer rows.Close()
	var out []storage.ComplianceSnapshot
	for rows.Next() {
		var (
			c  storage.ComplianceSnapshot
			at int64
		)
		if err := rows.Scan(&at, &c.Counts); err != nil {
			return nil, s.fail("compliance snapshots", err)
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, s.fail("compliance snapshots", rows.Err())
}

// complianceFields is how many columns a compliance_versions row has,
// complianceRows how many rows one statement writes at most (a power of
// two: sizedQueries).
const (
	complianceFields = 10
	complianceRows   = 32
)

var (
	// Up to complianceRows records per statement (PutComplianceRecords).
	qPutCompliance = queriesPow2(complianceRows, func(n int) string {
		row := "(?" + strings.Repeat(", ?", complianceFields-1) + ")"
		return `INSERT INTO compliance_versions (name, version, digest, lifecycle, verification, attested,
			attestations, compliant, findings, evaluated) VALUES ` + row + strings.Repeat(", "+row, n-1) + `
		ON CONFLICT (name, version) DO UPDATE SET digest = excluded.digest, lifecycle = excluded.lifecycle,
			verification = excluded.verification, attested = excluded.attested, attestations = excluded.attestations,
			compliant = excluded.compliant, findings = excluded.findings, evaluated = excluded.evaluated`
	})
	qDeleteComplianceTypes = queriesPow2(complianceRows, func(n int) string {
		return `DELETE FROM compliance_attestations WHERE (name, version) IN ` + subjectList(n)
	})
	qPutComplianceType = query(`INSERT INTO compliance_attestations (name, version, predicate_type) VALUES (?, ?, ?)
		ON CONFLICT (name, version, predicate_type) DO NOTHING`)
	qListCompliance = query(`SELECT name, version, digest, lifecycle, verification, attestations, compliant, findings, evaluated
		FROM compliance_versions
		WHERE name >= ? AND name < ? AND (name, version) > (?, ?) AND lifecycle <> 'deleted'
		ORDER BY name, version LIMIT ?`)
	qListComplianceByVerdict = query(`SELECT name, version, digest, lifecycle, verification, attestations, compliant, findings, evaluated
		FROM compliance_versions
		WHERE compliant = ? AND name >= ? AND name < ? AND (name, version) > (?, ?) AND lifecycle <> 'deleted'
		ORDER BY compliant, name, version LIMIT ?`)
	qComplianceTallies = query(`SELECT name, verification, lifecycle, compliant, attested, COUNT(*), MAX(evaluated)
		FROM compliance_versions WHERE lifecycle <> 'deleted'
		GROUP BY name, verification, lifecycle, compliant, attested`)
	qComplianceCoverage = query(`SELECT name, predicate_type, COUNT(*) FROM compliance_attestations
		GROUP BY name, predicate_type`)
	qComplianceRules    = query(`SELECT body, updated FROM compliance_rules WHERE id = 1`)
	qPutComplianceRules = query(`INSERT INTO compliance_rules (id, body, updated) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated = excluded.updated`)
	qPutComplianceSnapshot = query(`INSERT INTO compliance_snapshots (at, counts) VALUES (?, ?)
		ON CONFLICT (at) DO UPDATE SET counts = excluded.counts`)
	qComplianceSnapshots = query(`SELECT at, counts FROM compliance_snapshots WHERE at >= ? AND at <= ? ORDER BY at LIMIT ?`)
)
