package attest

import (
	"context"

	"github.com/packreg/packreg/storage"
)

// quietSubjects spares a drain its query per manifest push. Each push
// (jobSubject) re-checks the records waiting for the manifest, which
// almost always are none: at 16 clients pushing, that read was a third
// of the statements per PUT. One query answers for a run of pushes in a
// batch which subjects have records at all; a push whose subject has
// none is done without its own read.
//
// The answer holds only until a job that may write records runs (any
// other job, or a push whose subject has records, which re-indexes
// them): then the rest of the run is asked again. So a referrer indexed
// earlier in the same batch is seen by its subject's push after it.
type quietSubjects struct {
	evs   []storage.Event
	jobs  []job
	oks   []bool
	end   int                            // the run the answer covers: evs[..end)
	loud  map[storage.AttestSubject]bool // subjects with records in that run
	asked bool
}

func newQuietSubjects(evs []storage.Event) *quietSubjects {
	q := &quietSubjects{evs: evs, jobs: make([]job, len(evs)), oks: make([]bool, len(evs))}
	for i, se := range evs {
		q.jobs[i], q.oks[i] = jobOf(se)
	}
	return q
}

// skip says whether event i is a push whose subject has no records, its
// job nothing to do. An error asking leaves it to the job's own read.
func (q *quietSubjects) skip(ctx context.Context, st storage.Attest, i int) bool {
	if !q.oks[i] || q.jobs[i].kind != jobSubject {
		return false
	}
	if !q.asked || i >= q.end {
		q.ask(ctx, st, i)
	}
	if q.loud == nil {
		return false
	}
	j := q.jobs[i]
	return !q.loud[storage.AttestSubject{Repo: j.repo, Subject: j.d}]
}

// ask reads which subjects of the run of pushes from event i have records.
func (q *quietSubjects) ask(ctx context.Context, st storage.Attest, i int) {
	var subjects []storage.AttestSubject
	q.end = i
	for ; q.end < len(q.evs); q.end++ {
		if !q.oks[q.end] {
			continue // no job: writes nothing
		}
		j := q.jobs[q.end]
		if j.kind != jobSubject {
			break
		}
		subjects = append(subjects, storage.AttestSubject{Repo: j.repo, Subject: j.d})
	}
	q.asked, q.loud = true, nil
	current, _, err := st.AttestRecordsBySubjects(ctx, subjects, 1, 0)
	if err != nil {
		return
	}
	q.loud = make(map[storage.AttestSubject]bool, len(current))
	for k := range current {
		q.loud[k] = true
	}
}

// ran tells q that event i's job ran: it may have written records.
func (q *quietSubjects) ran(i int) {
	if q.oks[i] {
		q.asked = false
	}
}
