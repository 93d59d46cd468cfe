package fs_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage/fs"
)

var benchSizes = []int{1 << 20, 64 << 20, 512 << 20}

// BenchmarkAppendCommit is a push: Appends of the whole blob, at once
// (monolithic) or in 8 MiB chunks as a chunked push's PATCHes, then a
// Commit (fsync, rename, dir fsync). Compare its MB/s with BenchmarkLimit
// at the same size, and chunked with monolithic.
func BenchmarkAppendCommit(b *testing.B) {
	for _, size := range benchSizes {
		for _, chunk := range []int{size, 8 << 20} {
			name := fmt.Sprintf("%dMiB", size>>20)
			if chunk < size {
				name += "/chunked"
			} else if size > 8<<20 {
				name += "/monolithic"
			} else {
				continue // one chunk
			}
			b.Run(name, func(b *testing.B) { benchPush(b, size, chunk) })
		}
	}
}

func benchPush(b *testing.B, size, chunk int) {
	s, err := fs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := randomData(size, 40)
	d := digest.FromBytes(digest.SHA256, data)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := newUpload(digest.SHA256)
		for off := 0; off < size; off += chunk {
			if err := s.Append(b.Context(), u, bytes.NewReader(data[off:min(off+chunk, size)])); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Commit(b.Context(), u, d); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(b.Context(), d); err != nil { // or the next Commit is a no-op
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkLimit measures what the machine can do without the store: sha256
// alone, write+fsync alone, and the three in sequence with the same 1 MiB
// buffers (what a store without overlap would cost).
func BenchmarkLimit(b *testing.B) {
	for _, size := range benchSizes {
		data := randomData(size, 41)
		b.Run(fmt.Sprintf("sha256/%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				h := sha256.New()
				for off := 0; off < size; off += 1 << 20 {
					h.Write(data[off : off+1<<20])
				}
			}
		})
		b.Run(fmt.Sprintf("write+fsync/%dMiB", size>>20), func(b *testing.B) {
			benchWrite(b, data, false)
		})
		b.Run(fmt.Sprintf("sha256+write+fsync/%dMiB", size>>20), func(b *testing.B) {
			benchWrite(b, data, true)
		})
	}
}

func benchWrite(b *testing.B, data []byte, hash bool) {
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		name := filepath.Join(dir, fmt.Sprint(i))
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		for off := 0; off < len(data); off += 1 << 20 {
			if hash {
				h.Write(data[off : off+1<<20])
			}
			if _, err := f.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.StopTimer()
		os.Remove(name)
		b.StartTimer()
	}
}
