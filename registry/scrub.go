package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Scrub: re-hash every stored blob, rate-limited, and record a blob whose
// bytes no longer match its digest (storage.Collector.MarkBlobBad, with a
// blob.corrupt event for the audit trail); a blob found bad before whose
// bytes match again (restored by hand) is cleared (ClearBlobBad, with a
// blob.repaired event); so is one pushed again (repair.go). The read path
// (StatBlob, so GET and OpenBlob) refuses a blob so marked with 500
// UNKNOWN before any byte, HEAD with 404: bad bytes are never sent. Blobs are not re-hashed on every
// read, which would cost every pull a full read on S3 and take sendfile
// away from disk pulls: between a corruption and the scrub that finds it,
// a client's own digest check is what catches it.

// ActionBlobCorrupt is the event of a blob a scrub found bad, and
// ActionBlobRepaired of one a later scrub found sound again, or a push
// replaced (repair.go).
const (
	ActionBlobCorrupt  = "blob.corrupt"
	ActionBlobRepaired = "blob.repaired"
)

// DefaultScrubRate is how many bytes per second a scrub reads (scrub.rate).
const DefaultScrubRate = 50 << 20

// ScrubReport is what one scrub did.
type ScrubReport struct {
	Blobs   int             `json:"blobs"`   // checked
	Bytes   int64           `json:"bytes"`   // read
	Bad     []digest.Digest `json:"bad"`     // found bad by this scrub
	Skipped int             `json:"skipped"` // gone since the listing
	// Repaired were known bad and hash right again (restored): their
	// finding is cleared and reads serve them again.
	Repaired []digest.Digest `json:"repaired"`
}

// Scrub re-hashes every linked blob once, reading at most rate bytes per
// second (0: DefaultScrubRate).
func (r *Registry) Scrub(ctx context.Context, rate int64) (rep *ScrubReport, err error) {
	start := time.Now()
	defer func() {
		for _, f := range r.scrubObservers {
			f(rep, time.Since(start), err)
		}
	}()
	return r.scrub(ctx, rate)
}

func (r *Registry) scrub(ctx context.Context, rate int64) (*ScrubReport, error) {
	if rate <= 0 {
		rate = DefaultScrubRate
	}
	seen := map[digest.Digest]bool{}
	err := r.meta.GCLinks(ctx, func(l storage.GCLink) error {
		seen[l.Digest] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	ds := make([]digest.Digest, 0, len(seen))
	for d := range seen {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	rep := &ScrubReport{Bad: []digest.Digest{}, Repaired: []digest.Digest{}}
	lim := &rateLimit{rate: rate, start: time.Now()}
	for _, d := range ds {
		// Known bad blobs are hashed again too: restored bytes clear the
		// finding, which nothing else would.
		_, known, err := r.meta.BlobBad(ctx, d)
		if err != nil {
			return rep, err
		}
		got, n, err := r.rehash(ctx, d, lim)
		rep.Bytes += n
		if errors.Is(err, storage.ErrNotFound) {
			rep.Skipped++ // collected since the listing
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Blobs++
		if got == d && known {
			if err := r.repaired(ctx, d, n, rep); err != nil {
				return rep, err
			}
		}
		if got == d || known {
			continue
		}
		detail := fmt.Sprintf("stored bytes hash to %s", got)
		ev := event(WithActor(ctx, "scrub"), Event{Action: ActionBlobCorrupt, Digest: d, Size: n})
		added, err := r.meta.MarkBlobBad(ctx, d, detail, ev.Record())
		if err != nil {
			return rep, err
		}
		if added {
			r.log.ErrorContext(ctx, "scrub: blob bytes do not match their digest; reads of it now fail", "digest", d, "detail", detail)
			rep.Bad = append(rep.Bad, d)
			r.notify(ctx, ev)
		}
	}
	return rep, nil
}

// repaired clears the finding about d, whose bytes hash right again.
func (r *Registry) repaired(ctx context.Context, d digest.Digest, n int64, rep *ScrubReport) error {
	cleared, err := r.clearBad(WithActor(ctx, "scrub"), Event{Digest: d, Size: n})
	if cleared {
		rep.Repaired = append(rep.Repaired, d)
	}
	return err
}

// rehash reads blob d whole through lim and returns its digest under d's
// algorithm and the bytes read.
func (r *Registry) rehash(ctx context.Context, d digest.Digest, lim *rateLimit) (digest.Digest, int64, error) {
	rc, err := r.blobs.Open(ctx, d, 0)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := digest.NewHash(d.Algorithm())
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := rc.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if werr := lim.wait(ctx, int64(k)); werr != nil {
			return "", n, werr
		}
		if errors.Is(err, io.EOF) {
			return digest.FromHash(d.Algorithm(), h), n, nil
		}
		if err != nil {
			return "", n, err
		}
	}
}

// rateLimit paces reads to rate bytes per second on average since start.
type rateLimit struct {
	rate  int64
	start time.Time
	done  int64
}

func (l *rateLimit) wait(ctx context.Context, n int64) error {
	l.done += n
	due := l.start.Add(time.Duration(float64(l.done) / float64(l.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errBadBytes is in the error of a read refused by refuseBad.
var errBadBytes = errors.New("stored bytes do not match the digest")

// refuseBad fails a read of blob d when a scrub found its bytes bad.
func (r *Registry) refuseBad(ctx context.Context, d digest.Digest) error {
	detail, bad, err := r.meta.BlobBad(ctx, d)
	if err != nil || !bad {
		return err
	}
	r.log.ErrorContext(ctx, "refused a read of a blob whose bytes do not match its digest", "digest", d, "detail", detail)
	return fmt.Errorf("blob %s is corrupt in the blob store (%s); refusing to serve it: %w", d, detail, errBadBytes)
}
