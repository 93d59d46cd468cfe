package sqlmeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// PutManifest is one transaction: repository, manifest (kept when already
// there), tags and their claims, and the events of the change. Each tag
// is an upsert on the (repo_id, name) primary key, so its cost does not
// grow with the number of tags.
//
// Claims come after the tags on purpose: writing a tag row locks it
// (PostgreSQL: a concurrent writer of the same tag waits for this
// transaction to end), so by the time a claim is read, a concurrent put of
// the same tag has committed its claim or rolled back. Under SQLite writes
// are serial anyway. Exactly one of concurrent binds wins.
func (s *Store) PutManifest(ctx context.Context, m *storage.Manifest, tags []string, o storage.PutManifestOptions) error {
	ann, err := encodeAnnotations(m.Annotations)
	if err != nil {
		return err
	}
	refs := make([]string, len(m.Refs))
	for i, r := range m.Refs {
		refs[i] = string(r)
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	now := time.Now().UnixNano()
	created := nanos(m.Created)
	if created == 0 {
		created = now
	}
	// Sorted, so concurrent puts touching the same tags lock them in the same
	// order and cannot deadlock (Postgres).
	tags = slices.Clone(tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)
	claims := slices.Clone(o.Claims)
	slices.SortFunc(claims, func(a, b storage.TagClaim) int { return strings.Compare(a.Tag, b.Tag) })
	for _, c := range claims {
		if _, ok := slices.BinarySearch(tags, c.Tag); !ok {
			return fmt.Errorf("sqlmeta: claim of tag %q, which the put does not write", c.Tag)
		}
	}
	for _, w := range o.TagWas {
		if _, ok := slices.BinarySearch(tags, w.Tag); !ok {
			return fmt.Errorf("sqlmeta: condition on tag %q, which the put does not write", w.Tag)
		}
	}
	joined := strings.Join(refs, "\n")
	if done, err := s.putManifestOne(ctx, m, tags, o, payload, ann, joined, created, now); done {
		return err
	}
	var evs []storage.Event
	var id int64
	err = s.writeQueued(ctx, "put manifest", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		var err error
		if id, err = s.ensureRepo(ctx, tx, m.Repo); err != nil {
			return err
		}
		if err := s.lockPresent(ctx, tx, id, m, o); err != nil {
			return err
		}
		// The first push of a digest to a repository fixes its created time.
		if err := s.putManifestRow(ctx, tx, id, m, payload, ann, joined, created, now); err != nil {
			return err
		}
		// Conditional writes first: each locks its tag's row (or its
		// absence) until the commit, so the condition holds at the commit.
		for _, w := range o.TagWas {
			q, args := qMoveTagFrom, []any{string(m.Digest), now, id, w.Tag, string(w.Digest)}
			if w.Digest == "" {
				q, args = qInsertTag, []any{id, w.Tag, string(m.Digest), now}
			}
			n, err := s.exec(ctx, tx, q, args...)
			if err != nil {
				return err
			}
			if n == 0 {
				return &storage.TagMovedError{Repo: m.Repo, Tag: w.Tag, Want: w.Digest}
			}
		}
		// The last tag's upsert goes in the statement that queues the
		// events (tagQueue), where nothing was to come between them: no
		// claims (they come after the tags), no index changes (before
		// the events).
		led := s.tagQueue != nil && len(tags) > 0 && len(claims) == 0 &&
			len(o.Index.Puts) == 0 && len(o.Index.Deletes) == 0
		own := tags
		if led {
			own = tags[:len(tags)-1]
		}
		for _, tag := range own {
			_, err := s.exec(ctx, tx, qUpsertTag,
				id, tag, string(m.Digest), now)
			if err != nil {
				return err
			}
		}
		if led {
			return s.recordEventsLed(ctx, tx, s.tagQueue, []any{id, tags[len(tags)-1], string(m.Digest), now}, o.Events, queued)
		}
		for _, c := range claims {
			if err := s.claim(ctx, tx, m.Repo, c, m.Digest, now); err != nil {
				return err
			}
		}
		return s.recordWith(ctx, tx, o.Events, o.Index, &evs, queued)
	})
	return s.repos.remember(err, m.Repo, id)
}

// putManifestRow writes m's row in repository id, its created time the
// first push's (firstPushCreated).
func (s *Store) putManifestRow(ctx context.Context, tx *sql.Tx, id int64, m *storage.Manifest, payload []byte, ann any, refs string, created, now int64) error {
	_, err := s.exec(ctx, tx, qPutManifest, manifestArgs(id, m, payload, ann, refs, created, now)...)
	return err
}

// manifestArgs are the arguments of qPutManifest, and of the manifest's
// row in a one-statement put, in manifestValues' order.
func manifestArgs(id int64, m *storage.Manifest, payload []byte, ann any, refs string, created, now int64) []any {
	return []any{id, string(m.Digest), m.MediaType, m.ArtifactType, m.Size, payload,
		string(m.Subject), ann, refs, m.IndexDepth,
		m.Repo, string(m.Digest), id, string(m.Digest), created, now}
}

// deleteManifestRow deletes the row of d in repository id (locked by the
// caller), its first push kept for a re-push (firstPushCreated).
func (s *Store) deleteManifestRow(ctx context.Context, tx *sql.Tx, id int64, d digest.Digest) error {
	if _, err := s.exec(ctx, tx, qKeepFirstPush, id, string(d)); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, qDeleteManifest, id, string(d))
	return err
}

// lockPresent makes sure each of o.Present is a blob linked into, or a
// manifest stored in, repository id, and locks its row until the commit
// (FOR SHARE): a collector's sweep locks the row it deletes FOR UPDATE, so
// one of the two waits for the other and then sees what it did. Under
// SQLite writes are serial. With o.CheckPresent, what it found is the
// check's to judge.
//
// An index's references are looked up among the manifests first, any
// other's among the blobs, up to presentRows per statement (a round trip
// each on PostgreSQL, where a read per reference was most of a PUT's
// transaction), then what is missing in the other table.
func (s *Store) lockPresent(ctx context.Context, tx *sql.Tx, id int64, m *storage.Manifest, o storage.PutManifestOptions) error {
	_, err := s.present(ctx, tx, true, id, m, o)
	return err
}

// present is lockPresent on any querier, locking the rows it finds only
// when lock is set (then on is a transaction), and returning them.
func (s *Store) present(ctx context.Context, on querier, lock bool, id int64, m *storage.Manifest, o storage.PutManifestOptions) (map[digest.Digest]storage.PresentRef, error) {
	if len(o.Present) == 0 && o.CheckPresent == nil {
		return nil, nil
	}
	ds := slices.Clone(o.Present)
	slices.Sort(ds) // one lock order for every put
	missing := slices.Compact(ds)
	found := make(map[digest.Digest]storage.PresentRef, len(missing))
	kinds := []bool{false, true} // blobs, then manifests
	if oci.IsIndex(m.MediaType) {
		kinds = []bool{true, false}
	}
	for _, manifests := range kinds {
		if len(missing) == 0 {
			break
		}
		var err error
		if missing, err = s.lockRows(ctx, on, lock, manifests, id, missing, found); err != nil {
			return nil, err
		}
	}
	if o.CheckPresent == nil {
		if len(missing) > 0 {
			return nil, &storage.RefGoneError{Repo: m.Repo, Digest: missing[0]}
		}
		return found, nil
	}
	refs := make([]storage.PresentRef, len(o.Present))
	for i, d := range o.Present {
		r, ok := found[d]
		if !ok {
			r = storage.PresentRef{Digest: d, Size: -1}
		}
		refs[i] = r
	}
	return found, o.CheckPresent(refs)
}

// lockRows looks ds (sorted) up among the blobs of repository id, or its
// manifests, in chunks, locking the rows when lock is set, adds what it
// finds to found, and returns those of ds it found no row of, in order.
func (s *Store) lockRows(ctx context.Context, on querier, lock, manifests bool, id int64, ds []digest.Digest, found map[digest.Digest]storage.PresentRef) ([]digest.Digest, error) {
	qs := qPresentBlobs[lockIdx(lock)]
	if manifests {
		qs = qPresentManifests[lockIdx(lock)]
	}
	var missing []digest.Digest
	for chunk := range slices.Chunk(ds, presentRows) {
		rows, err := s.rows(ctx, on, qs[len(chunk)-1], digestArgs(id, chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				d string
				r = storage.PresentRef{Manifest: manifests}
			)
			if err := rows.Scan(&d, &r.Size, &r.IndexDepth); err != nil {
				rows.Close()
				return nil, err
			}
			r.Digest = digest.Digest(d)
			found[r.Digest] = r
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, err
		}
		for _, d := range chunk {
			if _, ok := found[d]; !ok {
				missing = append(missing, d)
			}
		}
	}
	return missing, nil
}

// presentQueries is the lookups of lockRows from sel, for 1 to
// presentRows digests, without row locks and with (lockIdx).
func presentQueries(sel string) [2][]*Query {
	var out [2][]*Query
	for i, lock := range []string{"", "{{forshare}}"} {
		out[i] = queriesUpTo(presentRows, func(n int) string {
			return sel + ` WHERE repo_id = ? AND digest IN ` + inDigests(n) + ` ORDER BY digest` + lock
		})
	}
	return out
}

// lockIdx is the index of presentQueries' locking statements when lock.
func lockIdx(lock bool) int {
	if lock {
		return 1
	}
	return 0
}

// presentRows is how many references one statement of lockPresent looks
// up: an image manifest's config and its few layers in one.
const presentRows = 8

// digestArgs is first, then ds, as the arguments of a statement.
func digestArgs(first any, ds []digest.Digest) []any {
	args := make([]any, 0, len(ds)+1)
	args = append(args, first)
	for _, d := range ds {
		args = append(args, string(d))
	}
	return args
}

// inDigests is a list of n placeholders for `digest IN (...)`.
func inDigests(n int) string { return "(?" + strings.Repeat(", ?", n-1) + ")" }

// recordWith applies the index changes of a registry write and records
// its events, then those of the index changes, setting *all to every
// event recorded and *queued as recordEvents does (for committed): a
// retried transaction starts over.
func (s *Store) recordWith(ctx context.Context, tx *sql.Tx, evs []storage.Event, ix storage.IndexChanges, all *[]storage.Event, queued *queuedRows) error {
	more, err := s.applyIndex(ctx, tx, ix)
	if err != nil {
		return err
	}
	*all = append(slices.Clip(evs), more...)
	return s.recordEvents(ctx, tx, *all, queued)
}

// claim applies one TagClaim inside PutManifest's transaction.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, repo string, c storage.TagClaim, d digest.Digest, now int64) error {
	switch c.Mode {
	case storage.ClaimRebind:
		_, err := s.exec(ctx, tx, qRebindClaim, repo, c.Tag, string(d), now)
		return err
	case storage.ClaimBind:
		// DO NOTHING when claimed: the read below says by whom.
		if _, err := s.exec(ctx, tx, qBindClaim, repo, c.Tag, string(d), now); err != nil {
			return err
		}
	case storage.ClaimCheck:
	default:
		return fmt.Errorf("sqlmeta: claim of tag %q: unknown mode %d", c.Tag, c.Mode)
	}
	var held string
	err := s.row(ctx, tx, qClaimedDigest, repo, c.Tag).Scan(&held)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // ClaimCheck of a free tag
	case err != nil:
		return err
	case held != string(d):
		return &storage.ClaimError{Repo: repo, Tag: c.Tag, Claimed: digest.Digest(held)}
	}
	return nil
}

func (s *Store) ClaimedDigest(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.row(ctx, s.r, qClaimedDigest, repo, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("claim of tag %s in %s: %w", tag, repo, storage.ErrNotFound)
	}
	return digest.Digest(d), s.fail("claimed digest", err)
}

func (s *Store) GetManifest(ctx context.Context, repo string, d digest.Digest) (*storage.Manifest, error) {
	m := &storage.Manifest{Repo: repo, Digest: d}
	err := s.scanManifest(s.row(s.pointCtx(ctx), s.r, qGetManifest, repo, string(d)), m, nil)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("manifest %s in %s: %w", d, repo, storage.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("get manifest", err)
	}
	return m, nil
}

// GetTaggedManifest is ResolveTag and GetManifest in one query: a read
// transaction is most of the cost of a pull by tag (on SQLite, each one
// takes and drops the WAL's shared-memory locks with fcntl calls).
func (s *Store) GetTaggedManifest(ctx context.Context, repo, tag string) (*storage.Manifest, error) {
	m := &storage.Manifest{Repo: repo}
	var d string
	err := s.scanManifest(s.row(s.pointCtx(ctx), s.r, qGetTaggedManifest, repo, tag), m, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tag %s in %s: %w", tag, repo, storage.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("get tagged manifest", err)
	}
	m.Digest = digest.Digest(d)
	return m, nil
}

// GetManifestBody reads four columns (qGetTaggedBody, qGetManifestBody):
// the pull by tag or digest over HTTP. With Options.BodyCache a repeated
// pull reads nothing, and its Payload is shared: callers only read it.
func (s *Store) GetManifestBody(ctx context.Context, repo, tag string, d digest.Digest) (*storage.Manifest, error) {
	q, key := qGetManifestBody, string(d)
	if tag != "" {
		q, key = qGetTaggedBody, tag
	}
	var gen uint64
	ck := bodyKey{repo, tag, string(d)}
	if s.bodies != nil {
		var m *storage.Manifest
		if m, gen = s.bodies.get(ck); m != nil {
			return m, nil
		}
	}
	m := &storage.Manifest{Repo: repo}
	var got string
	err := s.row(s.pointCtx(ctx), s.r, q, repo, key).Scan(&got, &m.MediaType, &m.Size, &m.Payload)
	if errors.Is(err, sql.ErrNoRows) {
		if tag != "" {
			return nil, fmt.Errorf("tag %s in %s: %w", tag, repo, storage.ErrNotFound)
		}
		return nil, fmt.Errorf("manifest %s in %s: %w", d, repo, storage.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("get manifest body", err)
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.Digest = digest.Digest(got)
	if s.bodies != nil {
		s.bodies.put(ck, gen, m)
	}
	return m, nil
}

// scanManifest reads the columns of qGetManifest into m, after the digest
// when d is not nil (qGetTaggedManifest).
func (s *Store) scanManifest(row *sql.Row, m *storage.Manifest, d *string) error {
	var (
		subject, refs string
		ann           sql.NullString
		created       int64
	)
	dst := []any{&m.MediaType, &m.ArtifactType, &m.Size, &m.Payload, &subject, &ann, &refs, &m.IndexDepth, &created}
	if d != nil {
		dst = append([]any{d}, dst...)
	}
	if err := row.Scan(dst...); err != nil {
		return err
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.Subject = digest.Digest(subject)
	m.Created = fromNanos(created)
	if refs != "" {
		for r := range strings.SplitSeq(refs, "\n") {
			m.Refs = append(m.Refs, digest.Digest(r))
		}
	}
	var err error
	m.Annotations, err = decodeAnnotations(ann)
	return err
}

func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest, o storage.DeleteOptions) error {
	var evs []storage.Event
	return s.writeQueued(ctx, "delete manifest", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		id, err := s.repoID(ctx, tx, repo)
		if err != nil {
			return err
		}
		// The manifest's row locked first: a put of a tag of it writes
		// that row before its tag, so a put under way has committed when
		// the tags are read, and one that comes later waits for the
		// delete, then writes the manifest anew. PostgreSQL has no
		// foreign key from tags to refuse a tag left behind (its
		// Dialect.Steps: migration 21).
		var pushed int64
		var subject string
		err = s.row(ctx, tx, qGCLockManifest, id, string(d)).Scan(&pushed, &subject)
		if errors.Is(err, sql.ErrNoRows) {
			err = fmt.Errorf("manifest %s in %s: %w", d, repo, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Tags first: SQLite's foreign key forbids a tag without its
		// manifest.
		if _, err := s.exec(ctx, tx, qDeleteTagsOf, id, string(d)); err != nil {
			return err
		}
		if err := s.deleteManifestRow(ctx, tx, id, d); err != nil {
			return err
		}
		return s.recordWith(ctx, tx, o.Events, o.Index, &evs, queued)
	})
}

// Referrers reads the (repo_id, subject, artifact_type, digest) index,
// which holds only manifests with a subject (migration 18): its queries
// repeat the index's condition so that the planner may use it. The
// subject is a plain column, not a foreign key: a referrer may be pushed
// before its subject, and the OCI spec wants it listed.
func (s *Store) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]oci.Descriptor, error) {
	if subject == "" {
		return nil, nil
	}
	q, args := qReferrers, []any{repo, string(subject)}
	if artifactType != "" {
		q, args = qReferrersOfType, append(args, artifactType)
	}
	rows, err := s.rows(ctx, s.r, q, args...)
	if err != nil {
		return nil, s.fail("referrers", err)
	}
	defer rows.Close()
	var out []oci.Descriptor
	for rows.Next() {
		var (
			desc oci.Descriptor
			ann  sql.NullString
		)
		if err := rows.Scan(&desc.MediaType, &desc.Digest, &desc.Size, &desc.ArtifactType, &ann); err != nil {
			return nil, s.fail("referrers", err)
		}
		if desc.Annotations, err = decodeAnnotations(ann); err != nil {
			return nil, s.fail("referrers", err)
		}
		out = append(out, desc)
	}
	return out, s.fail("referrers", rows.Err())
}

func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.row(s.pointCtx(ctx), s.r, qResolveTag, repo, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("tag %s in %s: %w", tag, repo, storage.ErrNotFound)
	}
	return digest.Digest(d), s.fail("resolve tag", err)
}

// ListTags is a keyset page over the (repo_id, name) primary key: cost
// depends on n, not on the number of tags or how deep the page is. The
// page is ListTagsJoined's one row, split; when that row cannot be
// trusted it is read again, a row per name.
func (s *Store) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	joined, count, ok, err := s.ListTagsJoined(ctx, repo, last, n)
	switch {
	case err != nil:
		return nil, err
	case ok && count == 0:
		return []string{}, nil
	case ok:
		return strings.Split(joined, storage.TagSeparator), nil
	}
	rows, err := s.rows(s.pointCtx(ctx), s.r, qListTags, repo, last, n)
	if err != nil {
		return nil, s.fail("list tags", err)
	}
	tags, err := scanStrings(rows, n)
	return tags, s.fail("list tags", err)
}

// ListTagsJoined reads the page as one row, its names joined by
// storage.TagSeparator (qListTagsJoined): a row per name cost more than
// the names themselves (the driver's per-row step and per-column calls,
// each under the connection's mutex, were half of a 1,000-tag listing's
// CPU). The row also counts the names. Neither database promises that an
// aggregate keeps the order of its ordered subquery, and an ORDER BY
// inside the aggregate sorts the page again (SQLite: a B-tree insert per
// name), so the order is checked here instead; should a name contain the
// separator, the count tells. Either way ok is false. Where the database
// copies a subquery's rows (Dialect.CopiesSubqueryRows) the same one row
// comes from qListTagsRange.
func (s *Store) ListTagsJoined(ctx context.Context, repo, last string, n int) (joined string, count int, ok bool, err error) {
	if n <= 0 {
		return "", 0, true, nil
	}
	ctx = s.pointCtx(ctx)
	var (
		agg sql.NullString
		row *sql.Row
	)
	if s.d.CopiesSubqueryRows {
		row = s.row(ctx, s.r, qListTagsRange, repo, last, repo, last, n-1, repo)
	} else {
		row = s.row(ctx, s.r, qListTagsJoined, repo, last, n)
	}
	if err := row.Scan(&count, &agg); err != nil {
		return "", 0, false, s.fail("list tags", err)
	}
	if count == 0 {
		return "", 0, true, nil
	}
	return agg.String, count, joinedAscending(agg.String, count), nil
}

// joinedAscending reports whether joined is count names in strictly
// increasing byte order, without a slice of them.
func joinedAscending(joined string, count int) bool {
	prev, rest := "", joined
	for i := 1; ; i++ {
		name, after, more := strings.Cut(rest, storage.TagSeparator)
		if i > 1 && name <= prev {
			return false
		}
		if !more {
			return i == count
		}
		prev, rest = name, after
	}
}

func (s *Store) DeleteTag(ctx context.Context, repo, tag string, o storage.DeleteOptions) error {
	var evs []storage.Event
	return s.writeQueued(ctx, "delete tag", func(ctx context.Context, tx *sql.Tx, queued *queuedRows) error {
		n, err := s.exec(ctx, tx, qDeleteTag, repo, tag)
		if err == nil && n == 0 {
			err = fmt.Errorf("tag %s in %s: %w", tag, repo, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return s.recordWith(ctx, tx, o.Events, o.Index, &evs, queued)
	})
}

// Annotations are stored as a JSON object, NULL when there are none.
func encodeAnnotations(a map[string]string) (any, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: encode annotations: %w", err)
	}
	return string(b), nil
}

func decodeAnnotations(s sql.NullString) (map[string]string, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal([]byte(s.String), &a); err != nil {
		return nil, fmt.Errorf("decode annotations: %w", err)
	}
	return a, nil
}

const (
	manifestColumns = `(repo_id, digest, media_type, artifact_type, size, payload, subject, annotations, refs, index_depth, created, pushed)`
	// When each digest was first pushed to each repository outlives its
	// row: a re-push takes its created time from the first push, so a
	// signing window does not open again. A row deleted leaves its time
	// in manifest_first_push (qKeepFirstPush); a put writes there nothing,
	// where recording every push's was a row and an index entry more per
	// PUT. A row this statement's snapshot still sees is one a delete
	// under way is removing (the insert waits for it, then inserts): its
	// created time is the first push's, and the delete's record is not
	// visible yet.
	firstPushCreated = `COALESCE((SELECT at FROM manifest_first_push WHERE repo = ? AND digest = ?),
			(SELECT created FROM manifests WHERE repo_id = ? AND digest = ?), ?)`
	// manifestValues are the values of manifestColumns: qPutManifest's
	// arguments (manifestArgs).
	manifestValues = `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` + firstPushCreated + `, ?`
	// A manifest pushed again keeps its row and its created time.
	manifestConflict = `ON CONFLICT (repo_id, digest) DO UPDATE SET pushed = excluded.pushed`
	tagsInsert       = `INSERT INTO tags (repo_id, name, digest, updated) `
	tagUpsert        = `ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`
)

var (
	qPutManifest = query(`INSERT INTO manifests ` + manifestColumns + `
			VALUES (` + manifestValues + `) ` + manifestConflict)
	// The put's Present digests, locked against a collector's sweep, with
	// what its CheckPresent compares (size, a manifest's depth). In digest
	// order, which is the order their rows are locked in.
	// Without the lock, then with it (lockIdx): putManifestOne reads
	// them first without.
	qPresentBlobs     = presentQueries(`SELECT digest, size, 0 FROM blobs`)
	qPresentManifests = presentQueries(`SELECT digest, size, index_depth FROM manifests`)
	qBindClaim        = query(`INSERT INTO tag_claims (repo, tag, digest, claimed) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, tag) DO NOTHING`)
	qRebindClaim = query(`INSERT INTO tag_claims (repo, tag, digest, claimed) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, claimed = excluded.claimed`)
	qClaimedDigest = query(`SELECT digest FROM tag_claims WHERE repo = ? AND tag = ?`)
	qUpsertTag     = query(tagsInsert + `VALUES (?, ?, ?, ?)
				` + tagUpsert)
	qInsertTag = query(`INSERT INTO tags (repo_id, name, digest, updated) VALUES (?, ?, ?, ?)
				ON CONFLICT (repo_id, name) DO NOTHING`)
	qMoveTagFrom = query(`UPDATE tags SET digest = ?, updated = ? WHERE repo_id = ? AND name = ? AND digest = ?`)
	qGetManifest = query(`SELECT m.media_type, m.artifact_type, m.size, m.payload, m.subject,
			m.annotations, m.refs, m.index_depth, m.created
		FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.digest = ?`)
	qGetTaggedManifest = query(`SELECT m.digest, m.media_type, m.artifact_type, m.size, m.payload, m.subject,
			m.annotations, m.refs, m.index_depth, m.created
		FROM tags t JOIN repositories r ON r.id = t.repo_id
			JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		WHERE r.name = ? AND t.name = ?`)
	qGetManifestBody = query(`SELECT m.digest, m.media_type, m.size, m.payload
		FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.digest = ?`)
	qGetTaggedBody = query(`SELECT m.digest, m.media_type, m.size, m.payload
		FROM tags t JOIN repositories r ON r.id = t.repo_id
			JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		WHERE r.name = ? AND t.name = ?`)
	qDeleteTagsOf   = query(`DELETE FROM tags WHERE repo_id = ? AND digest = ?`)
	qDeleteManifest = query(`DELETE FROM manifests WHERE repo_id = ? AND digest = ?`)
	// The first push of a manifest about to be deleted (firstPushCreated);
	// an earlier one recorded stays.
	qKeepFirstPush = query(`INSERT INTO manifest_first_push (repo, digest, at)
		SELECT r.name, m.digest, m.created FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE m.repo_id = ? AND m.digest = ?
		ON CONFLICT (repo, digest) DO NOTHING`)
	qResolveTag = query(`SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
		WHERE r.name = ? AND t.name = ?`)
	qListTags = query(`SELECT name FROM tags
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name > ?
		ORDER BY name LIMIT ?`)
	// string_agg: SQLite 3.44 and later, PostgreSQL. The separator is
	// a literal: a bound one, not NUL-terminated, was copied for every
	// name on SQLite.
	qListTagsJoined = query(`SELECT count(*), string_agg(name, '` + storage.TagSeparator + `') FROM (SELECT name FROM tags
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name > ?
		ORDER BY name LIMIT ?) page`)
	// The same page from the range (last, the n-th name after it], or up
	// to the repository's greatest name (an index seek) when fewer
	// follow. Arguments: repo, last, repo, last, n-1, repo.
	qListTagsRange = query(`SELECT count(*), string_agg(name, '` + storage.TagSeparator + `') FROM tags
		WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name > ?
		AND name <= coalesce(
			(SELECT name FROM tags WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name > ?
				ORDER BY name LIMIT 1 OFFSET ?),
			(SELECT max(name) FROM tags WHERE repo_id = (SELECT id FROM repositories WHERE name = ?)))`)
	qDeleteTag = query(`DELETE FROM tags
			WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?`)
	// Ordered by an expression of the digest, not the column: SQLite
	// (no statistics) otherwise walks the primary key (repo_id, digest)
	// for the order, reading every manifest of the repository, instead of
	// sorting the subject's few referrers found in manifests_subject.
	qReferrers = query(`SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations FROM manifests m
		WHERE m.repo_id = (SELECT id FROM repositories WHERE name = ?) AND m.subject = ? AND m.subject <> ''
		ORDER BY m.digest || ''`)
	qReferrersOfType = query(`SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations FROM manifests m
		WHERE m.repo_id = (SELECT id FROM repositories WHERE name = ?) AND m.subject = ? AND m.subject <> '' AND m.artifact_type = ?
		ORDER BY m.digest`)
)
