package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/postgres"
)

// cutter forwards TCP connections to a server and can drop them all at
// once, as a server crash or a restart does: the client sees its socket
// closed with no goodbye from PostgreSQL.
type cutter struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, to string) *cutter { return newProxy(t, to, nil) }

// newProxy is newCutter whose client-to-server bytes go through up
// (nil: copied as they are).
func newProxy(t *testing.T, to string, up func(out io.Writer, in io.Reader)) *cutter {
	if up == nil {
		up = func(out io.Writer, in io.Reader) { io.Copy(out, in) }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { up(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// TestConnectionLossIsUnavailable: when the connections under the pool die
// (the server restarted, crashed, or a proxy in between dropped them), a
// call either succeeds on a fresh connection or fails with ErrUnavailable
// (503): never an unclassified error, which the registry answers with 500.
func TestConnectionLossIsUnavailable(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	c := newCutter(t, u.Host)
	u.Host = c.ln.Addr().String()
	s := open(t, u.String())
	defer s.Close()
	ctx := t.Context()
	d := digest.FromBytes(digest.SHA256, []byte("x"))
	calls := []struct {
		name string
		fn   func() error
	}{
		{"ResolveTag", func() error { _, err := s.ResolveTag(ctx, "r/x", "t"); return err }},
		{"LinkBlob", func() error { return s.LinkBlob(ctx, "r/x", d, 1) }},
		{"GetUpload", func() error { _, err := s.GetUpload(ctx, "u"); return err }},
		{"ListRepositories", func() error { _, err := s.ListRepositories(ctx, "", 10); return err }},
	}
	bad := 0
	for round := 0; round < 5; round++ {
		for _, call := range calls {
			// Warm the pool, then drop its connections and call at once
			// (within a second, so the pool does not ping first).
			if err := call.fn(); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s before the cut: %v", call.name, err)
			}
			c.cut()
			time.Sleep(5 * time.Millisecond) // let the closes reach the pool's sockets
			err := call.fn()
			if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrUnavailable) {
				bad++
				t.Errorf("%s after the connections dropped: %v, want success or ErrUnavailable", call.name, err)
			}
		}
	}
	if bad > 0 {
		t.Logf("%d of %d calls after a cut failed unclassified", bad, 5*len(calls))
	}
}

// TestSilentServerIsBounded: a server that accepts connections and never
// answers (hung, or a proxy whose backend is gone) fails Open with
// ErrUnavailable after the default connect timeout instead of holding the
// caller; every request that needs a new connection gets the same bound.
func TestSilentServerIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := postgres.Open(context.Background(), "postgres://postgres@"+ln.Addr().String()+"/packreg?sslmode=disable")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("Open of a silent server: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took < postgres.DefaultConnectTimeout-time.Second {
			t.Fatalf("Open gave up after %s, before the connect timeout", took)
		}
	case <-time.After(postgres.DefaultConnectTimeout + 10*time.Second):
		t.Fatalf("Open of a silent server still waiting after %s", postgres.DefaultConnectTimeout+10*time.Second)
	}
}
