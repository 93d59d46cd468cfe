// Package restclient is the one client of packreg's REST API (/api/v1/):
// it builds the request (server base, path, query), sends a JSON body,
// decodes a JSON answer, caps what it reads of an answer, and turns a
// refusal in the API's error shape into an *apierr.Error that keeps the
// status, code, message and details. Every REST client in packreg uses
// it: pack/client (packreg pack, packreg audit), mirror.Client (packreg
// mirror, packreg parity), the CLI's own commands (packreg keys, packreg
// verify) and the mirror's client of a remote packreg (its pack API,
// through the remote's guarded transport and credentials).
//
// Transport concerns (timeouts, credentials, where a request may go) are
// the Doer's: an *http.Client, or the mirror's remote, which sends through
// netguard.
//
// restclient imports internal/apierr only; it must not import registry,
// pack, attest, mirror, compliance or cmd.
package restclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
)

// Doer sends one request; *http.Client is one.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// DefaultMaxAnswer caps the body of one answer: a page of a listing at the
// API's largest page size fits many times over.
const DefaultMaxAnswer = 64 << 20

// ErrAnswer is an answer that is not what the API sends: a body over the
// cap, or one that does not decode. The server is broken or hostile;
// retrying does not help.
var ErrAnswer = errors.New("restclient: malformed answer")

// Client calls the API of one server.
type Client struct {
	base    string
	hc      Doer
	max     int64
	refusal func(*http.Response) error
}

// Option configures a Client.
type Option func(*Client)

// WithMaxAnswer caps the bytes read of one answer (default
// DefaultMaxAnswer).
func WithMaxAnswer(n int64) Option { return func(c *Client) { c.max = n } }

// WithRefusal replaces how a non-2xx answer becomes an error (default:
// the *apierr.Error it carries, else a *StatusError). fn reads what it
// needs of the body; the client closes it.
func WithRefusal(fn func(*http.Response) error) Option {
	return func(c *Client) { c.refusal = fn }
}

// New returns a client of the server at base (scheme://host[:port]); hc nil
// means http.DefaultClient.
func New(base string, hc Doer, opts ...Option) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(base, "/"), hc: hc, max: DefaultMaxAnswer}
	for _, o := range opts {
		o(c)
	}
	if c.refusal == nil {
		c.refusal = func(resp *http.Response) error { return Refusal(resp, c.max) }
	}
	return c
}

// Do sends in as a JSON body (none when nil) to path with query q, and
// decodes a 2xx answer into out (discarded when nil).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.NewRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	_, err = c.Send(req, out)
	return err
}

// NewRequest is a request for path with query q on the server, for bodies
// Do cannot send (a streamed multipart form); Send sends it.
func (c *Client) NewRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return http.NewRequestWithContext(ctx, method, u, body)
}

// Send sends req and decodes a 2xx answer into out (discarded when nil).
// It returns the answer's status, also with an error when there was an
// answer.
func (c *Client) Send(req *http.Request, out any) (int, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, c.refusal(resp)
	}
	b, err := ReadCapped(resp.Body, c.max)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w: %v", req.Method, req.URL.Path, ErrAnswer, err)
	}
	return resp.StatusCode, nil
}

// StatusError is a refusal without the API's error shape (a proxy's page,
// a server that is not packreg).
type StatusError struct {
	Method, Path string
	Status       int
	Body         string // its start, for people
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Refusal reads a non-2xx answer (at most max bytes of it) into an
// *apierr.Error with its status when it has the API's error shape, else
// into a *StatusError.
func Refusal(resp *http.Response, max int64) error {
	b, err := ReadCapped(resp.Body, max)
	var env apierr.Envelope
	if err == nil && json.Unmarshal(b, &env) == nil && env.Error != nil && env.Error.Code != "" {
		env.Error.Status = resp.StatusCode
		return env.Error
	}
	e := &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	if len(e.Body) > 200 {
		e.Body = e.Body[:200] + "..."
	}
	if resp.Request != nil {
		e.Method, e.Path = resp.Request.Method, resp.Request.URL.Path
	}
	return e
}

// ReadCapped reads all of r, failing with ErrAnswer beyond max bytes.
func ReadCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrAnswer, max)
	}
	return b, nil
}
