package blobtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

var errReader = errors.New("blobtest: reader failed")

func appendCases() []testCase {
	cases := []testCase{
		{"append/cancelled-context", testAppendCancelled},
		{"append/cancelled-midway", testAppendCancelledMidway},
		{"append/resume-from-copied-state", testResumeFromCopy},
		{"append/interleaved-uploads", testInterleaved},
	}
	cases = append(cases, failingReaderCases()...)
	return append(cases, replayCases()...)
}

// failingReaderCases: when the reader fails, Append returns its error, u is
// untouched, and the next Append from u.Offset produces the right blob.
func failingReaderCases() []testCase {
	table := []struct {
		name   string
		before int // bytes acknowledged before the failing Append
		sent   int // bytes the reader delivers before failing
	}{
		{"first-append-at-once", 0, 0},
		{"first-append-after-5-bytes", 0, 5},
		{"first-append-after-3MiB", 0, 3*mib + 5},
		{"later-append-at-once", mib + 3, 0},
		{"later-append-after-2MiB", 7, 2*mib + 1},
	}
	// io.ErrUnexpectedEOF is what net/http's request body returns when the
	// client hangs up before Content-Length: a store must not take it for
	// the end of the data (io.ReadFull's short-read signal looks the same).
	var cases []testCase
	for _, fail := range []error{errReader, io.ErrUnexpectedEOF} {
		for i, tc := range table {
			name := "append/failing-reader/" + tc.name
			if fail == io.ErrUnexpectedEOF {
				name = "append/body-cut-short/" + tc.name
			}
			cases = append(cases, testCase{name, func(t *testing.T, s storage.BlobStore) {
				failingReaderCase(t, s, tc.before, tc.sent, uint64(300+i), fail)
			}})
		}
	}
	return cases
}

func failingReaderCase(t *testing.T, s storage.BlobStore, before, sent int, seed uint64, fail error) {
	data := randomBytes(before+sent+mib+1, seed)
	ss := start(t, s, digest.SHA256)
	if before > 0 {
		ss.append(data[:before], nil)
	}
	want := clone(ss.u)
	r := io.MultiReader(bytes.NewReader(data[before:before+sent]), iotest.ErrReader(fail))
	err := s.Append(t.Context(), ss.u, r)
	if !errors.Is(err, fail) {
		t.Fatalf("Append with a reader failing with %v = %v, want an error wrapping the reader's", fail, err)
	}
	requireSameUpload(t, ss.u, want)
	ss.append(data[before:before+1], nil) // a 1-byte retry
	ss.append(data[before+1:], nil)
	d := ss.commit(digest.SHA256)
	requireBlob(t, s, d, data)
}

// replayCases simulate a crash after an Append wrote its data but before the
// registry recorded the new state: the next Append uses the old copy of u,
// and whatever lies past the old offset must be discarded.
func replayCases() []testCase {
	table := []struct {
		name   string
		first  int // bytes acknowledged and recorded
		lost   int // bytes of the Append whose state was lost
		replay []byte
	}{
		{"same-data", mib + 3, 2*mib + 1, nil},
		{"other-data", mib + 3, 2*mib + 1, []byte("replayed differently")},
		{"shorter-data", 10, mib, []byte("x")},
		{"from-offset-zero", 0, 3*mib + 2, []byte("{}")},
		{"empty-replay", 4096, 4096, []byte{}},
	}
	var cases []testCase
	for i, tc := range table {
		cases = append(cases, testCase{"append/crash-replay/" + tc.name, func(t *testing.T, s storage.BlobStore) {
			data := randomBytes(tc.first+tc.lost, 400+uint64(i))
			ss := start(t, s, digest.SHA256)
			if tc.first > 0 {
				ss.append(data[:tc.first], nil)
			}
			old := clone(ss.u)
			ss.append(data[tc.first:], nil) // succeeds, but the registry "crashes"
			replay := tc.replay
			if replay == nil {
				replay = data[tc.first:]
			}
			resumed := &session{t: t, s: s, u: old, data: bytes.Clone(data[:tc.first])}
			resumed.append(replay, nil)
			tail := []byte("tail")
			resumed.append(tail, nil)
			want := append(append(bytes.Clone(data[:tc.first]), replay...), tail...)
			requireBytes(t, resumed.data, want)
			d := resumed.commit(digest.SHA256)
			requireBlob(t, s, d, want)
			if !bytes.Equal(want, data) {
				requireAbsent(t, s, digest.FromBytes(digest.SHA256, data))
			}
		}})
	}
	return cases
}

// roundTrip copies u through JSON, the way a metadata store hands the
// session to another replica: nothing survives that is not in the struct.
func roundTrip(t *testing.T, u *storage.Upload) *storage.Upload {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var c storage.Upload
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// testResumeFromCopy: every chunk is sent with a fresh copy of the state, so
// a store that keeps upload state in memory, keyed by pointer or by
// anything but the struct, fails.
func testResumeFromCopy(t *testing.T, s storage.BlobStore) {
	data := randomBytes(4*mib+10, 500)
	ss := start(t, s, digest.SHA256)
	for off, n := 0, 1; off < len(data); off, n = off+n, n*7+3 {
		end := min(off+n, len(data))
		ss.u = roundTrip(t, ss.u)
		ss.append(data[off:end], nil)
	}
	ss.u = roundTrip(t, ss.u)
	d := ss.commit(digest.SHA256)
	requireBlob(t, s, d, data)
}

// testInterleaved: two uploads appended in turn do not mix their data.
func testInterleaved(t *testing.T, s storage.BlobStore) {
	a, b := start(t, s, digest.SHA256), start(t, s, digest.SHA512)
	da, db := randomBytes(3*mib, 501), randomBytes(3*mib, 502)
	for off := 0; off < 3*mib; off += mib {
		a.append(da[off:off+mib], nil)
		b.append(db[off:off+mib], nil)
	}
	requireBlob(t, s, a.commit(digest.SHA256), da)
	requireBlob(t, s, b.commit(digest.SHA512), db)
}

// testAppendCancelled: a cancelled context fails Append before it changes
// anything.
func testAppendCancelled(t *testing.T, s storage.BlobStore) {
	ss := start(t, s, digest.SHA256)
	ss.append([]byte("first"), nil)
	want := clone(ss.u)
	err := s.Append(cancelled(t), ss.u, bytes.NewReader([]byte("second")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	requireSameUpload(t, ss.u, want)
	ss.append([]byte("third"), nil)
	requireBlob(t, s, ss.commit(digest.SHA256), []byte("firstthird"))
}

// cancellingReader cancels its context once it has delivered after bytes,
// then keeps delivering, like a client that disconnects mid-stream.
type cancellingReader struct {
	r      io.Reader
	after  int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.after -= n; c.after <= 0 {
		c.cancel()
	}
	return n, err
}

// testAppendCancelledMidway: cancellation during a long Append fails it and
// leaves u as it was.
func testAppendCancelledMidway(t *testing.T, s storage.BlobStore) {
	data := randomBytes(12*mib, 503)
	ss := start(t, s, digest.SHA256)
	ss.append(data[:3], nil)
	want := clone(ss.u)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(data[3:]), after: 2 * mib, cancel: cancel}
	if err := s.Append(ctx, ss.u, r); err == nil {
		t.Fatal("Append whose context was cancelled midway succeeded")
	}
	requireSameUpload(t, ss.u, want)
	ss.append(data[3:], nil)
	requireBlob(t, s, ss.commit(digest.SHA256), data)
}
