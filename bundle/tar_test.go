package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readAllTar reads every entry of an archive with the bundle's tar reader,
// content included.
func readAllTar(b []byte) (files []tarFile, err error) {
	tr := newTarReader(bytes.NewReader(b))
	for {
		e, err := tr.next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		flag := byte(tar.TypeReg)
		if e.Type == entryDir {
			flag = tar.TypeDir
		}
		files = append(files, tarFile{name: e.Name, flag: flag, data: data})
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
	var out []tarFile
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // the bundle reader reads it, and uses nothing of it
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			return nil, errors.New("type " + string(h.Typeflag))
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, tarFile{name: h.Name, flag: h.Typeflag, data: data})
	}
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
