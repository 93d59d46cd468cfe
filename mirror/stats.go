package mirror

import (
	"sync/atomic"
)

// Stats is what a run did, as stored with it and shown by the API. A
// second sync of unchanged content has every *Copied, Mounted and Moved
// count at zero.
type Stats struct {
	VersionsTotal    int64 `json:"versionsTotal"`
	VersionsDone     int64 `json:"versionsDone"`
	VersionsFailed   int64 `json:"versionsFailed"`
	ManifestsCopied  int64 `json:"manifestsCopied"`
	ManifestsSkipped int64 `json:"manifestsSkipped"`
	ReferrersCopied  int64 `json:"referrersCopied"`
	BlobsCopied      int64 `json:"blobsCopied"`
	BlobsMounted     int64 `json:"blobsMounted"`
	BlobsSkipped     int64 `json:"blobsSkipped"`
	BytesCopied      int64 `json:"bytesCopied"`
	TagsMoved        int64 `json:"tagsMoved"`
	LifecycleChanged int64 `json:"lifecycleChanged"`
	// ParityCheck and InParity are the outcome of a parity run.
	ParityCheck int64 `json:"parityCheck,omitempty"`
	InParity    *bool `json:"inParity,omitempty"`
}

// Copied reports whether anything was written to the sink.
func (s Stats) Copied() bool {
	return s.ManifestsCopied+s.BlobsCopied+s.BlobsMounted+s.TagsMoved+s.LifecycleChanged > 0
}

// Counts is Stats counted concurrently while a run goes on.
type Counts struct {
	versionsTotal, versionsDone, versionsFailed        atomic.Int64
	manifestsCopied, manifestsSkipped, referrersCopied atomic.Int64
	blobsCopied, blobsMounted, blobsSkipped            atomic.Int64
	bytesCopied, tagsMoved, lifecycleChanged           atomic.Int64
}

// fields pairs each counter with its Stats field, so Snapshot and Resume
// cannot drift apart.
func (c *Counts) fields(s *Stats) []struct {
	a *atomic.Int64
	v *int64
} {
	return []struct {
		a *atomic.Int64
		v *int64
	}{
		{&c.versionsTotal, &s.VersionsTotal}, {&c.versionsDone, &s.VersionsDone}, {&c.versionsFailed, &s.VersionsFailed},
		{&c.manifestsCopied, &s.ManifestsCopied}, {&c.manifestsSkipped, &s.ManifestsSkipped}, {&c.referrersCopied, &s.ReferrersCopied},
		{&c.blobsCopied, &s.BlobsCopied}, {&c.blobsMounted, &s.BlobsMounted}, {&c.blobsSkipped, &s.BlobsSkipped},
		{&c.bytesCopied, &s.BytesCopied}, {&c.tagsMoved, &s.TagsMoved}, {&c.lifecycleChanged, &s.LifecycleChanged},
	}
}

// Snapshot reads the counters.
func (c *Counts) Snapshot() Stats {
	var s Stats
	for _, f := range c.fields(&s) {
		*f.v = f.a.Load()
	}
	return s
}

// Resume starts the counters from what an interrupted attempt of the same
// run recorded: the new attempt skips what is already there, so the sum
// counts every item once.
func (c *Counts) Resume(s Stats) {
	for _, f := range c.fields(&s) {
		f.a.Store(*f.v)
	}
	// Versions are listed and walked again from the start.
	c.versionsTotal.Store(0)
	c.versionsDone.Store(0)
	c.versionsFailed.Store(0)
}
