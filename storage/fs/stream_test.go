package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	iofs "io/fs"
	"testing"
)

// sinkFile is a File that counts what is written and can fail after limit bytes.
type sinkFile struct {
	n, limit int64
}

var errSink = errors.New("sink full")

func (s *sinkFile) Write(p []byte) (int, error) {
	if s.limit > 0 && s.n+int64(len(p)) > s.limit {
		return 0, errSink
	}
	s.n += int64(len(p))
	return len(p), nil
}
func (*sinkFile) Read([]byte) (int, error)          { return 0, io.EOF }
func (*sinkFile) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (*sinkFile) Seek(int64, int) (int64, error)    { return 0, nil }
func (*sinkFile) Close() error                      { return nil }
func (*sinkFile) Stat() (iofs.FileInfo, error)      { return nil, errors.ErrUnsupported }
func (*sinkFile) Truncate(int64) error              { return nil }
func (*sinkFile) Sync() error                       { return nil }

func TestCopyHashed(t *testing.T) {
	data := make([]byte, 5*bufSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	for _, tc := range []struct {
		name    string
		limit   int64
		wantErr error
	}{
		{"all", 0, nil},
		{"writer-fails-early", bufSize, errSink},
		{"writer-fails-late", 5 * bufSize, errSink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sha256.New()
			f := &sinkFile{limit: tc.limit}
			n, err := copyHashed(context.Background(), f, 0, h, bytes.NewReader(data))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if n != int64(len(data)) || f.n != n || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("copied %d, wrote %d, of %d; hash ok: %v", n, f.n, len(data), bytes.Equal(h.Sum(nil), want[:]))
			}
		})
	}
}

// BenchmarkCopyHashed is the pipeline without a disk: compare its MB/s with
// BenchmarkSHA256, the ceiling on one core.
func BenchmarkCopyHashed(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := copyHashed(context.Background(), &sinkFile{}, 0, sha256.New(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := sha256.New()
		for off := 0; off < len(data); off += bufSize {
			h.Write(data[off : off+bufSize])
		}
	}
}

// TestWritebackStartsWithinAChunk: the fsync ending a PATCH waits for
// whatever of its bytes the disk has not written yet. Writeback must start
// while the chunk streams, not once at its end: of an 8 MiB chunk (the
// bench's and a common client's PATCH size) written in buffers, at
// least 7 MiB must be on their way to disk before the last buffer is
// written, from whatever offset the chunk starts at.
func TestWritebackStartsWithinAChunk(t *testing.T) {
	const chunk = 8 << 20
	for _, off := range []int64{0, 3 * chunk} {
		wb := writeback{off: off}
		next := off // the ranges must be contiguous from off, none skipped
		for i := 0; i < chunk/bufSize-1; i++ {
			if at, n, ok := wb.wrote(bufSize); ok {
				if at != next || n <= 0 {
					t.Fatalf("offset %d: writeback of [%d, +%d), want it to start at %d", off, at, n, next)
				}
				next = at + n
			}
		}
		if started := next - off; started < 7<<20 {
			t.Errorf("offset %d: %d bytes in writeback before the last buffer of an %d-byte chunk, want at least %d",
				off, started, chunk, 7<<20)
		}
	}
}
