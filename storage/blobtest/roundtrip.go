package blobtest

import (
	"io"
	"testing"
	"testing/iotest"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// roundTripCases write data through Append (in the given chunk sizes, each
// through wrap) and read it back byte-exact after Commit.
func roundTripCases() []testCase {
	rest := func(sizes ...int) []int { // sizes, then whatever fills large
		n := 0
		for _, s := range sizes {
			n += s
		}
		return append(sizes, large-n)
	}
	table := []struct {
		name    string
		stream  string // Upload.Algorithm
		final   string // digest algorithm passed to Commit
		data    []byte // fixed data; random of sum(chunks) bytes when nil
		chunks  []int  // Append sizes; nil means Commit without any Append
		wrap    func(io.Reader) io.Reader
		nonUTF8 bool
	}{
		{name: "empty/no-append", stream: digest.SHA256, final: digest.SHA256, data: []byte{}},
		{name: "empty/one-empty-append", stream: digest.SHA256, final: digest.SHA256, data: []byte{}, chunks: []int{0}},
		{name: "empty/sha512", stream: digest.SHA512, final: digest.SHA512, data: []byte{}, chunks: []int{0, 0}},
		{name: "small/braces", stream: digest.SHA256, final: digest.SHA256, data: []byte("{}"), chunks: []int{2}},
		{name: "small/braces-bytewise", stream: digest.SHA256, final: digest.SHA256, data: []byte("{}"), chunks: []int{1, 0, 1}},
		{name: "small/one-byte-reads", stream: digest.SHA256, final: digest.SHA256, chunks: []int{64*kib + 1}, wrap: iotest.OneByteReader, nonUTF8: true},
		{name: "small/data-with-eof", stream: digest.SHA256, final: digest.SHA256, chunks: []int{3*kib + 5, 1}, wrap: iotest.DataErrReader, nonUTF8: true},
		{name: "large/one-append", stream: digest.SHA256, final: digest.SHA256, chunks: []int{large}, nonUTF8: true},
		{name: "large/uneven-appends", stream: digest.SHA256, final: digest.SHA256,
			chunks: rest(1, 7, mib+3, 0, 4*kib, 3*mib-1, 1), nonUTF8: true},
		{name: "large/half-reads", stream: digest.SHA256, final: digest.SHA256, chunks: rest(5*mib + 1), wrap: iotest.HalfReader, nonUTF8: true},
		{name: "algorithm/sha512-final-of-sha256-stream", stream: digest.SHA256, final: digest.SHA512,
			chunks: rest(7, 2*mib+1), nonUTF8: true},
		{name: "algorithm/sha512-stream", stream: digest.SHA512, final: digest.SHA512,
			chunks: rest(1, mib+3), nonUTF8: true},
		{name: "algorithm/sha256-final-of-sha512-stream", stream: digest.SHA512, final: digest.SHA256,
			chunks: []int{3, 1*mib + 5}, nonUTF8: true},
	}
	var cases []testCase
	for i, tc := range table {
		cases = append(cases, testCase{name: "roundtrip/" + tc.name, run: func(t *testing.T, s storage.BlobStore) {
			data := tc.data
			if data == nil {
				n := 0
				for _, c := range tc.chunks {
					n += c
				}
				data = randomBytes(n, uint64(i))
			}
			if tc.nonUTF8 {
				requireNonUTF8(t, data)
			}
			ss := start(t, s, tc.stream)
			off := 0
			for _, c := range tc.chunks {
				ss.append(data[off:off+c], tc.wrap)
				off += c
			}
			requireBytes(t, ss.data, data) // the table adds up
			// Not visible until committed, under either algorithm.
			requireAbsent(t, s, digest.FromBytes(tc.final, data))
			d := ss.commit(tc.final)
			requireBlob(t, s, d, data)
			if tc.final != tc.stream {
				// Published under the digest it was committed with, only.
				requireAbsent(t, s, digest.FromBytes(tc.stream, data))
			}
		}})
	}
	return cases
}
