package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"sync"
)

// segSize is the generator's unit: every 1 MiB segment of a stream is a copy
// of the random pool starting at an offset picked from (seed, segment), with
// a 16-byte header naming both, so two streams never share a segment.
const segSize = 1 << 20

// pool is segSize random bytes stored twice in a row, so any rotation of it is
// one contiguous slice and a segment costs a single memcpy. Generating with a
// cipher per byte would cost the client a core the server needs.
var pool = func() []byte {
	b := make([]byte, 2*segSize)
	var key [32]byte
	copy(key[:], "packreg bench pool")
	_, _ = rand.NewChaCha8(key).Read(b[:segSize])
	copy(b[segSize:], b[:segSize])
	return b
}()

// splitmix64 scrambles (seed, segment) into a pool offset.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// genReader streams size deterministic pseudo-random bytes for seed. It
// holds no buffer of its own, so a 512 MiB blob costs the bench nothing in
// memory.
type genReader struct {
	seed      uint64
	size, off int64
}

func newGen(seed uint64, size int64) *genReader { return &genReader{seed: seed, size: size} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rest := g.size - g.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	for n < len(p) {
		k := uint64(g.off / segSize)
		in := int(g.off % segSize)
		start := int(splitmix64(g.seed*0x100000001b3^k) % segSize)
		c := copy(p[n:], pool[start+in:start+segSize])
		if in < 16 {
			var h [16]byte
			binary.LittleEndian.PutUint64(h[0:], g.seed)
			binary.LittleEndian.PutUint64(h[8:], k)
			copy(p[n:n+c], h[in:])
		}
		n += c
		g.off += int64(c)
	}
	return n, nil
}

// genBytes returns the whole stream for small blobs and manifests' layers.
func genBytes(seed uint64, size int) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(newGen(seed, int64(size)), b)
	return b
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// digests caches the digest of each (seed, size) stream: the pass that
// computes it runs before the timed push, and the S3 backend reuses the
// disk backend's blobs (they go to a different server).
type digests struct {
	mu sync.Mutex
	m  map[[2]uint64]string
}

func (d *digests) of(seed uint64, size int64) string {
	key := [2]uint64{seed, uint64(size)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.m[key]; ok {
		return s
	}
	h := sha256.New()
	buf := make([]byte, segSize)
	_, _ = io.CopyBuffer(h, newGen(seed, size), buf)
	s := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if d.m == nil {
		d.m = map[[2]uint64]string{}
	}
	d.m[key] = s
	return s
}
