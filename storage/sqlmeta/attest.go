package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The attest key ring, trusted roots and signature records (migrations 3,
// 6, 8, 10 and 11):
//
//	attest_keys     id PK (hex SHA-256 of the SubjectPublicKeyInfo), name UNIQUE,
//	                pem, algorithm, state, not_before, not_after, created, updated,
//	                usages (comma-separated, migration 11)
//	attest_records  (repo, subject, referrer, idx) PK: one row per signature
//	                found in a referrer manifest, about one subject; kind,
//	                format, key_id, algorithm, predicate_type, sig_hash,
//	                payload_digest, status, reason, recorded, checked,
//	                superseded (0 while current), keyless (attest's JSON of
//	                what a certificate proves, '' for key signatures; 10)
//	                  PK prefix (repo, subject)                -- re-checks
//	                  INDEX (repo, subject, superseded, recorded, referrer, idx)
//	                                                           -- reports, pull gate
//	                  INDEX (repo, referrer, subject, idx)     -- exemption, deletes
//	                  INDEX (key_id)                           -- keys/{id}/signed
//	                  INDEX (sig_hash)                         -- altered payloads
//	                  INDEX (status, repo, subject, referrer, idx) -- re-check walk
//	attest_trusted_roots  name PK, body (trusted_root.json), digest, created

func (s *Store) CreateKey(ctx context.Context, k *storage.Key, evs ...storage.Event) error {
	// DO NOTHING on either unique column: a taken id or name is a
	// conflict the caller reports, not a driver error to classify.
	return s.writeRow(ctx, "create key", fmt.Errorf("key %s (%s): %w", k.ID, k.Name, storage.ErrConflict), evs,
		qCreateKey, k.ID, k.Name, k.PEM, k.Algorithm, k.State,
		nanos(k.NotBefore), nanos(k.NotAfter), nanos(k.Created), nanos(k.Updated), joinUsage(k.Usage))
}

func (s *Store) GetKey(ctx context.Context, id string) (*storage.Key, error) {
	k, err := scanKey(s.row(ctx, s.r, qGetKey, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s: %w", id, storage.ErrNotFound)
	}
	return k, s.fail("get key", err)
}

func (s *Store) ListKeys(ctx context.Context) ([]*storage.Key, error) {
	rows, err := s.rows(ctx, s.r, qListKeys)
	if err != nil {
		return nil, s.fail("list keys", err)
	}
	defer rows.Close()
	var out []*storage.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.fail("list keys", err)
		}
		out = append(out, k)
	}
	return out, s.fail("list keys", rows.Err())
}

var _ storage.TrustLister = (*Store)(nil)

// ListTrust is storage.TrustLister: keys and roots in one statement, a
// root's row carrying its name and digest where a key's has id and name.
func (s *Store) ListTrust(ctx context.Context) ([]*storage.Key, []storage.RootRef, error) {
	rows, err := s.rows(ctx, s.r, qListTrust)
	if err != nil {
		return nil, nil, s.fail("list trust", err)
	}
	defer rows.Close()
	var (
		keys  []*storage.Key
		roots []storage.RootRef
	)
	for rows.Next() {
		var isRoot int
		k, err := scanKey(prefixed{rows, &isRoot})
		if err != nil {
			return nil, nil, s.fail("list trust", err)
		}
		if isRoot == 1 {
			roots = append(roots, storage.RootRef{Name: k.ID, Digest: k.Name})
		} else {
			keys = append(keys, k)
		}
	}
	return keys, roots, s.fail("list trust", rows.Err())
}

// prefixed scans one column into first, then the rest as the scanner's.
type prefixed struct {
	scanner
	first any
}

func (p prefixed) Scan(dest ...any) error { return p.scanner.Scan(append([]any{p.first}, dest...)...) }

func (s *Store) UpdateKey(ctx context.Context, k *storage.Key, evs ...storage.Event) error {
	return s.writeRow(ctx, "update key", fmt.Errorf("key %s: %w", k.ID, storage.ErrNotFound), evs,
		qUpdateKey, k.State, nanos(k.NotBefore), nanos(k.NotAfter), nanos(k.Updated), k.ID)
}

type scanner interface{ Scan(dest ...any) error }

func scanKey(r scanner) (*storage.Key, error) {
	var (
		k                                 storage.Key
		notBefore, notAfter, created, upd int64
		usages                            string
	)
	if err := r.Scan(&k.ID, &k.Name, &k.PEM, &k.Algorithm, &k.State, &notBefore, &notAfter, &created, &upd, &usages); err != nil {
		return nil, err
	}
	k.NotBefore, k.NotAfter, k.Created, k.Updated = fromNanos(notBefore), fromNanos(notAfter), fromNanos(created), fromNanos(upd)
	k.Usage = splitUsage(usages)
	return &k, nil
}

// joinUsage is how a key's usages are stored: comma-separated, in the
// order given; none is the usage every key had before usages existed.
func joinUsage(u []string) string {
	if len(u) == 0 {
		return storage.KeyUsageSignatures
	}
	return strings.Join(u, ",")
}

func splitUsage(s string) []string {
	if s == "" {
		return []string{storage.KeyUsageSignatures}
	}
	return strings.Split(s, ",")
}

// PutAttestRecords deletes and re-inserts the (subject, referrer) rows in
// one transaction, carrying each index's first recorded time over (the key
// that judges a signature is the key valid when it was first seen) and
// each kind's superseded time: read in the same transaction, so a re-check
// racing a supersede cannot bring the old signature back.
func (s *Store) PutAttestRecords(ctx context.Context, repo string, subject, referrer digest.Digest, recs []storage.AttestRecord) error {
	for _, r := range recs {
		if r.Subject != subject {
			return fmt.Errorf("sqlmeta: record about %s put as one about %s", r.Subject, subject)
		}
	}
	return s.write(ctx, "put attest records", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := s.rows(ctx, tx, qRecordedOf, repo, string(subject), string(referrer))
		if err != nil {
			return err
		}
		recorded := map[int]int64{}
		superseded := map[string]int64{} // by kind
		for rows.Next() {
			var (
				idx      int
				kind     string
				at, gone int64
			)
			if err := rows.Scan(&idx, &kind, &at, &gone); err != nil {
				rows.Close()
				return err
			}
			recorded[idx] = at
			if gone != 0 {
				superseded[kind] = gone
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, qDeleteSubjectRecords, repo, string(subject), string(referrer)); err != nil {
			return err
		}
		for _, r := range recs {
			at, ok := recorded[r.Index]
			if !ok {
				at = nanos(r.Recorded)
			}
			gone, ok := superseded[r.Kind]
			if !ok {
				gone = nanos(r.Superseded)
			}
			_, err := s.exec(ctx, tx, qInsertRecord, repo, string(referrer), r.Index, r.Kind, r.Format,
				string(r.Subject), r.KeyID, r.Algorithm, r.PredicateType, r.SigHash, string(r.PayloadDigest),
				r.Status, r.Reason, at, nanos(r.Checked), gone, r.Keyless)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) DeleteAttestRecords(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	return s.write(ctx, "delete attest records", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if subject == "" {
			_, err = s.exec(ctx, tx, qDeleteRecords, repo, string(referrer))
		} else {
			_, err = s.exec(ctx, tx, qDeleteSubjectRecords, repo, string(subject), string(referrer))
		}
		return err
	})
}

func (s *Store) SupersedeAttestRecords(ctx context.Context, repo string, subject digest.Digest, kind, format string, keep digest.Digest, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "supersede attest records", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if format == "" {
			n, err = s.exec(ctx, tx, qSupersede, nanos(at), repo, string(subject), kind, string(keep))
		} else {
			n, err = s.exec(ctx, tx, qSupersedeFormat, nanos(at), repo, string(subject), kind, string(keep), format)
		}
		if err != nil || keep == "" {
			return err
		}
		_, err = s.exec(ctx, tx, qUnsupersede, repo, string(subject), kind, string(keep))
		return err
	})
	return int(n), err
}

func (s *Store) AttestRecordsBySubject(ctx context.Context, repo string, subject digest.Digest, n int) ([]storage.AttestRecord, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.attestRecords(ctx, "attest records by subject", qRecordsBySubject, repo, string(subject), n)
}

func (s *Store) SupersededAttestRecords(ctx context.Context, repo string, subject digest.Digest, n int) ([]storage.AttestRecord, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.attestRecords(ctx, "superseded attest records", qSupersededRecords, repo, string(subject), n)
}

// AttestRecordsBySubjects runs one query per list for each attestBatch
// subjects. The unused slots of the last batch name an empty repository
// and subject, which no record has, so the statement keeps
// one shape and stays prepared.
func (s *Store) AttestRecordsBySubjects(ctx context.Context, subjects []storage.AttestSubject, n, history int) (current, superseded map[storage.AttestSubject][]storage.AttestRecord, err error) {
	current, superseded = map[storage.AttestSubject][]storage.AttestRecord{}, map[storage.AttestSubject][]storage.AttestRecord{}
	args := make([]any, 2*attestBatch+1)
	for len(subjects) > 0 {
		batch := subjects[:min(len(subjects), attestBatch)]
		subjects = subjects[len(batch):]
		for i := range attestBatch {
			args[2*i], args[2*i+1] = "", ""
			if i < len(batch) {
				args[2*i], args[2*i+1] = batch[i].Repo, string(batch[i].Subject)
			}
		}
		for _, l := range []struct {
			q   *Query
			n   int
			out map[storage.AttestSubject][]storage.AttestRecord
		}{{qRecordsBySubjects, n, current}, {qSupersededBySubjects, history, superseded}} {
			if l.n <= 0 {
				continue
			}
			args[2*attestBatch] = l.n
			recs, err := s.attestRecords(ctx, "attest records by subjects", l.q, args...)
			if err != nil {
				return nil, nil, err
			}
			for _, r := range recs {
				k := storage.AttestSubject{Repo: r.Repo, Subject: r.Subject}
				l.out[k] = append(l.out[k], r)
			}
		}
	}
	return current, superseded, nil
}

func (s *Store) AttestRecordsByReferrer(ctx context.Context, repo string, referrer digest.Digest, n int) ([]storage.AttestRecord, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.attestRecords(ctx, "attest records by referrer", qRecordsByReferrer, repo, string(referrer), n)
}

func (s *Store) AttestRecordsByKey(ctx context.Context, keyID string) ([]storage.AttestRecord, error) {
	return s.attestRecords(ctx, "attest records by key", qRecordsByKey, keyID)
}

func (s *Store) AttestRecordsBySigHash(ctx context.Context, h string) ([]storage.AttestRecord, error) {
	return s.attestRecords(ctx, "attest records by signature", qRecordsBySig, h)
}

func (s *Store) AttestRecordsWithStatus(ctx context.Context, status string, after storage.AttestCursor, n int) ([]storage.AttestRecord, error) {
	if n <= 0 {
		return nil, nil
	}
	return s.attestRecords(ctx, "attest records by status", qRecordsWithStatus,
		status, after.Repo, string(after.Subject), string(after.Referrer), after.Index, n)
}

func (s *Store) attestRecords(ctx context.Context, op string, q *Query, args ...any) ([]storage.AttestRecord, error) {
	rows, err := s.rows(ctx, s.r, q, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []storage.AttestRecord
	for rows.Next() {
		var (
			r                             storage.AttestRecord
			referrer, subject, payload    string
			recorded, checked, superseded int64
		)
		err := rows.Scan(&r.Repo, &referrer, &r.Index, &r.Kind, &r.Format, &subject, &r.KeyID, &r.Algorithm,
			&r.PredicateType, &r.SigHash, &payload, &r.Status, &r.Reason, &recorded, &checked, &superseded, &r.Keyless)
		if err != nil {
			return nil, s.fail(op, err)
		}
		r.Referrer, r.Subject, r.PayloadDigest = digest.Digest(referrer), digest.Digest(subject), digest.Digest(payload)
		r.Recorded, r.Checked, r.Superseded = fromNanos(recorded), fromNanos(checked), fromNanos(superseded)
		out = append(out, r)
	}
	return out, s.fail(op, rows.Err())
}

func (s *Store) CreateTrustedRoot(ctx context.Context, r *storage.TrustedRoot, evs ...storage.Event) error {
	return s.writeRow(ctx, "create trusted root", fmt.Errorf("trusted root %q: %w", r.Name, storage.ErrConflict), evs,
		qCreateRoot, r.Name, string(r.JSON), r.Digest, nanos(r.Created))
}

func (s *Store) ListTrustedRoots(ctx context.Context) ([]*storage.TrustedRoot, error) {
	rows, err := s.rows(ctx, s.r, qListRoots)
	if err != nil {
		return nil, s.fail("list trusted roots", err)
	}
	defer rows.Close()
	var out []*storage.TrustedRoot
	for rows.Next() {
		var (
			r       storage.TrustedRoot
			body    string
			created int64
		)
		if err := rows.Scan(&r.Name, &body, &r.Digest, &created); err != nil {
			return nil, s.fail("list trusted roots", err)
		}
		r.JSON, r.Created = []byte(body), fromNanos(created)
		out = append(out, &r)
	}
	return out, s.fail("list trusted roots", rows.Err())
}

func (s *Store) DeleteTrustedRoot(ctx context.Context, name string, evs ...storage.Event) error {
	return s.writeRow(ctx, "delete trusted root", fmt.Errorf("trusted root %q: %w", name, storage.ErrNotFound), evs,
		qDeleteRoot, name)
}

const keyCols = `id, name, pem, algorithm, state, not_before, not_after, created, updated, usages`

const recordCols = `repo, referrer, idx, kind, format, subject, key_id, algorithm, predicate_type,
	sig_hash, payload_digest, status, reason, recorded, checked, superseded, keyless`

// attestBatch is how many subjects one AttestRecordsBySubjects query
// names: the default page of a listing.
const attestBatch = 100

// subjectList is a VALUES list of n placeholder pairs: (repo, subject),
// (name, version)...
func subjectList(n int) string {
	return "(VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + ")"
}

// maxSigHashMatches bounds the reuse lookup: one match is all it needs.
const maxSigHashMatches = 16

var (
	qCreateKey = query(`INSERT INTO attest_keys (` + keyCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	qGetKey   = query(`SELECT ` + keyCols + ` FROM attest_keys WHERE id = ?`)
	qListKeys = query(`SELECT ` + keyCols + ` FROM attest_keys ORDER BY created, id`)
	// Keys as qListKeys, then roots by name (as id, their digest as name).
	qListTrust = query(`SELECT 0, ` + keyCols + ` FROM attest_keys
		UNION ALL SELECT 1, name, digest, '', '', '', 0, 0, 0, 0, '' FROM attest_trusted_roots
		ORDER BY 1, 9, 2`)
	qUpdateKey = query(`UPDATE attest_keys SET state = ?, not_before = ?, not_after = ?, updated = ? WHERE id = ?`)

	qCreateRoot = query(`INSERT INTO attest_trusted_roots (name, body, digest, created) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	qListRoots  = query(`SELECT name, body, digest, created FROM attest_trusted_roots ORDER BY name`)
	qDeleteRoot = query(`DELETE FROM attest_trusted_roots WHERE name = ?`)

	qRecordedOf           = query(`SELECT idx, kind, recorded, superseded FROM attest_records WHERE repo = ? AND subject = ? AND referrer = ?`)
	qDeleteRecords        = query(`DELETE FROM attest_records WHERE repo = ? AND referrer = ?`)
	qDeleteSubjectRecords = query(`DELETE FROM attest_records WHERE repo = ? AND subject = ? AND referrer = ?`)
	// An upsert, not a plain insert: two checks of one referrer (the API's
	// and the push event's) may run at once, and on PostgreSQL the second
	// delete does not see the first one's rows. The recorded time of a row
	// that is there already stays.
	qInsertRecord = query(`INSERT INTO attest_records (` + recordCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo, subject, referrer, idx) DO UPDATE SET kind = excluded.kind, format = excluded.format,
			key_id = excluded.key_id, algorithm = excluded.algorithm,
			predicate_type = excluded.predicate_type, sig_hash = excluded.sig_hash,
			payload_digest = excluded.payload_digest, status = excluded.status, reason = excluded.reason,
			checked = excluded.checked, superseded = excluded.superseded, keyless = excluded.keyless`)
	qSupersede = query(`UPDATE attest_records SET superseded = ?
		WHERE repo = ? AND subject = ? AND kind = ? AND referrer <> ? AND superseded = 0`)
	qSupersedeFormat = query(`UPDATE attest_records SET superseded = ?
		WHERE repo = ? AND subject = ? AND kind = ? AND referrer <> ? AND superseded = 0 AND format = ?`)
	qUnsupersede = query(`UPDATE attest_records SET superseded = 0
		WHERE repo = ? AND subject = ? AND kind = ? AND referrer = ? AND superseded <> 0`)
	// Both walk the attest_records_current index (migration 8) from one
	// end: reading the current records never reads the superseded ones,
	// however many there are.
	qRecordsBySubject = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE repo = ? AND subject = ? AND superseded = 0 ORDER BY recorded, referrer, idx LIMIT ?`)
	qSupersededRecords = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE repo = ? AND subject = ? AND superseded > 0
		ORDER BY superseded DESC, recorded DESC, referrer DESC, idx DESC LIMIT ?`)
	// The numbering by subject keeps each list's order and cap per subject
	// (as qRecordsBySubject and qSupersededRecords); the subjects are looked
	// up through attest_records_subject.
	qRecordsBySubjects = query(`SELECT ` + recordCols + ` FROM (SELECT ` + recordCols + `,
			ROW_NUMBER() OVER (PARTITION BY repo, subject ORDER BY recorded, referrer, idx) AS nth
			FROM attest_records WHERE (repo, subject) IN ` + subjectList(attestBatch) + ` AND superseded = 0) AS r
		WHERE nth <= ? ORDER BY repo, subject, nth`)
	qSupersededBySubjects = query(`SELECT ` + recordCols + ` FROM (SELECT ` + recordCols + `,
			ROW_NUMBER() OVER (PARTITION BY repo, subject
				ORDER BY superseded DESC, recorded DESC, referrer DESC, idx DESC) AS nth
			FROM attest_records WHERE (repo, subject) IN ` + subjectList(attestBatch) + ` AND superseded > 0) AS r
		WHERE nth <= ? ORDER BY repo, subject, nth`)
	qRecordsByReferrer = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE repo = ? AND referrer = ? ORDER BY subject, idx LIMIT ?`)
	qRecordsByKey = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE key_id = ? ORDER BY recorded, repo, referrer, idx`)
	qRecordsBySig = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE sig_hash = ? LIMIT ` + fmt.Sprint(maxSigHashMatches))
	// Row values walk the (status, repo, subject, referrer, idx) index from the cursor.
	qRecordsWithStatus = query(`SELECT ` + recordCols + ` FROM attest_records
		WHERE status = ? AND (repo, subject, referrer, idx) > (?, ?, ?, ?)
		ORDER BY repo, subject, referrer, idx LIMIT ?`)
)
