package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// failedCell is what a row that could not be measured shows.
const failedCell = "FAILED, see notes"

// skip notes a part of the run left out because something it needs is
// missing (a backend's variables, Distribution, a client tool). Under
// -smoke that fails the run: in CI the missing piece is a broken setup,
// and a smoke run that skips a suite cannot find that suite broken.
func (r *report) skip(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, s)
	r.skipped = append(r.skipped, s)
}

// verdict is the run's pass/fail beyond the errors its steps returned:
// any cell of the table that reads FAILED, whichever path set it (figures
// are never judged), and under -smoke any skipped part. The cells are
// read as printed, after finish.
func (r *report) verdict() error {
	type named struct {
		name string
		c    cell
	}
	var cells []named
	r.mu.Lock()
	for _, key := range slices.Sorted(maps.Keys(r.cells)) {
		sec, label, _ := strings.Cut(key, "\x00")
		for _, col := range slices.Sorted(maps.Keys(r.cells[key])) {
			cells = append(cells, named{fmt.Sprintf("%s: %s: %s", sec, label, col), r.cells[key][col]})
		}
	}
	skipped := slices.Clone(r.skipped)
	r.mu.Unlock()

	var errs []error
	// Outside the lock: a cell may add a note as it renders.
	for _, n := range cells {
		if strings.HasPrefix(n.c(&r.limits), "FAILED") {
			errs = append(errs, fmt.Errorf("%s: FAILED", n.name))
		}
	}
	if r.opt.smoke {
		for _, s := range skipped {
			errs = append(errs, fmt.Errorf("-smoke: a part was skipped: %s", firstLine(s)))
		}
	}
	return errors.Join(errs...)
}
