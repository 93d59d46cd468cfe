package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// readAllTar reads every entry of an archive with the bundle's tar reader,
// content included.
func readAllTar(b []byte) ([]tarFile, error) {
	tr := newTarReader(bytes.NewReader(b))
	return collect(tr, func() (tarFile, bool, error) {
		e, err := tr.next()
		if err != nil {
			return tarFile{}, false, err
		}
		flag := byte(tar.TypeReg)
		if e.Type == entryDir {
			flag = tar.TypeDir
		}
		return tarFile{name: e.Name, flag: flag}, false, nil
	})
}

// collect gathers the entries next reads until io.EOF, each with its
// content read from r; next skips an entry that holds no file.
func collect(r io.Reader, next func() (f tarFile, skip bool, err error)) ([]tarFile, error) {
	var out []tarFile
	for {
		f, skip, err := next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		if f.data, err = io.ReadAll(r); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
}

// octalRE is a tar numeric field: octal digits, NULs and spaces around
// them (archive/tar's reading; no sign).
var octalRE = regexp.MustCompile(`^[ \x00]*[0-7]*[ \x00]*$`)

// FuzzTarReader: the bundle's own tar reader means what archive/tar (the
// reference: what tar tools mean) means. An archive both read to the end
// holds the same regular files and directories, by name, kind and content,
// for both, so no tool extracts other files from a bundle than packreg
// imports (with sums, checksums are set right first, so that the fuzzer
// reaches the other fields); its numeric fields hold octal digits only;
// every refusal wraps errTar; and what tarWriter writes (names without
// NUL, as the bundle's are) reads back as written.
func FuzzTarReader(f *testing.F) {
	f.Add(build(f, []tarFile{{name: "oci-layout", flag: tar.TypeReg, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "blobs/", flag: tar.TypeDir}}), true, "index.json", []byte("{}"))
	var pax bytes.Buffer
	tw := tar.NewWriter(&pax)
	tw.WriteHeader(&tar.Header{Name: string(bytes.Repeat([]byte("n/"), 90)) + "x", Size: 3, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": "c"}})
	tw.Write([]byte("abc"))
	tw.Close()
	f.Add(pax.Bytes(), false, "", []byte(nil))
	f.Fuzz(func(t *testing.T, in []byte, sums bool, name string, data []byte) {
		if sums {
			in = bytes.Clone(in)
			withChecksums(in)
		}
		got, err := readAllTar(in)
		if err != nil {
			if !errors.Is(err, errTar) {
				t.Fatalf("refused without saying the archive is at fault: %v", err)
			}
		} else if want, err := refTar(in); err == nil && !sameFiles(got, want) {
			// archive/tar refuses more (it reads the mode, owner and time
			// fields, which the bundle does not use): only a reading of
			// both is compared.
			t.Fatalf("read %q as %q; archive/tar reads %q", in, got, want)
		}
		if len(in) >= 12 {
			if _, err := octal(in[:12]); err == nil && !octalRE.Match(in[:12]) {
				t.Fatalf("octal field %q accepted", in[:12])
			}
		}

		if name == "" || len(name) > 1000 || strings.Contains(name, "\x00") {
			return
		}
		var buf bytes.Buffer
		w := newTarWriter(&buf, time.Unix(1700000000, 0))
		if w.file(name, int64(len(data)), bytes.NewReader(data)) != nil || w.close() != nil {
			return // a name tar cannot hold
		}
		back, err := readAllTar(buf.Bytes())
		if err != nil || !sameFiles(back, []tarFile{{name: name, flag: tar.TypeReg, data: data}}) {
			t.Fatalf("wrote %q (%d bytes), read back %q: %v", name, len(data), back, err)
		}
	})
}

// withChecksums writes the right checksum into every block of b that is
// not zeros, so that changed header fields are read rather than refused
// for their checksum (content blocks change too, alike for both readers).
func withChecksums(b []byte) {
	for off := 0; off+block <= len(b); off += block {
		h := b[off : off+block]
		if allZero(h) {
			continue
		}
		sum := 0
		for i, c := range h {
			if i >= 148 && i < 156 {
				c = ' '
			}
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
}

// refTar reads the regular files and directories of an archive with
// archive/tar, refusing any other kind of entry as the bundle reader does.
func refTar(b []byte) ([]tarFile, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	return collect(tr, func() (tarFile, bool, error) {
		h, err := tr.Next()
		switch {
		case err != nil:
			return tarFile{}, false, err
		case h.Typeflag == tar.TypeXGlobalHeader:
			return tarFile{}, true, nil // the bundle reader reads it, and uses nothing of it
		case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir:
			return tarFile{}, false, errors.New("type " + string(h.Typeflag))
		}
		return tarFile{name: h.Name, flag: h.Typeflag}, false, nil
	})
}

func sameFiles(a, b []tarFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || a[i].flag != b[i].flag || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

// TestTarNumbersAreDigits: a sign in a header's size or checksum field is
// refused, as archive/tar refuses it: "+01234" means what "001234" means,
// so accepting it would let a header byte change and the archive read the
// same, which this reader exists to prevent.
func TestTarNumbersAreDigits(t *testing.T) {
	good := build(t, []tarFile{{name: "oci-layout", flag: tar.TypeReg, data: []byte("x")}})
	if _, err := readAllTar(good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		at    int
	}{{"size", 124}, {"checksum", 148}} {
		b := bytes.Clone(good)
		if b[c.at] != '0' {
			t.Fatalf("%s field %q has no leading zero", c.field, b[c.at:c.at+8])
		}
		b[c.at] = '+'
		if c.field != "checksum" {
			sum := 0
			for i, x := range b[:block] {
				if i >= 148 && i < 156 {
					x = ' '
				}
				sum += int(x)
			}
			copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
		}
		if files, err := readAllTar(b); !errors.Is(err, errTar) {
			t.Errorf("a sign in the %s field: read %q, %v", c.field, files, err)
		}
	}
}

// rawHeader is a header block as written by tar writers archive/tar cannot
// be made to imitate (a NUL in a long name, the legacy flag, star: a
// shorter prefix, then access and change times, and a trailer).
func rawHeader(name string, size int, flag byte, magic, prefix string, star bool) []byte {
	b := make([]byte, block)
	copy(b, name)
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	b[156] = flag
	copy(b[257:], magic)
	copy(b[345:], prefix)
	if star {
		copy(b[508:], "tar\x00")
	}
	withChecksums(b)
	return b
}

// TestTarReadsAsArchiveTar: archives whose entries the bundle reader took
// for other files than archive/tar does are refused, or read alike.
func TestTarReadsAsArchiveTar(t *testing.T) {
	gnu, ustar := "ustar  \x00", "ustar\x0000"
	padded := func(s string) []byte { return append([]byte(s), make([]byte, padding(int64(len(s))))...) }
	end := make([]byte, 2*block)
	long := "index.json\x00junk"
	for name, archive := range map[string][]byte{
		"a NUL inside a GNU long name": slices.Concat(rawHeader("././@LongLink", len(long), 'L', gnu, "", false), padded(long),
			rawHeader("x", 2, '0', gnu, "", false), padded("{}"), end),
		"a legacy entry named as a directory": slices.Concat(rawHeader("blobs/", 0, 0, "", "", false), end),
		"a star prefix":                       slices.Concat(rawHeader("index.json", 2, '0', ustar, strings.Repeat("a", 131)+"00000000000\x0000000000000\x00", true), padded("{}"), end),
	} {
		got, err := readAllTar(archive)
		want, werr := refTar(archive)
		if werr != nil {
			t.Fatalf("%s: archive/tar refuses it: %v", name, werr)
		}
		if err == nil && !sameFiles(got, want) {
			t.Errorf("%s: read as %q; archive/tar reads %q", name, got, want)
		}
	}
}
