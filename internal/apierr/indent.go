package apierr

import (
	"io"
	"sync"
)

// indenter writes the compact JSON that encoding/json's Encoder produces
// indented as Encoder.SetIndent("", "  ") would, byte for byte, as it
// streams through: the Encoder with SetIndent builds the whole indented
// copy (and the copies it outgrew) before writing a byte, a few MiB of
// heap for a 1,000-item page, a fifth of the packs suite's peak RSS in the
// bench. The input is valid JSON (the Encoder checked it), so only strings
// need tracking; whitespace outside strings (the Encoder's final newline)
// is dropped and the newline written by finish.
type indenter struct {
	w       io.Writer
	out     []byte  // written to w when full, and by Close
	pooled  *[]byte // out's holder in indentBufs, given back by release
	depth   int
	pending bool // after { or [: indent unless the next byte closes it
	inStr   bool
	esc     bool
	err     error
	wrote   bool // something reached w
}

// indentChunk is how much the indenter gathers per Write to w.
const indentChunk = 8 << 10

var indentBufs = sync.Pool{New: func() any { b := make([]byte, 0, indentChunk); return &b }}

func newIndenter(w io.Writer) *indenter {
	b := indentBufs.Get().(*[]byte)
	return &indenter{w: w, out: (*b)[:0], pooled: b}
}

func (in *indenter) Write(p []byte) (int, error) {
	for _, c := range p {
		if in.inStr {
			in.out = append(in.out, c)
			switch {
			case in.esc:
				in.esc = false
			case c == '\\':
				in.esc = true
			case c == '"':
				in.inStr = false
			}
		} else {
			in.punct(c)
		}
		if len(in.out) >= indentChunk {
			in.flush()
		}
	}
	return len(p), in.err
}

// WriteString is Write for the punctuation a Streamer writes between its
// parts, which io.WriteString would otherwise copy to the heap each time;
// the copy here stays on the stack.
func (in *indenter) WriteString(s string) (int, error) {
	n := len(s)
	for len(s) > 0 {
		var b [32]byte
		k := copy(b[:], s)
		if _, err := in.Write(b[:k]); err != nil {
			return n - len(s), err
		}
		s = s[k:]
	}
	return n, in.err
}

// punct handles byte c outside strings as encoding/json's appendIndent does.
func (in *indenter) punct(c byte) {
	switch c {
	case ' ', '\t', '\r', '\n':
		return
	}
	if in.pending && c != '}' && c != ']' {
		in.pending = false
		in.depth++
		in.newline()
	}
	switch c {
	case '"':
		in.inStr = true
		in.out = append(in.out, c)
	case '{', '[':
		in.pending = true // {} and [] stay on one line
		in.out = append(in.out, c)
	case ',':
		in.out = append(in.out, c)
		in.newline()
	case ':':
		in.out = append(in.out, c, ' ')
	case '}', ']':
		if in.pending {
			in.pending = false
		} else {
			in.depth--
			in.newline()
		}
		in.out = append(in.out, c)
	default:
		in.out = append(in.out, c)
	}
}

func (in *indenter) newline() {
	in.out = append(in.out, '\n')
	for range in.depth {
		in.out = append(in.out, ' ', ' ')
	}
}

func (in *indenter) flush() {
	if in.err == nil && len(in.out) > 0 {
		in.wrote = true
		_, in.err = in.w.Write(in.out)
	}
	in.out = in.out[:0]
}

// finish writes the final newline and what is left.
func (in *indenter) finish() error {
	in.out = append(in.out, '\n')
	in.flush()
	return in.err
}

// release returns the buffer to the pool in the holder it came in: the
// pool must not hold a pointer into the indenter, whose out is cleared
// here (the next indenter got an empty buffer, and read it while this
// one cleared it: a data race).
func (in *indenter) release() {
	if cap(in.out) <= 2*indentChunk { // a long unbroken string grew it: let it go
		*in.pooled = in.out[:0]
		indentBufs.Put(in.pooled)
	}
	in.out, in.pooled = nil, nil
}
