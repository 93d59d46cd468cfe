package blobtest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/blobtest"
)

// memStore is the smallest correct BlobStore: the suite must pass on it,
// and fail on each of its mutants below, or the suite asserts too little.
type memStore struct {
	mutant  string
	mu      sync.Mutex
	blobs   map[digest.Digest][]byte
	uploads map[string][]byte
	offsets map[string]int64 // used only by the "state-in-store" mutant
}

func newMem(mutant string) *memStore {
	return &memStore{mutant: mutant, blobs: map[digest.Digest][]byte{}, uploads: map[string][]byte{}, offsets: map[string]int64{}}
}

func (m *memStore) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return 0, fmt.Errorf("mem: %s: %w", d, storage.ErrNotFound)
	}
	return int64(len(b)), nil
}

func (m *memStore) Open(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", d, storage.ErrNotFound)
	}
	if offset < 0 || offset > int64(len(b)) {
		return nil, fmt.Errorf("mem: offset %d out of range", offset)
	}
	if m.mutant == "ignore-offset" {
		offset = 0
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

func (m *memStore) Delete(ctx context.Context, d digest.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[d]; !ok && m.mutant != "delete-missing-ok" {
		return fmt.Errorf("mem: %s: %w", d, storage.ErrNotFound)
	}
	delete(m.blobs, d)
	return nil
}

func (m *memStore) Append(ctx context.Context, u *storage.Upload, r io.Reader) error {
	if err := ctx.Err(); err != nil && m.mutant != "ignore-context" {
		return err
	}
	chunk, err := io.ReadAll(r)
	if err != nil {
		if m.mutant == "dirty-on-error" {
			u.Offset += int64(len(chunk)) // counts what arrived before the failure
		}
		return fmt.Errorf("mem: read: %w", err)
	}
	if err := ctx.Err(); err != nil && m.mutant != "ignore-context" {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.uploads[u.ID]
	off := u.Offset
	if m.mutant == "state-in-store" {
		off = m.offsets[u.ID]
	}
	switch {
	case !ok && off > 0:
		return fmt.Errorf("mem: upload %s: %w", u.ID, storage.ErrNotFound)
	case int64(len(data)) < off:
		return fmt.Errorf("mem: upload %s: %w", u.ID, storage.ErrConflict)
	}
	if m.mutant != "no-truncate" {
		data = data[:off]
	}
	h, err := digest.RestoreHash(u.Algorithm, u.HashState)
	if err != nil {
		return err
	}
	h.Write(chunk)
	state, err := digest.MarshalHash(h)
	if err != nil {
		return err
	}
	m.uploads[u.ID] = append(bytes.Clone(data), chunk...)
	m.offsets[u.ID] = off + int64(len(chunk))
	u.Offset = off + int64(len(chunk))
	u.HashState = state
	return nil
}

func (m *memStore) Commit(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	if err := ctx.Err(); err != nil && m.mutant != "ignore-context" {
		return err
	}
	m.mu.Lock()
	data, ok := m.uploads[u.ID]
	if !ok && u.Offset > 0 {
		// Gone: published by an earlier Commit of u, or aborted.
		m.mu.Unlock()
		size, err := m.Stat(ctx, d)
		switch m.mutant {
		case "replay-fails":
			return fmt.Errorf("mem: upload %s: %w", u.ID, storage.ErrNotFound)
		case "replay-trusts-size":
			if err == nil && size != u.Offset {
				err = storage.ErrDigestMismatch
			}
			return err
		}
		return storage.ProveCommitted(ctx, m, u, d)
	}
	defer m.mu.Unlock()
	switch {
	case int64(len(data)) < u.Offset:
		return fmt.Errorf("mem: upload %s: %w", u.ID, storage.ErrConflict)
	}
	if m.mutant != "commit-all-bytes" {
		data = data[:u.Offset]
	}
	if _, ok := m.blobs[d]; ok && m.mutant == "existing-skips-verify" {
		delete(m.uploads, u.ID)
		return nil
	}
	alg := d.Algorithm()
	if m.mutant == "streamed-algorithm-only" {
		alg = u.Algorithm
	}
	got := digest.FromBytes(alg, data)
	if got != d && m.mutant != "no-verify" {
		if m.mutant == "publish-on-mismatch" {
			m.blobs[got] = data
		}
		if m.mutant != "keep-on-mismatch" {
			delete(m.uploads, u.ID)
		}
		return fmt.Errorf("mem: %w", storage.ErrDigestMismatch)
	}
	if _, ok := m.blobs[d]; !ok || m.mutant == "overwrite-existing" {
		m.blobs[d] = data
		if m.mutant == "overwrite-existing" && len(data) > 0 {
			m.blobs[d] = append(bytes.Clone(data[1:]), data[0]) // a sloppy rewrite
		}
	}
	delete(m.uploads, u.ID)
	return nil
}

func (m *memStore) Abort(ctx context.Context, u *storage.Upload) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mutant != "abort-noop" {
		delete(m.uploads, u.ID)
	}
	return nil
}

const mutantEnv = "BLOBTEST_MUTANT"

// TestMemStore runs the suite on memStore; with BLOBTEST_MUTANT set (by
// TestMutantsFail) on that mutant instead.
func TestMemStore(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	blobtest.Run(t, func(t *testing.T) storage.BlobStore { return newMem(mutant) })
}

// TestMutantsFail proves the suite has teeth: each mutant breaks one rule
// of the contract, and the named subtest must catch it.
func TestMutantsFail(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	mutants := map[string]string{
		"no-verify":               "commit/mismatch/sha256-other-content",
		"keep-on-mismatch":        "commit/mismatch/sha256-prefix",
		"publish-on-mismatch":     "commit/mismatch/sha512-stream",
		"existing-skips-verify":   "commit/mismatch-against-existing-blob",
		"overwrite-existing":      "commit/existing-blob",
		"streamed-algorithm-only": "roundtrip/algorithm/sha512-final-of-sha256-stream",
		"commit-all-bytes":        "commit/older-copy-of-upload",
		"dirty-on-error":          "append/failing-reader/later-append-after-2MiB",
		"no-truncate":             "append/crash-replay/other-data",
		"state-in-store":          "append/crash-replay/same-data",
		"ignore-context":          "append/cancelled-context",
		"ignore-offset":           "read/offsets",
		"delete-missing-ok":       "delete/missing",
		"abort-noop":              "abort/discards-data",
		"replay-fails":            "commit/replayed-after-publish/small",
		"replay-trusts-size":      "commit/replayed-after-publish/claim-of-other-existing-blob",
	}
	for mutant, subtest := range mutants {
		t.Run(mutant, func(t *testing.T) {
			t.Parallel()
			// Only the subtest that should catch the mutant: the whole suite
			// per mutant would cost minutes under -race.
			run := "^TestMemStore$"
			for _, part := range strings.Split(subtest, "/") {
				run += "/^" + regexp.QuoteMeta(part) + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+mutant)
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), "=== RUN   TestMemStore/"+subtest+"\n") {
				t.Fatalf("mutant %q: subtest %s did not run; output:\n%s", mutant, subtest, out)
			}
			if err == nil {
				t.Fatalf("the suite passed on mutant %q", mutant)
			}
			if want := "--- FAIL: TestMemStore/" + subtest + " "; !strings.Contains(string(out), want) {
				t.Fatalf("mutant %q: subtest %s did not fail; output:\n%s", mutant, subtest, out)
			}
		})
	}
}
