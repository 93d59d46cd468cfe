package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// rcvLowat is c's SO_RCVLOWAT.
func rcvLowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	sc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var gerr error
	if err := sc.Control(func(fd uintptr) {
		n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return n
}

// lowatWriter takes what SendTo splices, noting the source socket's
// low-water mark at each ReadFrom; once it holds release bytes it
// closes released.
type lowatWriter struct {
	t        *testing.T
	buf      bytes.Buffer
	marks    []int
	release  int
	released chan struct{}
}

func (w *lowatWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *lowatWriter) ReadFrom(r io.Reader) (int64, error) {
	w.marks = append(w.marks, rcvLowat(w.t, r.(*io.LimitedReader).R.(*net.TCPConn)))
	var n int64
	p := make([]byte, 64<<10)
	for {
		m, err := r.Read(p)
		w.buf.Write(p[:m])
		n += int64(m)
		if w.buf.Len() >= w.release && w.released != nil {
			close(w.released)
			w.released = nil
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// TestSpliceLowat: a spliced body is read at a 1 MiB low-water mark
// (spliceLowat) until its last MiB, which goes at the default mark, as
// does the socket after it. The server here keeps the connection open
// and holds back the last 1,000 bytes until the rest has reached the
// client: read at the 1 MiB mark, they would never wake the reader.
func TestSpliceLowat(t *testing.T) {
	const size, tail = 3 << 20, 1000
	data := randomBytes(74, size)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	w := &lowatWriter{t: t, release: size - tail, released: make(chan struct{})}
	released := w.released
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if readRequest(c) != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nEtag: \"e\"\r\n\r\n", size)
		c.Write(data[:size-tail])
		select {
		case <-released:
		case <-done:
			return
		}
		c.Write(data[size-tail:])
		<-done // kept open: no EOF wakes the reader
	}()
	s, err := New(context.Background(), Config{Bucket: "fake", Endpoint: "http://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	// A reader stuck on the tail fails when the context ends, not the suite.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := s.openObject(ctx, "k", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, ok := r.body.(*rawBody)
	if !ok {
		t.Fatalf("body %T, want the raw GET's", r.body)
	}
	sent, err := r.SendTo(w, size)
	if err != nil || sent != size || !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("sent %d of %d (%v), %d bytes that differ", sent, size, err, w.buf.Len())
	}
	if len(w.marks) != 2 || w.marks[0] != spliceLowat || w.marks[1] != 1 {
		t.Fatalf("low-water marks %v, want [%d 1]", w.marks, spliceLowat)
	}
	if got := rcvLowat(t, raw.conn); got != 1 {
		t.Fatalf("mark %d after the body, want 1", got)
	}
}
