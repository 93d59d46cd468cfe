package s3

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
)

// BenchmarkAppendCommit pushes a 64 MiB blob to PACKREG_TEST_S3 with the
// default part size: in one streamed Append, and in 8 MiB chunks (each a
// separate Append, as a chunked OCI push). The blob is deleted between
// iterations, outside the timer, so every Commit publishes.
func BenchmarkAppendCommit(b *testing.B) {
	const size = 64 * mib
	data := randomBytes(64, size)
	d := digest.FromBytes(digest.SHA256, data)
	for _, bc := range []struct {
		name  string
		chunk int
	}{{"one-append", size}, {"8MiB-chunks", 8 * mib}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestStore(b)
			ctx := context.Background()
			b.SetBytes(size)
			for b.Loop() {
				u := newUpload()
				for off := 0; off < size; off += bc.chunk {
					if err := s.Append(ctx, u, bytes.NewReader(data[off:min(off+bc.chunk, size)])); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Commit(ctx, u, d); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, d); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkOpen reads a 64 MiB blob from PACKREG_TEST_S3 the way a blob GET
// does: Open, then a copy through 32 KiB buffers (net/http's copy into the
// socket for a reader that is not a file); with and without read-ahead.
func BenchmarkOpen(b *testing.B) {
	const size = 64 * mib
	data := randomBytes(65, size)
	s := newTestStore(b)
	ctx := context.Background()
	u := newUpload()
	if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(ctx, u, d); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		ahead int
	}{{"ahead-4", 4}, {"ahead-0", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			s := twin(b, s, func(c *Config) { c.ReadAhead = bc.ahead })
			buf := make([]byte, 32<<10)
			b.SetBytes(size)
			for b.Loop() {
				r, err := s.Open(ctx, d, 0)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, buf)
				r.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes, %v; want %d", n, err, size)
				}
			}
		})
	}
}

// BenchmarkPutSmall is the S3 side of a 1 KiB blob push: one Put (a
// PutObject) and the Stat (a HeadObject) the registry makes after linking.
// It reports the CPU this process spent per push (cpu-us/op, from
// getrusage: the SDK's middleware, signing, net/http), which ns/op hides
// behind the server's answer time, and allocations.
func BenchmarkPutSmall(b *testing.B) {
	s := newTestStore(b)
	ctx := context.Background()
	blobs := make([][]byte, 64)
	for i := range blobs {
		blobs[i] = randomBytes(uint64(900+i), 1024)
	}
	b.ReportAllocs()
	cpu0 := teststores.ProcessCPU(b)
	i := 0
	for b.Loop() {
		data := blobs[i%len(blobs)]
		i++
		d := digest.FromBytes(digest.SHA256, data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Stat(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((teststores.ProcessCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}
