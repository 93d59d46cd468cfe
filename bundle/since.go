package bundle

import (
	"context"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// An incremental bundle carries what changed after the previous bundle's
// cursor, a position in the audit trail: every change is a record there
// (a push, a tag move, a lifecycle change), numbered in the order it was
// appended. The export reads the head first and then the registry, so a
// change whose record is at or before the head is in what it reads, and a
// change it could not see has a record after the head: the next bundle
// carries it. (It may carry something twice, which an import skips.)

// The audit actions of the pack package an export reads (bundle does not
// import pack; conformance tests the two agree).
const (
	actionPackPublish   = "pack.publish"
	actionPackLifecycle = "pack.lifecycle"
)

type versionKey struct{ name, version string }

type subjectKey struct {
	repo    string
	subject digest.Digest
}

// changes is what the audit trail says changed after a cursor.
type changes struct {
	content map[versionKey]bool // a version tag moved, or the version was published
	state   map[versionKey]bool // its lifecycle changed
	// referrers pushed about a manifest: by subject, or by cosign tag.
	refs map[subjectKey][]Referrer
}

// scanChanges reads the records after position after, up to upto.
func scanChanges(ctx context.Context, log storage.AuditLog, after, upto int64) (*changes, error) {
	c := &changes{content: map[versionKey]bool{}, state: map[versionKey]bool{}, refs: map[subjectKey][]Referrer{}}
	const page = 1000
	for after < upto {
		recs, err := log.ScanAudit(ctx, after, page)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			r := &recs[i]
			if r.ID > upto {
				return c, nil
			}
			c.note(r)
			after = r.ID
		}
		if len(recs) < page {
			break
		}
	}
	return c, nil
}

func (c *changes) note(r *storage.AuditRecord) {
	repo, tag, tagged := strings.Cut(r.Target, ":")
	switch {
	case r.Action == registry.ActionManifestPush && r.Details["subject"] != "":
		if s, err := digest.Parse(r.Details["subject"]); err == nil && r.Digest != "" {
			k := subjectKey{repo, s}
			c.refs[k] = append(c.refs[k], Referrer{Digest: r.Digest})
		}
	case !tagged:
	case semver.Valid(tag) && (r.Action == registry.ActionTagMove || r.Action == actionPackPublish):
		c.content[versionKey{repo, tag}] = true
	case semver.Valid(tag) && r.Action == actionPackLifecycle:
		c.state[versionKey{repo, tag}] = true
	case r.Action == registry.ActionTagMove && r.Digest != "":
		if s, _, ok := oci.ParseCosignTag(tag); ok {
			k := subjectKey{repo, s}
			c.refs[k] = append(c.refs[k], Referrer{Digest: r.Digest, Tag: tag})
		}
	}
}

// newReferrers returns the referrers pushed after the cursor about
// version digest d of repo, or about one of its referrers (a signature of
// an SBOM), however deep (up to maxNesting), following subjects upwards.
func (c *changes) newReferrers(ctx context.Context, reg manifestReader, repo string, d digest.Digest, memo map[subjectKey]digest.Digest) []Referrer {
	var out []Referrer
	for k, refs := range c.refs {
		if k.repo != repo || rootOf(ctx, reg, k, memo) != d {
			continue
		}
		out = append(out, refs...)
	}
	return out
}

// manifestReader is what resolving a subject upwards needs of the registry.
type manifestReader interface {
	Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, error)
}

// rootOf follows k's subject upwards while it is a referrer itself, and
// returns the manifest at the top (memoised per subject).
func rootOf(ctx context.Context, reg manifestReader, k subjectKey, memo map[subjectKey]digest.Digest) digest.Digest {
	if r, ok := memo[k]; ok {
		return r
	}
	cur := k.subject
	for range maxNesting {
		m, err := reg.Manifest(ctx, k.repo, cur.String())
		if err != nil || m.Subject == "" {
			break
		}
		cur = m.Subject
	}
	memo[k] = cur
	return cur
}
