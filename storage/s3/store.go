package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Store is a storage.BlobStore (and storage.Redirector,
// storage.UploadPurger, storage.Pinger and storage.OpsObservable) on one
// S3 bucket.
// It keeps no state of its own between calls but a cache of the tail
// segments it staged (tails.go): several Stores over one bucket, in one
// process or many, are one store.
type Store struct {
	cfg     Config
	client  *s3.Client
	presign *s3.PresignClient
	// direct sends the calls of a small push without the SDK (direct.go);
	// nil sends them through it.
	direct *direct
	// copyLimit is maxCopySize; tests lower it to exercise the multipart copy.
	copyLimit int64
	// parts holds up to idleParts idle part buffers: a big push needs one
	// per Append, and allocating a part each time keeps the GC busy. Not a
	// sync.Pool: its per-P private slots cannot be stolen, so with 2 Ps
	// a pool kept up to two parts (four across a GC cycle) while requests
	// still allocated new ones, and the peak heap followed.
	parts chan []byte
	// partSlots holds a token per part buffer in use, so that concurrent
	// uploads wait rather than take more than maxPartBuffers parts.
	partSlots chan struct{}
	// trimTimer drops the idle parts once none has been in use for
	// partIdle (parts.go); trimMu guards it.
	trimMu    sync.Mutex
	trimTimer *time.Timer
	// freeMemory returns the dropped buffers' pages to the kernel
	// (debug.FreeOSMemory; a test counts its calls).
	freeMemory func()
	// readSlots counts the read-ahead buffers in use (at most
	// maxReadParts) and readIdle keeps a few free ones (readahead.go).
	readSlots chan struct{}
	readIdle  chan []byte
	// presigned remembers recent presigned URLs (presign.go); now is
	// its clock, time.Now but in tests.
	presigned presigned
	now       func() time.Time
	// obs, when set (ObserveOps), times every S3 call.
	obs atomic.Pointer[storage.OpObserver]
	// tails keeps the bytes of recently staged tail segments.
	tails tailCache
	// streamed counts the parts sent while received (stream.go), for tests.
	streamed atomic.Int64
}

// idleParts is how many free part buffers a Store keeps between uploads,
// and maxPartBuffers how many all its uploads may hold at once (64 MiB at
// the default part size): a ninth large push waits for a part to be sent.
const (
	idleParts      = 2
	maxPartBuffers = 8
)

// responseHeaderTimeout is how long a server that accepted a request may
// stay silent: generous because CopyObject and CompleteMultipartUpload of
// big blobs answer late.
const responseHeaderTimeout = 5 * time.Minute

var (
	_ storage.BlobStore     = (*Store)(nil)
	_ storage.Redirector    = (*Store)(nil)
	_ storage.UploadPurger  = (*Store)(nil)
	_ storage.Pinger        = (*Store)(nil)
	_ storage.OpsObservable = (*Store)(nil)
)

// New returns a Store for cfg. It does not touch the network; Ping does.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg.MaxAttempts, cfg.MaxBackoff) }),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			// Many uploads share one client; the default of 10 idle
			// connections per host would make most requests redial.
			t.MaxIdleConnsPerHost = 100
			// A server that accepted a request and went silent must not
			// hold an upload forever.
			t.ResponseHeaderTimeout = responseHeaderTimeout
		})),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // custom endpoints rarely care, SigV4 needs one
	}
	st := &Store{
		cfg:        cfg,
		copyLimit:  maxCopySize,
		now:        time.Now,
		freeMemory: debug.FreeOSMemory,
		parts:      make(chan []byte, idleParts),
		partSlots:  make(chan struct{}, maxPartBuffers),
		readSlots:  make(chan struct{}, maxReadParts),
		readIdle:   make(chan []byte, idleReadParts),
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, st.observeCalls)
		o.UsePathStyle = true // loopback and most S3-compatible servers have no bucket DNS
		// Range GETs and objects stored without checksums are normal here;
		// the SDK would log each one.
		o.DisableLogOutputChecksumValidationSkipped = true
		// A GET checks no CRC of its body: blobs are content-addressed,
		// Commit verified the digest before the key was written, and a
		// client checks what it pulls. The SDK's default (WhenSupported)
		// computed a CRC64 of every object read: half the CPU of a pull
		// and a third of its speed.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// To a server on this host, a body sent is not hashed for the
		// signature (UNSIGNED-PAYLOAD): over plain HTTP the SDK computes a
		// SHA-256 of every part on top of the blob's own digest, and on
		// loopback there is no wire to protect. The CRC32 it still sends
		// (RequestChecksumCalculation's default) costs little and lets S3
		// refuse a damaged part. Over HTTPS the SDK signs no payload
		// anyway; a distant plain-HTTP server keeps the signed payload, as
		// some S3-compatible servers require it there.
		if loopbackEndpoint(cfg.Endpoint) {
			o.APIOptions = append(o.APIOptions, unsignedPayload)
		}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	st.client, st.presign = client, s3.NewPresignClient(client)
	st.direct = newDirect(cfg, client)
	return st, nil
}

// ObserveOps is storage.OpsObservable: every S3 call is reported under its
// operation name (GetObject, UploadPart...), its time including the SDK's
// retries and, for a GET, the response headers but not the body.
func (s *Store) ObserveOps(fn storage.OpObserver) { s.obs.Store(&fn) }

// observeCalls puts the timing of ObserveOps outside the SDK's retry loop
// (the initialize step runs once per call).
func (s *Store) observeCalls(stack *middleware.Stack) error {
	op := stack.ID() // the operation: GetObject, PutObject...
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("packreg-observe",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (out middleware.InitializeOutput, md middleware.Metadata, err error) {
			err = s.observed(ctx, op, func() error {
				out, md, err = next.HandleInitialize(ctx, in)
				return err
			})
			return out, md, err
		}), middleware.Before)
}

// observed reports call, operation op, to ObserveOps: an SDK call's
// (observeCalls) or one the Store sends itself (direct.go).
func (s *Store) observed(ctx context.Context, op string, call func() error) error {
	fn := s.obs.Load()
	if fn == nil || ctx.Value(unobserved{}) != nil {
		return call()
	}
	start := time.Now()
	err := call()
	report := s.wrap(op, "", err)
	if ctx.Value(absentOnly{}) != nil && isRefused(err) {
		report = nil
	}
	(*fn)(op, time.Since(start), report)
	return err
}

// unobserved marks the context of an SDK call that observeCalls skips:
// the presigning of a raw GET, which rawGet observes as the GET itself.
type unobserved struct{}

// loopbackEndpoint reports whether endpoint is a plain-HTTP server on
// this host (Validate checked its form).
func loopbackEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// unsignedPayload marks each request's payload UNSIGNED-PAYLOAD ahead of
// the checksum and signing steps: over plain HTTP the checksum step would
// otherwise compute the signature's SHA-256 along with the CRC32, and
// the signer's own step (all SwapComputePayloadSHA256... replaces) never
// runs once a hash is set.
func unsignedPayload(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("packreg-unsigned-payload",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			return next.HandleFinalize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
		}), middleware.Before)
}

// newRetryer retries 5xx, SlowDown, timeouts and connection errors with
// jittered exponential backoff. The client-side retry quota is off: one
// Store serves every upload of the process, and a burst of 5xx from a
// recovering server would otherwise exhaust the shared bucket and fail
// unrelated requests without even trying them.
func newRetryer(attempts int, backoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = backoff
		o.RateLimiter = ratelimit.None
		// A response cut mid-body surfaces as an unexpected EOF while the
		// SDK decodes it; the request is as retryable as a reset.
		o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, io.ErrUnexpectedEOF) || isDirRace(err) {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
	})
}

// isDirRace recognises the 409 a file-backed S3 server (versitygw posix)
// answers when a write needs a parent directory that a concurrent delete
// is pruning: deleting the last object under uploads/<id>/ removes that
// directory and then uploads/ itself if it looks empty, while another
// upload is creating uploads/<id2>/ in it. No key of this store is a
// directory or the parent of a file (every key is a leaf, see the layout
// in doc.go), so for us these codes only ever mean that race, and the
// same request succeeds when sent again.
func isDirRace(err error) bool {
	switch apiCode(err) {
	case "ExistingObjectIsDirectory", "ObjectParentIsFile":
		return true
	}
	return false
}

// Config returns the effective configuration (defaults applied).
func (s *Store) Config() Config { return s.cfg }

// Ping is storage.Pinger: whether the bucket is reachable with the
// configured credentials (a HeadBucket), for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if isNotFound(err) {
		// A HEAD has no body, so no NoSuchBucket code: a 404 is the bucket.
		return fmt.Errorf("s3: head bucket: bucket %q does not exist (NotFound)", s.cfg.Bucket)
	}
	return s.wrap("head bucket", s.cfg.Bucket, err)
}

// key joins the prefix and the parts of a key.
func (s *Store) key(parts ...string) string {
	if s.cfg.Prefix != "" {
		parts = append([]string{s.cfg.Prefix}, parts...)
	}
	return path.Join(parts...)
}

// blobKey is the key of blob d. No blob has an invalid digest, so that
// error is also ErrNotFound (as in storage/fs).
func (s *Store) blobKey(d digest.Digest) (string, error) {
	if _, err := digest.Parse(string(d)); err != nil {
		return "", fmt.Errorf("s3: %w: %w", storage.ErrNotFound, err)
	}
	h := d.Hex()
	return s.key("blobs", d.Algorithm(), h[:2], h), nil
}

// uploadDir is the key prefix, with a trailing slash, of one upload's
// objects. No upload has an invalid ID, hence ErrNotFound.
func (s *Store) uploadDir(id string) (string, error) {
	if !safeName(id) || strings.Trim(id, ".") == "" || len(id) > 128 {
		return "", fmt.Errorf("s3: upload id %.130q: want [A-Za-z0-9._-]: %w", id, storage.ErrNotFound)
	}
	return s.key("uploads", id) + "/", nil
}

// Stat returns the size of blob d.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return 0, err
	}
	size, err := s.headObject(ctx, key)
	if err != nil {
		return 0, s.wrap("stat", key, err)
	}
	return size, nil
}

// Open streams blob d from offset, with read-ahead (readahead.go). Each
// GET resumes with a Range GET if the connection drops mid-body, so a
// long download survives a blip.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3: open %s: negative offset %d", d, offset)
	}
	r, err := s.openAhead(ctx, key, offset, s.cfg.ReadAhead)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		// S3 answers 416 for a range starting at the end; that is a valid,
		// empty read when the blob is exactly offset bytes long.
		size, serr := s.Stat(ctx, d)
		if serr != nil {
			return nil, serr
		}
		if offset == size {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, fmt.Errorf("s3: open %s: offset %d is past the end (%d bytes)", d, offset, size)
	}
	if err != nil {
		return nil, s.wrap("open", key, err)
	}
	return r, nil
}

// Delete removes blob d; ErrNotFound when it is absent. S3 deletes of
// missing keys succeed, hence the HEAD first.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	key, err := s.blobKey(d)
	if err != nil {
		return err
	}
	if _, err := s.headObject(ctx, key); err != nil {
		return s.wrap("delete", key, err)
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	return s.wrap("delete", key, err)
}

// wrap names the operation and maps S3 errors onto storage's sentinels.
func (s *Store) wrap(op, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case isNotFound(err):
		return fmt.Errorf("s3: %s %s: %w", op, key, storage.ErrNotFound)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3: %s %s: %w", op, key, err)
	case isTransient(err):
		return fmt.Errorf("s3: %s %s: %w: %w", op, key, storage.ErrUnavailable, err)
	}
	if why := s.explain(err); why != "" {
		// Said plainly: this is the line an operator reads when serve
		// refuses to start. The SDK's text (request ids...) adds nothing.
		return fmt.Errorf("s3: %s %s: %s", op, key, why)
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

// explain names the mistakes of configuration an S3 call reveals: a bucket
// that is not there, credentials refused or missing. "" for the others.
func (s *Store) explain(err error) string {
	switch code := apiCode(err); code {
	case "NoSuchBucket":
		return fmt.Sprintf("bucket %q does not exist (%s)", s.cfg.Bucket, code)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AccessDenied", "Forbidden":
		return fmt.Sprintf("the credentials were refused for bucket %q (%s): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE", s.cfg.Bucket, code)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden {
		return fmt.Sprintf("the credentials were refused for bucket %q (403): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE", s.cfg.Bucket)
	}
	if msg := err.Error(); strings.Contains(msg, "get credentials") || strings.Contains(msg, "failed to retrieve credentials") {
		// The SDK's chain found nothing (its text names the last source it
		// tried, the EC2 metadata service, which misleads off EC2).
		return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the machine a role"
	}
	return ""
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		return true
	}
	return false
}

// isTransient: what the retryer retried and gave up on, i.e. the backend is
// down or overloaded rather than the request being wrong.
func isTransient(err error) bool {
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	switch apiCode(err) {
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling":
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return retry.RetryableConnectionError{}.IsErrorRetryable(err) == aws.TrueTernary
}
