package mirror

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/internal/restclient"
)

// Credentials authenticate to a remote registry: basic (Username and
// Password, also used to obtain bearer tokens from the registry's token
// service) or a bearer Token used as it is. They format as "[redacted]"
// in logs and errors; only requests to the configured origin and to the
// token realms netguard.Binding allows carry them.
type Credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// Kind names the scheme for people: "basic", "bearer" or "none".
func (c Credentials) Kind() string {
	switch {
	case c.Token != "":
		return "bearer"
	case c.Username != "" || c.Password != "":
		return "basic"
	}
	return "none"
}

func (c Credentials) String() string       { return "[redacted " + c.Kind() + " credentials]" }
func (c Credentials) GoString() string     { return c.String() }
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// RemoteConfig says how to reach a remote registry.
type RemoteConfig struct {
	// URL is http://host:port or https://host:port (a path is ignored).
	URL         string
	Credentials Credentials
	// Insecure skips TLS certificate verification (self-signed test
	// registries); plain HTTP is chosen by the URL's scheme instead.
	Insecure bool
	// Timeout bounds every request but blob bodies (default 60s); blob
	// streams fail when no byte moves for StallTimeout (default 60s).
	Timeout      time.Duration
	StallTimeout time.Duration
	// AuthRealms are token realm origins, beyond the remote's own and its
	// registrable domain's, that may receive the credentials.
	AuthRealms []string
	UserAgent  string
	// Limits bound the work of one Remote (one run); zero values take
	// the defaults.
	Limits Limits
	// Classify replaces the address classification (tests, which can only
	// use loopback, declare some of it public).
	Classify netguard.Classifier
}

// Limits bound what one Remote, used for one run, does in all.
type Limits struct {
	// ListPages bounds the listing pages (tags, catalog, pack API) read,
	// all listings together (default 100,000).
	ListPages int
	// ListEntries bounds the names those pages hold, all together
	// (default 1,000,000).
	ListEntries int
}

// Defaults of Limits: a pack registry ten times larger than any we know
// lists within them; a remote that links to itself forever does not.
const (
	defaultListPages   = 100_000
	defaultListEntries = 1_000_000
)

// Size caps on what a remote may send. Manifests have the distribution
// cap; listings and tokens are small documents however large the registry.
const (
	maxManifestBytes = 4 << 20
	maxListingBytes  = 8 << 20
	maxTokenBytes    = 1 << 20
	maxTokenLen      = 16 << 10
	maxErrorBytes    = 64 << 10
	maxRedirects     = 5
)

// Remote is a registry over HTTP: a Source, a Sink (with Mounter and
// ReferrersIndexer) and a Cataloger, plus packreg's REST API when the
// remote is a packreg (remoteapi.go).
type Remote struct {
	base          *url.URL // scheme://host[:port]
	creds         Credentials
	binding       netguard.Binding // where creds may go
	client        *http.Client
	limits        Limits
	listedPages   atomic.Int64 // listing pages read, against limits
	listedEntries atomic.Int64 // names listed, against limits
	timeout       time.Duration
	stall         time.Duration
	ua            string

	mu         sync.Mutex
	tokens     map[string]string // repository ("" for registry scope) -> bearer token
	bearer     bool              // a bearer challenge was seen: stop sending basic
	referrers  *bool             // the referrers API answered (true) or 404ed (false)
	packreg    *bool             // /api/v1/packs answered like packreg
	realmWarns map[string]bool
}

// NewRemote returns a client for cfg.URL.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("mirror: remote URL %q: want http://host[:port] or https://host[:port]", cfg.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("mirror: remote URL %s: put credentials in the credentials, not the URL", u.Host)
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	binding := netguard.Binding{Origin: netguard.OriginOf(base)}
	for _, realm := range cfg.AuthRealms {
		o, err := netguard.ParseOrigin(realm)
		if err != nil {
			return nil, fmt.Errorf("mirror: auth realm %w", err)
		}
		binding.Realms = append(binding.Realms, o)
	}
	r := &Remote{
		base:       base,
		creds:      cfg.Credentials,
		binding:    binding,
		limits:     cfg.Limits,
		timeout:    cfg.Timeout,
		stall:      cfg.StallTimeout,
		ua:         cfg.UserAgent,
		tokens:     map[string]string{},
		realmWarns: map[string]bool{},
	}
	if r.timeout <= 0 {
		r.timeout = 60 * time.Second
	}
	if r.stall <= 0 {
		r.stall = 60 * time.Second
	}
	if r.ua == "" {
		r.ua = "packreg-mirror"
	}
	if r.limits.ListPages <= 0 {
		r.limits.ListPages = defaultListPages
	}
	if r.limits.ListEntries <= 0 {
		r.limits.ListEntries = defaultListEntries
	}
	tr := netguard.NewTransport(netguard.Config{
		Binding:               binding,
		TLS:                   &tls.Config{InsecureSkipVerify: cfg.Insecure, MinVersion: tls.VersionTLS12}, //nolint:gosec // the operator's explicit choice
		ResponseHeaderTimeout: r.timeout,
		Classify:              cfg.Classify,
	})
	r.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return r, nil
}

// Host is the remote's host:port, for logs and names.
func (r *Remote) Host() string { return r.base.Host }

// checkRedirect follows a few redirects (blob stores hand out presigned
// URLs). Where they may lead, and that they carry no credentials, is the
// transport's (netguard) to enforce.
func checkRedirect(_ *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrInvalid, maxRedirects)
	}
	return nil
}

// HTTPError is a remote's answer other than the one expected.
type HTTPError struct {
	Method, URL string
	Status      int
	Code        string // the first OCI or API error code, when the body had one
	Message     string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" || e.Message != "" {
		msg += ": " + strings.TrimSpace(e.Code+" "+e.Message)
	}
	return msg
}

// Unwrap maps statuses onto the package's sentinels.
func (e *HTTPError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrDenied
	}
	return nil
}

// Temporary reports whether a retry may succeed.
func (e *HTTPError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// statusError reads a failed answer's body (a little of it) into an HTTPError.
func statusError(resp *http.Response) error {
	defer resp.Body.Close()
	e := &HTTPError{Method: resp.Request.Method, URL: redactQuery(resp.Request.URL), Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var env struct {
		Errors []struct{ Code, Message string } `json:"errors"`
		Error  *struct{ Code, Message string }  `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil {
		switch {
		case len(env.Errors) > 0:
			e.Code, e.Message = env.Errors[0].Code, env.Errors[0].Message
		case env.Error != nil:
			e.Code, e.Message = env.Error.Code, env.Error.Message
		}
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "..."
	}
	return e
}

// redactQuery drops the query of URLs quoted in errors: upload locations
// and presigned URLs carry state and signatures there.
func redactQuery(u *url.URL) string { return netguard.Redact(u) }

// redactErr takes the URL out of the transport's errors (a *url.Error
// quotes the URL it failed on: after a redirect, a presigned one).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = netguard.Redact(u)
		} else {
			ue.URL = "(unparsable URL)"
		}
	}
	return err
}

// request is one call to the remote.
type request struct {
	method string
	path   string // /v2/... or an absolute URL (upload locations)
	query  url.Values
	header http.Header
	body   []byte    // replayable body, or
	stream io.Reader // a one-shot body of length size
	size   int64
	repo   string // token scope: the repository, "" for the registry
	push   bool   // the scope needs push
	// long marks blob transfers: no overall timeout, a stall timeout instead.
	long bool
	// trail is the chain the request continues (an upload Location goes
	// on the trail of the POST that gave it); nil starts a new one.
	trail *netguard.Trail
}

// do sends req, answering an authentication challenge once, and returns
// the response with a body the caller must close. Statuses are the
// caller's to judge. cancel releases the request's timer.
func (r *Remote) do(ctx context.Context, q request) (*http.Response, error) {
	var cancel context.CancelFunc
	if q.long {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
	}
	tr := q.trail
	if tr == nil {
		tr = netguard.NewTrail()
	}
	ctx = netguard.WithTrail(ctx, tr)
	u, err := r.base.Parse(q.path)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: a location that is no URL", ErrInvalid)
	}
	if len(q.query) > 0 {
		v := u.Query()
		for k, vs := range q.query {
			v[k] = vs
		}
		u.RawQuery = v.Encode()
	}
	var stall *stallTimer
	if q.long {
		stall = newStallTimer(r.stall, cancel)
	}
	resp, err := r.send(ctx, q, u, stall)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		resp, err = r.challenged(ctx, q, u, stall, tr, resp)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel, stall: stall}
	return resp, nil
}

// challenged answers a 401 and sends again when a token may help; it
// returns the 401 itself when not.
func (r *Remote) challenged(ctx context.Context, q request, u *url.URL, stall *stallTimer, tr *netguard.Trail, resp *http.Response) (*http.Response, error) {
	answered, err := r.answerChallenge(ctx, resp, q, tr)
	if err != nil || answered {
		resp.Body.Close()
	}
	switch {
	case err != nil:
		return nil, err
	case !answered:
		return resp, nil
	case q.stream != nil:
		// The body is gone; the caller retries with the token we now hold.
		return nil, fmt.Errorf("%w: %s %s needs a token; retrying", errRetryAuth, q.method, redactQuery(u))
	}
	return r.send(ctx, q, u, stall)
}

// errRetryAuth asks the retry loop to go again at once: authentication
// was settled, but a streamed body cannot be sent twice.
var errRetryAuth = errors.New("mirror: authenticated, retry")

func (r *Remote) send(ctx context.Context, q request, u *url.URL, stall *stallTimer) (*http.Response, error) {
	var body io.Reader
	switch {
	case q.stream != nil:
		body = q.stream
		if stall != nil {
			body = &stallReader{r: q.stream, t: stall}
		}
	case q.body != nil:
		body = bytes.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(ctx, q.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if q.stream != nil {
		req.ContentLength = q.size
		if q.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range q.header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", r.ua)
	r.authorize(req, q.repo)
	resp, err := r.client.Do(req)
	return resp, redactErr(err)
}

// authorize adds credentials to a request for the configured origin only.
func (r *Remote) authorize(req *http.Request, repo string) {
	if !r.binding.Home(req.URL) {
		return
	}
	if r.creds.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.creds.Token)
		return
	}
	r.mu.Lock()
	tok, bearer := r.tokens[repo], r.bearer
	r.mu.Unlock()
	switch {
	case tok != "":
		req.Header.Set("Authorization", "Bearer "+tok)
	case !bearer && r.creds.Username != "":
		req.SetBasicAuth(r.creds.Username, r.creds.Password)
	}
}

// answerChallenge handles a 401: a Basic challenge is answered by the
// credentials we already send, a Bearer one by a token from the realm. It
// reports whether sending again can help; a realm the network policy
// refuses is an error, so that the run says why rather than "401".
func (r *Remote) answerChallenge(ctx context.Context, resp *http.Response, q request, tr *netguard.Trail) (bool, error) {
	scheme, params := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	if scheme != "bearer" || r.creds.Token != "" {
		return false, nil
	}
	r.mu.Lock()
	r.bearer = true
	r.mu.Unlock()
	scope := params["scope"]
	if scope == "" && q.repo != "" {
		scope = "repository:" + q.repo + ":pull"
		if q.push {
			scope += ",push"
		}
	}
	// The realm is a hop of the challenged request's trail: it may not
	// lead from public to private, nor from https to http.
	tok, err := r.fetchToken(netguard.WithTrail(ctx, tr.Fork()), params["realm"], params["service"], scope)
	switch {
	case errors.Is(err, netguard.ErrRefused), errors.Is(err, ErrInvalid):
		return false, fmt.Errorf("token realm: %w", err)
	case err != nil:
		return false, nil
	}
	r.mu.Lock()
	r.tokens[q.repo] = tok
	r.mu.Unlock()
	return true, nil
}

// fetchToken runs the token flow. The credentials go to the realms the
// binding allows (the remote's origin, its registrable domain, the
// operator's list); another realm gets an anonymous request, which is
// enough for public content and leaks nothing.
func (r *Remote) fetchToken(ctx context.Context, realm, service, scope string) (string, error) {
	ru, err := url.Parse(realm)
	if err != nil || ru.Host == "" || (ru.Scheme != "http" && ru.Scheme != "https") {
		return "", fmt.Errorf("%w: token realm %q is no http(s) URL", ErrInvalid, clip(realm))
	}
	v := ru.Query()
	if service != "" {
		v.Set("service", service)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	ru.RawQuery = v.Encode()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", r.ua)
	if r.creds.Username != "" && r.binding.Realm(ru) {
		req.SetBasicAuth(r.creds.Username, r.creds.Password)
	} else if r.creds.Username != "" {
		r.mu.Lock()
		warn := !r.realmWarns[ru.Host]
		r.realmWarns[ru.Host] = true
		r.mu.Unlock()
		if warn {
			slog.Warn("mirror: token realm is on another host; asking it without credentials",
				"registry", r.base.Host, "realm", ru.Host)
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", statusError(resp)
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := readJSON(resp.Body, maxTokenBytes, &t); err != nil {
		return "", err
	}
	tok := t.Token // the spec's field; access_token is OAuth 2's name for it
	if tok == "" {
		tok = t.AccessToken
	}
	if !validToken(tok) {
		return "", fmt.Errorf("%w: the token realm answered no usable token (want 1 to %d characters of RFC 6750's token68)", ErrInvalid, maxTokenLen)
	}
	return tok, nil
}

// validToken reports whether tok can go in "Authorization: Bearer": the
// realm is the remote's to choose, and what it answers must not be able to
// shape our headers.
func validToken(tok string) bool {
	if tok == "" || len(tok) > maxTokenLen {
		return false
	}
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return false
	}
	for _, c := range body {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~+/", c)) {
			return false
		}
	}
	return true
}

// readJSON decodes at most limit bytes of r into v.
func readJSON(r io.Reader, limit int64, v any) error {
	b, err := readCapped(r, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// readCapped reads all of r, failing with ErrInvalid beyond limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := restclient.ReadCapped(r, limit)
	if errors.Is(err, restclient.ErrAnswer) {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrInvalid, limit)
	}
	return b, err
}

// cancelBody releases the request's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
	stall  *stallTimer
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.stall != nil {
		b.stall.poke()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	if b.stall != nil {
		b.stall.stop()
	}
	b.cancel()
	return err
}

// stallTimer cancels a blob transfer when no byte moved for a while: a
// long transfer has no overall deadline, but a dead peer must not hold a
// worker forever.
type stallTimer struct {
	d time.Duration
	t *time.Timer
}

func newStallTimer(d time.Duration, cancel context.CancelFunc) *stallTimer {
	return &stallTimer{d: d, t: time.AfterFunc(d, cancel)}
}

func (s *stallTimer) poke() { s.t.Reset(s.d) }
func (s *stallTimer) stop() { s.t.Stop() }

type stallReader struct {
	r io.Reader
	t *stallTimer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.poke()
	}
	return n, err
}
