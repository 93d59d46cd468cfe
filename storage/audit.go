package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/packreg/packreg/digest"
)

// AuditRecord is one entry of the audit trail: who did what to which
// object, when. Records form a hash chain: each carries the hash of the
// record before it and a hash over its own fields, so an edited, inserted or
// deleted row breaks the chain where it happened.
type AuditRecord struct {
	// ID is assigned by the store when the record is appended: 1, 2, 3...
	// without gaps, so a deleted row leaves a hole VerifyAudit can name.
	ID     int64
	At     time.Time // set by the store when zero
	Actor  string    // the authenticated user, or "anonymous@<address>"
	Action string    // "manifest.push", "pack.lifecycle", ...
	Target string    // "repo", "repo:tag" or a config section
	Digest digest.Digest
	// Details are small facts about the change (media type, old and new
	// state...). They are hashed in their canonical JSON form.
	Details  map[string]string
	PrevHash string // Hash of record ID-1; "" for the first record
	Hash     string // AuditHash of this record
}

// AuditQuery selects audit records, newest first. Empty fields do not filter.
type AuditQuery struct {
	Since        time.Time // records at or after Since
	Action       string    // exact action
	TargetPrefix string
	// Before is a keyset cursor: only records with ID < Before. Zero: from
	// the newest.
	Before int64
	Limit  int // <= 0 means no limit
}

// AuditHead is the end of the chain as the store last extended it.
type AuditHead struct {
	ID   int64  // the last ID handed out; 0 when the trail is empty
	Hash string // that record's hash
}

// AuditLog is the append-only audit trail.
type AuditLog interface {
	// AppendAudit appends recs in order, in one transaction that reads and
	// extends the chain head under a lock, so concurrent appends (from
	// several replicas too) stay one chain. It fills ID, At (when zero),
	// PrevHash and Hash.
	AppendAudit(ctx context.Context, recs ...*AuditRecord) error
	// AppendAuditIfChanged appends rec like AppendAudit unless the newest
	// record with rec's Action and Target has the same Details, and
	// reports whether it appended. It reads that record after taking the
	// chain head's lock, in the transaction that appends: of replicas
	// starting at once with one changed configuration, exactly one
	// records the change.
	AppendAuditIfChanged(ctx context.Context, rec *AuditRecord) (bool, error)
	// ListAudit returns records matching q, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// ScanAudit returns up to n records with ID > after, oldest first,
	// exactly as stored: what VerifyAudit walks.
	ScanAudit(ctx context.Context, after int64, n int) ([]AuditRecord, error)
	// AuditHead returns the chain head.
	AuditHead(ctx context.Context) (AuditHead, error)
}

// AuditDetailsJSON is the canonical form of details: a JSON object with
// sorted keys (encoding/json sorts map keys), "{}" when empty. It is both
// what the SQL stores and what AuditHash covers.
func AuditDetailsJSON(details map[string]string) string {
	if len(details) == 0 {
		return "{}"
	}
	b, err := json.Marshal(details)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return string(b)
}

// AuditHash is the hash of r over its canonical fields: ID, At (Unix
// nanoseconds), Actor, Action, Target, Digest, the canonical details and
// PrevHash. Each field is length-prefixed, so no two different records
// share an encoding.
func AuditHash(r *AuditRecord) string {
	return AuditHashDetails(r, AuditDetailsJSON(r.Details))
}

// AuditHashDetails is AuditHash for a writer that has r's details in
// their canonical JSON already (AuditDetailsJSON of r.Details), so it
// encodes them once for the hash, the row and the event.
func AuditHashDetails(r *AuditRecord, details string) string {
	h := sha256.New()
	buf := []byte("packreg-audit-v1\n")
	buf = strconv.AppendInt(buf, r.ID, 10)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, r.At.UnixNano(), 10)
	buf = append(buf, '\n')
	for _, f := range []string{r.Actor, r.Action, r.Target, string(r.Digest), details, r.PrevHash} {
		buf = strconv.AppendInt(buf, int64(len(f)), 10)
		buf = append(buf, ':')
		buf = append(buf, f...)
		buf = append(buf, '\n')
	}
	h.Write(buf)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// AuditVerification is the outcome of VerifyAudit.
type AuditVerification struct {
	OK      bool
	Records int64 // records checked (up to the first break)
	Head    AuditHead
	// FirstBroken is the ID of the first record that is missing, edited or
	// out of chain; 0 when OK.
	FirstBroken int64
	Reason      string
}

// VerifyAudit walks the whole trail from the first record, recomputing
// every hash, and reports the first break: a gap in the IDs (a deleted
// row), a record whose hash does not match its fields (an edited row), a
// record whose PrevHash is not its predecessor's hash, or a trail that ends
// before the head (deleted rows at the end).
//
// It detects changes made without recomputing the chain. Someone who can
// write the database can rewrite the chain from the edit onwards; only a
// copy of the head kept elsewhere detects that.
func VerifyAudit(ctx context.Context, log AuditLog) (AuditVerification, error) {
	const page = 1000
	var v AuditVerification
	head, err := log.AuditHead(ctx)
	if err != nil {
		return v, err
	}
	v.Head = head
	broken := func(id int64, format string, args ...any) (AuditVerification, error) {
		v.FirstBroken, v.Reason = id, fmt.Sprintf(format, args...)
		return v, nil
	}
	var last AuditRecord // ID 0, Hash "": what record 1 follows
	for {
		recs, err := log.ScanAudit(ctx, last.ID, page)
		if err != nil {
			return v, err
		}
		for i := range recs {
			r := &recs[i]
			switch {
			case r.ID != last.ID+1:
				return broken(last.ID+1, "record %d is missing (deleted): record %d follows record %d", last.ID+1, r.ID, last.ID)
			case r.PrevHash != last.Hash:
				return broken(r.ID, "record %d does not follow record %d: its previous hash %q is not %q", r.ID, last.ID, clipHash(r.PrevHash), clipHash(last.Hash))
			case AuditHash(r) != r.Hash:
				return broken(r.ID, "record %d was changed after it was written: its fields no longer match its hash", r.ID)
			}
			last = *r
			v.Records++
		}
		if len(recs) < page {
			break
		}
	}
	switch {
	case head.ID > last.ID:
		return broken(last.ID+1, "the trail ends at record %d but the head says %d records were written: record %d and later are missing", last.ID, head.ID, last.ID+1)
	case head.ID < last.ID:
		return broken(head.ID+1, "record %d is past the chain head (record %d): it was not appended through the log", head.ID+1, head.ID)
	case head.Hash != last.Hash:
		return broken(last.ID, "record %d does not match the chain head's hash %q", last.ID, clipHash(head.Hash))
	}
	v.OK = true
	return v, nil
}

func clipHash(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}
