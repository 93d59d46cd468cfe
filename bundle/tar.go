package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The tar reader is packreg's own rather than archive/tar's: a bundle is
// hostile input, and archive/tar reads more than a bundle may hold (links,
// devices, sparse files, global headers) while checking less than a
// bundle must (the bytes between entries and after the end are skipped
// unread, and a checksum field reads the same with its terminators
// swapped, so a changed byte there would go unnoticed). This one reads
// what tar writers produce for regular files and directories (ustar and
// its GNU and PAX extensions for long names and large sizes), checks every
// byte of every header, of the padding and of the end, and refuses the
// rest by name.

const block = 512

// Entry types a bundle may hold.
const (
	entryFile = iota
	entryDir
)

// tarEntry is one entry of the archive.
type tarEntry struct {
	Name string
	Type int
	Size int64
}

// tarReader reads an archive from r entry by entry.
type tarReader struct {
	r       io.Reader
	buf     [block]byte
	left    int64 // content bytes of the current entry not read yet
	pad     int64 // its padding after them
	done    bool
	entries int
}

func newTarReader(r io.Reader) *tarReader { return &tarReader{r: r} }

// errTar is wrapped by every reason the archive is refused.
var errTar = errors.New("not a well-formed tar archive")

func tarErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errTar, fmt.Sprintf(format, args...))
}

// Read reads the content of the current entry.
func (t *tarReader) Read(p []byte) (int, error) {
	if t.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	t.left -= int64(n)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A compressed stream cut short.
		return n, tarErr("the archive ends inside an entry")
	case err == io.EOF:
		if t.left > 0 {
			return n, tarErr("the archive ends inside an entry")
		}
		err = nil
	}
	return n, err
}

// next skips what is left of the current entry and reads the next
// header. It returns io.EOF at the end of the archive, once it has checked
// that nothing but zeros follows.
func (t *tarReader) next() (*tarEntry, error) {
	if t.done {
		return nil, io.EOF
	}
	if t.left > 0 {
		if _, err := io.Copy(io.Discard, t); err != nil {
			return nil, err
		}
	}
	if err := t.zeros(t.pad, "the padding after an entry"); err != nil {
		return nil, err
	}
	t.pad = 0
	var (
		longName string
		pax      map[string]string
	)
	for {
		if err := t.readBlock(); err != nil {
			return nil, err
		}
		if allZero(t.buf[:]) {
			// The end: a second zero block, then nothing but zeros (tar
			// pads the archive to its record size).
			if err := t.readBlock(); err != nil {
				return nil, tarErr("the archive ends after one of its two end blocks")
			}
			if !allZero(t.buf[:]) {
				return nil, tarErr("a zero block followed by data: an empty header")
			}
			if err := t.trailer(); err != nil {
				return nil, err
			}
			t.done = true
			if longName != "" || pax != nil {
				return nil, tarErr("the archive ends after an extended header")
			}
			return nil, io.EOF
		}
		h, err := parseHeader(t.buf[:])
		if err != nil {
			return nil, err
		}
		switch h.flag {
		case 'x', 'g', 'L':
			if h.size > 1<<20 {
				return nil, tarErr("an extended header of %d bytes", h.size)
			}
			data := make([]byte, h.size)
			if _, err := io.ReadFull(t.r, data); err != nil {
				return nil, tarErr("the archive ends inside an extended header")
			}
			if err := t.zeros(padding(h.size), "the padding after an extended header"); err != nil {
				return nil, err
			}
			switch h.flag {
			case 'L':
				// tar tools end the name at its first NUL: what follows
				// would be read by us and by nobody else.
				longName = strings.TrimRight(string(data), "\x00")
				if strings.Contains(longName, "\x00") {
					return nil, tarErr("a long name with a NUL inside")
				}
			case 'x':
				if pax, err = parsePAX(data, true); err != nil {
					return nil, err
				}
			case 'g':
				if _, err := parsePAX(data, false); err != nil {
					return nil, err
				}
			}
			continue
		}
		e := &tarEntry{Name: h.name, Size: h.size}
		if longName != "" {
			e.Name = longName
		}
		if p, ok := pax["path"]; ok {
			e.Name = p
		}
		if s, ok := pax["size"]; ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return nil, tarErr("PAX size %q", clip(s))
			}
			e.Size = n
		}
		switch {
		case h.flag == '5' || h.flag == 0 && strings.HasSuffix(e.Name, "/"):
			// The legacy flag marks a directory by the name's slash alone,
			// as tar tools read it.
			e.Type = entryDir
			if e.Size != 0 {
				return nil, tarErr("directory %q with %d bytes of content", clip(e.Name), e.Size)
			}
		case h.flag == '0' || h.flag == 0:
			e.Type = entryFile
		default:
			return nil, tarErr("entry %q is a %s: a bundle holds regular files and directories only", clip(e.Name), typeName(h.flag))
		}
		t.entries++
		t.left, t.pad = e.Size, padding(e.Size)
		return e, nil
	}
}

func (t *tarReader) readBlock() error {
	if _, err := io.ReadFull(t.r, t.buf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return tarErr("the archive ends without its end blocks (truncated?)")
		}
		return err
	}
	return nil
}

// zeros reads n bytes that must all be zero.
func (t *tarReader) zeros(n int64, what string) error {
	for n > 0 {
		k := min(n, block)
		if _, err := io.ReadFull(t.r, t.buf[:k]); err != nil {
			return tarErr("the archive ends inside %s", what)
		}
		if !allZero(t.buf[:k]) {
			return tarErr("%s is not zeros", what)
		}
		n -= k
	}
	return nil
}

// trailer reads the rest of the stream, which must be zeros.
func (t *tarReader) trailer() error {
	for {
		n, err := t.r.Read(t.buf[:])
		if !allZero(t.buf[:n]) {
			return tarErr("data after the end of the archive")
		}
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return tarErr("the compressed stream is cut short after the end of the archive")
		}
		if err != nil {
			return err
		}
	}
}

func padding(size int64) int64 { return (block - size%block) % block }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// header is what parseHeader reads of one header block.
type header struct {
	name string
	size int64
	flag byte
}

// parseHeader reads a ustar, GNU or old-style header block, checking its
// checksum and the form of the checksum field.
func parseHeader(b []byte) (*header, error) {
	chk := b[148:156]
	// Every writer of note (GNU, BSD, Go, Python) writes six octal
	// digits, a NUL and a space; nothing else is read, so that changing
	// any byte of the field changes what it says.
	if chk[6] != 0 || chk[7] != ' ' {
		return nil, tarErr("a header's checksum field is not six octal digits, NUL, space")
	}
	want, err := octal(chk[:6])
	if err != nil || strings.ContainsAny(string(chk[:6]), " \x00") {
		return nil, tarErr("a header's checksum field is not six octal digits")
	}
	var sum int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	if sum != want {
		return nil, tarErr("a header's checksum does not match: the header was changed")
	}
	h := &header{flag: b[156], name: cstring(b[0:100])}
	if string(b[257:263]) == "ustar\x00" {
		prefix := b[345:500]
		if string(b[508:512]) == "tar\x00" {
			prefix = b[345:476] // star's header: times follow a shorter prefix
		}
		if p := cstring(prefix); p != "" {
			h.name = p + "/" + h.name
		}
	}
	if h.size, err = number(b[124:136]); err != nil || h.size < 0 {
		return nil, tarErr("entry %q: size field: %v", clip(h.name), err)
	}
	return h, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// number reads a numeric field: octal (spaces and NULs around it), or
// base-256 for sizes beyond 8 GiB (GNU).
func number(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0] != 0x80 {
			return 0, errors.New("a negative or oversized base-256 number")
		}
		var n uint64
		for _, c := range b[1:] {
			if n>>55 != 0 {
				return 0, errors.New("base-256 number out of range")
			}
			n = n<<8 | uint64(c)
		}
		return int64(n), nil
	}
	return octal(b)
}

// octal reads digits only: ParseInt would take a sign too, and "+01234"
// means what "001234" means, so a changed header byte would go unnoticed.
func octal(b []byte) (int64, error) {
	s := strings.Trim(string(b), " \x00")
	if strings.Trim(s, "01234567") != "" {
		return 0, fmt.Errorf("%q is not an octal number", clip(s))
	}
	if s == "" {
		return 0, nil
	}
	return strconv.ParseInt(s, 8, 64)
}

// parsePAX reads PAX records ("len key=value\n"). In an entry's own
// header (local) path and size are used; other keys are metadata the
// bundle does not use, except those that change how content is read.
func parsePAX(b []byte, local bool) (map[string]string, error) {
	out := map[string]string{}
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, tarErr("a malformed PAX record")
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+2 || n > len(b) || b[n-1] != '\n' {
			return nil, tarErr("a malformed PAX record")
		}
		kv := string(b[sp+1 : n-1])
		b = b[n:]
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, tarErr("a PAX record without '='")
		}
		switch {
		case strings.HasPrefix(k, "GNU.sparse."):
			return nil, tarErr("a sparse entry: a bundle holds regular files only")
		case k == "path" || k == "size":
			if !local {
				return nil, tarErr("a global PAX header that sets %s", k)
			}
			out[k] = v
		}
	}
	return out, nil
}

func typeName(f byte) string {
	switch f {
	case '1':
		return "hard link"
	case '2':
		return "symbolic link"
	case '3':
		return "character device"
	case '4':
		return "block device"
	case '6':
		return "FIFO"
	case 'S':
		return "sparse file"
	case 'K':
		return "long link name"
	}
	return fmt.Sprintf("entry of type %q", f)
}

// tarWriter writes a bundle as archive/tar writes a ustar archive (PAX
// only for a blob over 8 GiB): one header and the padded content per
// file, two zero blocks at the end.
type tarWriter struct {
	tw      *tar.Writer
	modTime time.Time
}

func newTarWriter(w io.Writer, modTime time.Time) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), modTime: modTime.UTC().Truncate(time.Second)}
}

// maxUSTARSize is the largest size a ustar header holds (11 octal digits).
const maxUSTARSize = 1<<33 - 1

// file writes one file of size bytes read from r.
func (w *tarWriter) file(name string, size int64, r io.Reader) error {
	h := &tar.Header{Name: name, Size: size, Mode: 0o644, ModTime: w.modTime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
	if size > maxUSTARSize {
		h.Format = tar.FormatPAX
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.CopyN(w.tw, r, size)
	if err != nil {
		return fmt.Errorf("%s: %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

func (w *tarWriter) close() error { return w.tw.Close() }

// tarSize is the length of the archive tarWriter writes of files of these
// sizes, or -1 when a PAX header makes it longer.
func tarSize(sizes []int64) int64 {
	total := int64(2 * block)
	for _, s := range sizes {
		if s > maxUSTARSize {
			return -1
		}
		total += block + s + padding(s)
	}
	return total
}
