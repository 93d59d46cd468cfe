package compliance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Evidence is what attest recorded about one manifest, judged by the keys,
// roots and identities as they are now: attest's verdict word, the
// predicate types with a verified attestation, and when the newest
// verified signature or attestation was recorded.
type Evidence struct {
	Verification string
	Attestations []string
	Newest       time.Time
}

// Verifier gives the evidence about manifest d of repo. cmd adapts
// attest's report to it: compliance reads attest's records through it
// and never verifies anything itself.
type Verifier interface {
	Evidence(ctx context.Context, repo string, d digest.Digest) (Evidence, error)
}

// BatchVerifier is an optional Verifier ability: the evidence about each
// of vs's manifests, in order, at once (what every verdict shares is read
// once per batch, not once per version).
type BatchVerifier interface {
	EvidenceMany(ctx context.Context, vs []storage.PackVersion) ([]Evidence, error)
}

// Finding statuses.
const (
	Pass = "pass"
	Fail = "fail"
)

// paritySet is what the latest parity check of each mirror a rule names
// found: mirror name → "name:version" → entry status. A mirror without a
// check has a nil map; an unknown mirror is absent.
type paritySet map[string]map[string]string

// inSync is the parity entry status of a version the mirror holds as the
// primary does (mirror's ParityEntry statuses).
const inSync = "in_sync"

// IntegrityRule names the built-in finding of a version holding a blob a
// scrub found bad (its stored bytes no longer match its digest): present
// only then, always failing, whatever the rules.
const IntegrityRule = "blob-integrity"

// evaluate judges one version by the rules that apply to it: one finding
// per rule, failing with every unmet requirement named; and the integrity
// finding when bad names blobs of the version found bad.
func evaluate(v storage.PackVersion, ev Evidence, rules []Rule, parity paritySet, bad []string, now time.Time) storage.ComplianceRecord {
	types := slices.Clone(ev.Attestations)
	slices.Sort(types)
	types = slices.Compact(types)
	rec := storage.ComplianceRecord{Name: v.Name, Version: v.Version, Digest: v.Digest, Lifecycle: v.Status,
		Verification: ev.Verification, Attestations: types, Compliant: true, Findings: []storage.ComplianceFinding{}, Evaluated: now}
	for _, r := range rules {
		var why []string
		if r.RequireSignature && ev.Verification != "verified" {
			why = append(why, "no signature by a trusted key or identity ("+ev.Verification+")")
		}
		for _, t := range r.RequiredAttestations {
			if t == AnyPredicate && len(types) == 0 || t != AnyPredicate && !slices.Contains(types, t) {
				if t == AnyPredicate {
					t = "any type"
				}
				why = append(why, "no verified attestation of "+t)
			}
		}
		if r.MaxAge > 0 {
			switch age := now.Sub(ev.Newest); {
			case ev.Newest.IsZero():
				why = append(why, "no verified signature or attestation to date (max age "+time.Duration(r.MaxAge).String()+")")
			case age > time.Duration(r.MaxAge):
				why = append(why, fmt.Sprintf("newest verified signature or attestation is %s old, over %s", age.Round(time.Second), time.Duration(r.MaxAge)))
			}
		}
		if len(r.Lifecycle) > 0 && !slices.Contains(r.Lifecycle, v.Status) {
			why = append(why, "lifecycle "+v.Status+" is not one of "+strings.Join(r.Lifecycle, ", "))
		}
		for _, m := range r.ParityMirrors {
			entries, known := parity[m]
			switch st := entries[v.Name+":"+v.Version]; {
			case !known:
				why = append(why, "no mirror named "+m)
			case entries == nil:
				why = append(why, "mirror "+m+" has no parity check yet")
			case st != inSync:
				if st == "" {
					st = "not checked"
				}
				why = append(why, "mirror "+m+": "+st)
			}
		}
		f := storage.ComplianceFinding{Rule: r.Name, Status: Pass}
		if len(why) > 0 {
			f.Status, f.Reason, rec.Compliant = Fail, strings.Join(why, "; "), false
		}
		rec.Findings = append(rec.Findings, f)
	}
	if len(bad) > 0 && v.Status != storage.PackDeleted {
		rec.Compliant = false
		rec.Findings = append(rec.Findings, storage.ComplianceFinding{Rule: IntegrityRule, Status: Fail,
			Reason: "stored bytes do not match their digest (found by scrub): " + strings.Join(bad, ", ")})
	}
	return rec
}
