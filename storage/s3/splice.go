package s3

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/packreg/packreg/storage"
)

// A blob GET from a plain http:// endpoint can pass its bytes from the S3
// socket to the client's socket inside the kernel (splice(2)): the SDK's
// body is an http.Response body, which the registry must read into user
// space and write out again, two copies of every byte and most of a pull's
// CPU. rawGet sends the (presigned) GET on a connection it dials and
// owns, reads the status line and headers itself, and leaves the
// connection positioned at the first byte of the body; objectReader.SendTo
// then hands that connection, limited to the bytes the answer promised, to
// the writer's ReadFrom, which net/http passes to (*net.TCPConn).ReadFrom,
// which splices. Anything unexpected before the first byte (a refused
// dial, a status other than the one asked for, a chunked or oversized
// answer) falls back to the SDK's GET, which has the retries and the
// error decoding.

const (
	// maxRawHeader caps what an S3 answer's status line and headers may
	// take: S3 sends well under 2 KiB.
	maxRawHeader     = 32 << 10
	rawDialTimeout   = 10 * time.Second
	rawHeaderTimeout = 30 * time.Second
)

// spliceLowat is the receive low-water mark (SO_RCVLOWAT) of a raw GET's
// socket while its body is spliced: the size of the pipe net's splice
// moves per call (1 MiB). By default every segment S3 sends wakes the
// registry's poller, most of them for nothing while the splice is busy
// sending to the client: a 512 MiB pull from versitygw on loopback woke
// packreg ~3,000 times, and with the mark about a third fewer times,
// 5-20% faster (64 MiB gains most: the kernel also grows a new
// connection's receive buffer to hold the mark at once, where
// autotuning starts at 128 KiB).
const spliceLowat = 1 << 20

var errRawHeaderTooLarge = errors.New("s3: answer header over 32 KiB")

// spliceEndpoint reports whether reads of cfg may take the raw path: a
// plain http:// endpoint (no splice through TLS), not turned off, and no
// read-ahead (which reads into its own buffers).
func spliceEndpoint(cfg Config) bool {
	return !cfg.NoSplice && cfg.ReadAhead == 0 && strings.HasPrefix(cfg.Endpoint, "http://")
}

// rawBody is the body of an answer read by rawGet: left bytes, first
// those br buffered past the headers, then the connection's.
type rawBody struct {
	conn *net.TCPConn
	br   *bufio.Reader
	left int64
	stop func() bool // unregisters the context's deadline-setter
}

// rawGet GETs key from offset on a fresh connection to the configured
// endpoint. It returns the body, the ETag and the object's size. An error
// means nothing was read from the body: the caller falls back to the SDK.
func (s *Store) rawGet(ctx context.Context, key string, offset int64) (*rawBody, string, int64, error) {
	start := time.Now()
	in := &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	req, err := s.presign.PresignGetObject(context.WithValue(ctx, unobserved{}, true), in, s3.WithPresignExpires(time.Minute))
	if err != nil {
		return nil, "", 0, err
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, "", 0, err
	}
	// Bound to the origin: the request goes to the configured endpoint
	// only, whatever the SDK's endpoint rules made of it.
	ep, err := url.Parse(s.cfg.Endpoint)
	if err != nil || u.Scheme != "http" || u.Host != ep.Host {
		return nil, "", 0, fmt.Errorf("s3: raw get: url %s is not on endpoint %s", u.Redacted(), s.cfg.Endpoint)
	}
	d := net.Dialer{Timeout: rawDialTimeout}
	c, err := d.DialContext(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, "", 0, err
	}
	conn := c.(*net.TCPConn)
	// A cancelled request unblocks whatever waits on the connection, the
	// header read here or a splice later.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*rawBody, string, int64, error) {
		stop()
		conn.Close()
		return nil, "", 0, err
	}
	conn.SetDeadline(time.Now().Add(rawHeaderTimeout))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	for k, vs := range req.SignedHeader {
		if strings.EqualFold(k, "Host") {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(k+v, "\r\n") {
				return fail(fmt.Errorf("s3: raw get: header %q has a line break", k))
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return fail(err)
	}
	hr := &headerReader{r: conn, left: maxRawHeader}
	br := bufio.NewReaderSize(hr, maxRawHeader)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		if hr.left <= 0 {
			err = errRawHeaderTooLarge
		}
		return fail(fmt.Errorf("s3: raw get %s: %w", key, err))
	}
	size, err := rawSize(resp, offset)
	if err != nil {
		return fail(fmt.Errorf("s3: raw get %s: %w", key, err))
	}
	hr.left = -1 // the body: no cap but left
	conn.SetDeadline(time.Time{})
	// Observed as the SDK's GETs are (until the headers); one that failed
	// is not: the SDK's GET after it is.
	if fn := s.obs.Load(); fn != nil {
		(*fn)("GetObject", time.Since(start), nil)
	}
	return &rawBody{conn: conn, br: br, left: resp.ContentLength, stop: stop}, resp.Header.Get("Etag"), size, nil
}

// rawSize checks that resp is the answer to a GET from offset with a
// body of known length, and returns the object's size.
func rawSize(resp *http.Response, offset int64) (int64, error) {
	if len(resp.TransferEncoding) > 0 || resp.ContentLength < 0 {
		return 0, errors.New("answer has no Content-Length")
	}
	switch {
	case resp.StatusCode == http.StatusOK && offset == 0:
		return resp.ContentLength, nil
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		// "bytes a-b/total": the rest of the object from offset.
		cr, ok := strings.CutPrefix(resp.Header.Get("Content-Range"), "bytes ")
		span, total, ok2 := strings.Cut(cr, "/")
		a, b, ok3 := strings.Cut(span, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		size, err3 := strconv.ParseInt(total, 10, 64)
		if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil || err3 != nil ||
			first != offset || last != size-1 || resp.ContentLength != last-first+1 {
			return 0, fmt.Errorf("answer range %q for offset %d, Content-Length %d", resp.Header.Get("Content-Range"), offset, resp.ContentLength)
		}
		return size, nil
	}
	return 0, fmt.Errorf("answer status %d for offset %d", resp.StatusCode, offset)
}

// hostPort is the address to dial for plain-http URL u.
func hostPort(u *url.URL) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return u.Host
}

// headerReader lets through left bytes, then fails: bufio may read past
// the headers, so a cap on it caps them. A negative left is no cap.
type headerReader struct {
	r    io.Reader
	left int
}

func (h *headerReader) Read(p []byte) (int, error) {
	if h.left < 0 {
		return h.r.Read(p)
	}
	if h.left == 0 {
		return 0, errRawHeaderTooLarge
	}
	n, err := h.r.Read(p[:min(len(p), h.left)])
	h.left -= n
	return n, err
}

func (b *rawBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n, err := b.br.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// sendTo writes the next n bytes (at most left) to w: what bufio holds
// with Write, the rest from the connection through rf, which splices when
// w is a net/http response on a plain TCP connection. Fewer than n bytes
// sent means the body broke (or the writer did).
func (b *rawBody) sendTo(w io.Writer, rf io.ReaderFrom, n int64) (int64, error) {
	n = min(n, b.left)
	var sent int64
	if k := min(int64(b.br.Buffered()), n); k > 0 {
		p, _ := b.br.Peek(int(k))
		m, err := w.Write(p)
		b.br.Discard(m)
		sent += int64(m)
		b.left -= int64(m)
		if err != nil {
			return sent, err
		}
	}
	if sent == n {
		return sent, nil
	}
	// While more than spliceLowat of the body is still to come, the
	// socket wakes the splice only once a pipe's worth is queued; the
	// rest goes at the default low-water mark, else its last bytes
	// could wait for more that never comes.
	if k := min(n-sent, b.left-spliceLowat); k > 0 {
		setRcvLowat(b.conn, spliceLowat)
		m, err := rf.ReadFrom(&io.LimitedReader{R: b.conn, N: k})
		setRcvLowat(b.conn, 1)
		sent += m
		b.left -= m
		if err != nil || m < k {
			return sent, err
		}
	}
	m, err := rf.ReadFrom(&io.LimitedReader{R: b.conn, N: n - sent})
	sent += m
	b.left -= m
	return sent, err
}

func (b *rawBody) Close() error {
	b.stop()
	return b.conn.Close()
}

var _ storage.BlobSender = (*objectReader)(nil)

// SendTo sends up to n next bytes to w from the raw connection when the
// reader has one and w can take it (storage.BlobSender); otherwise it
// sends nothing. When the body breaks it stops, and Read resumes from
// there with a ranged GET, as it does for a broken SDK body.
func (r *objectReader) SendTo(w io.Writer, n int64) (int64, error) {
	raw, ok := r.body.(*rawBody)
	rf, ok2 := w.(io.ReaderFrom)
	if !ok || !ok2 {
		return 0, nil
	}
	n = min(n, r.end-r.pos)
	sent, err := raw.sendTo(w, rf, n)
	r.pos += sent
	if sent == n {
		return sent, err
	}
	r.body.Close()
	r.body = nil
	if cerr := r.ctx.Err(); cerr != nil {
		return sent, cerr
	}
	// The client's side failing fails the next write too; S3's is resumed.
	return sent, nil
}
