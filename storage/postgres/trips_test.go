package postgres_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/url"
	"sync/atomic"
	"testing"
)

// tripCounter counts the round trips the clients of a proxy (newProxy)
// to a PostgreSQL server start: a simple query ('Q') or the Sync ('S')
// that ends an extended-protocol exchange. Statements the store sends
// without its ObserveOps hook (BEGIN, a savepoint) count too.
type tripCounter struct{ trips atomic.Int64 }

// tripDSN returns dsn pointed at a tripCounter in front of its server.
func tripDSN(t *testing.T, dsn string) (string, *tripCounter) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c := &tripCounter{}
	u.Host = newProxy(t, u.Host, c.forward).ln.Addr().String()
	return u.String(), c
}

// forward copies the client's messages to the server, counting them: the
// startup message (length, body), then typed ones (type, length, body).
func (c *tripCounter) forward(out io.Writer, in io.Reader) {
	r := bufio.NewReader(in)
	typed := false
	for {
		var hdr [5]byte
		h := hdr[1:]
		if typed {
			h = hdr[:]
		}
		if _, err := io.ReadFull(r, h); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(h[len(h)-4:])) - 4
		if typed && (hdr[0] == 'Q' || hdr[0] == 'S') {
			c.trips.Add(1)
		}
		if _, err := out.Write(h); err != nil {
			return
		}
		if _, err := io.CopyN(out, r, n); err != nil {
			return
		}
		typed = true
	}
}
