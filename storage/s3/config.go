package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// S3 limits that shape the upload design.
const (
	minPartSize = 5 << 20 // every multipart part but the last
	maxPartSize = 5 << 30
	maxParts    = 10000
	// maxCopySize is the largest object a single CopyObject may copy; beyond
	// it Commit copies with UploadPartCopy.
	maxCopySize = 5 << 30
)

// Defaults.
const (
	// DefaultPartSize: 8 MiB bounds a blob at 78 GiB (10,000 parts) and
	// the memory of one upload at 8 MiB, and it matches the chunk size
	// common clients PATCH with, so their chunks fill whole parts and
	// never go through a staged tail.
	DefaultPartSize    = 8 << 20
	DefaultPresignTTL  = 10 * time.Minute
	DefaultMaxAttempts = 5
	DefaultMaxBackoff  = 5 * time.Second
)

// Config says where and how a Store keeps its objects. Credentials are not
// here on purpose: they come from the standard AWS chain (env vars, shared
// config, instance role) so they never sit in packreg's own config or logs.
type Config struct {
	Bucket string
	// Prefix is prepended to every key ("" or "a/b", no leading or trailing slash).
	Prefix string
	// Endpoint is a custom S3 endpoint URL ("http://127.0.0.1:7070"); empty means AWS.
	Endpoint string
	// Region defaults to the AWS chain's region, else us-east-1.
	Region string
	// PartSize is the multipart part size (DefaultPartSize when 0). It bounds
	// the memory one upload uses, and PartSize*10000 bounds the blob size.
	PartSize int64
	// Presign makes the Store a storage.Redirector: blob GETs may be sent to
	// presigned S3 URLs valid for PresignTTL (DefaultPresignTTL when 0).
	Presign    bool
	PresignTTL time.Duration
	// MaxAttempts is how many times one S3 call is tried on 5xx, SlowDown and
	// connection errors (DefaultMaxAttempts when 0).
	MaxAttempts int
	// MaxBackoff caps the jittered exponential wait between attempts
	// (DefaultMaxBackoff when 0).
	MaxBackoff time.Duration
	// ReadAhead is how many 4 MiB parts of a blob being read are fetched
	// ahead with concurrent ranged GETs (at most maxReadParts; the buffers
	// of all reads together stay under maxReadParts parts). Off (0) by
	// default: a server on the same host streams one plain GET faster
	// than ranges (versitygw serves a whole object at twice the speed of
	// a range of it), while a distant S3, where one connection is slow
	// and a GET's first byte takes tens of milliseconds, gains from it.
	ReadAhead int
	// NoSplice turns off the raw GET of blob reads from a plain http://
	// endpoint (splice.go), on by default there: the bytes of a pull go
	// from the S3 socket to the client's inside the kernel. Read-ahead,
	// an https:// endpoint and AWS never take it.
	NoSplice bool
}

// ParseURL reads the URL form of Config:
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:7070&region=us-east-1&presign=true
//
// Query keys: endpoint, region, presign, presign_ttl (Go duration),
// part_size (bytes, or with a KiB/MiB/GiB suffix), max_attempts, max_backoff
// (Go duration), read_ahead (parts, 0 for none), splice (true or false:
// raw GETs spliced to the client, on by default for an http:// endpoint).
// Unknown keys
// are errors, so a typo is not silently ignored.
func ParseURL(s string) (Config, error) {
	var c Config
	u, err := url.Parse(s)
	if err != nil {
		return c, fmt.Errorf("s3 url: %w", err)
	}
	if u.Scheme != "s3" {
		return c, fmt.Errorf("s3 url: scheme %q, want s3", u.Scheme)
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return c, errors.New("s3 url: userinfo, fragment and opaque forms are not allowed")
	}
	c.Bucket = u.Host
	c.Prefix = strings.Trim(u.Path, "/")
	// u.Query() drops a malformed pair silently ("%X0" is no escape):
	// the whole query must parse, as every key must be known.
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, fmt.Errorf("s3 url: query: %w", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return c, fmt.Errorf("s3 url: %s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			c.Endpoint = v
		case "region":
			c.Region = v
		case "presign":
			if c.Presign, err = strconv.ParseBool(v); err != nil {
				return c, fmt.Errorf("s3 url: presign=%q: want true or false", v)
			}
		case "presign_ttl":
			if c.PresignTTL, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("s3 url: presign_ttl: %w", err)
			}
		case "part_size":
			if c.PartSize, err = parseSize(v); err != nil {
				return c, fmt.Errorf("s3 url: part_size: %w", err)
			}
		case "max_attempts":
			if c.MaxAttempts, err = strconv.Atoi(v); err != nil {
				return c, fmt.Errorf("s3 url: max_attempts=%q: not a number", v)
			}
		case "max_backoff":
			if c.MaxBackoff, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("s3 url: max_backoff: %w", err)
			}
		case "read_ahead":
			if c.ReadAhead, err = strconv.Atoi(v); err != nil {
				return c, fmt.Errorf("s3 url: read_ahead=%q: want a number of parts, 0 for none", v)
			}
		case "splice":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("s3 url: splice=%q: want true or false", v)
			}
			c.NoSplice = !on
		default:
			return c, fmt.Errorf("s3 url: unknown parameter %q", k)
		}
	}
	return c, c.Validate()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, suf.s); ok {
			s, mult = n, suf.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxPartSize/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

// Validate checks c; zero values that have defaults are fine.
func (c Config) Validate() error {
	if err := validBucket(c.Bucket); err != nil {
		return err
	}
	if c.Prefix != "" {
		for _, seg := range strings.Split(c.Prefix, "/") {
			if seg == "" || seg == "." || seg == ".." || !safeName(seg) {
				return fmt.Errorf("s3: prefix %q: want /-separated names of [A-Za-z0-9._-]", c.Prefix)
			}
		}
	}
	if c.Endpoint != "" {
		e, err := url.Parse(c.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" ||
			(e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.User != nil {
			return fmt.Errorf("s3: endpoint %q: want http(s)://host[:port]", c.Endpoint)
		}
	}
	if c.PartSize != 0 && (c.PartSize < minPartSize || c.PartSize > maxPartSize) {
		return fmt.Errorf("s3: part size %d: want %d..%d", c.PartSize, int64(minPartSize), int64(maxPartSize))
	}
	if c.PresignTTL < 0 || c.PresignTTL > 7*24*time.Hour {
		return fmt.Errorf("s3: presign ttl %s: want up to 7 days (the SigV4 limit)", c.PresignTTL)
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 20 {
		return fmt.Errorf("s3: max attempts %d: want 1..20", c.MaxAttempts)
	}
	if c.ReadAhead < 0 || c.ReadAhead > maxReadParts {
		return fmt.Errorf("s3: read ahead %d: want 0..%d parts", c.ReadAhead, maxReadParts)
	}
	if c.MaxBackoff < 0 || c.MaxBackoff > 5*time.Minute {
		return fmt.Errorf("s3: max backoff %s: want up to 5m", c.MaxBackoff)
	}
	return nil
}

// validBucket applies the S3 bucket naming rules that matter for path-style
// URLs: 3-63 of [a-z0-9.-], starting and ending with a letter or digit.
func validBucket(b string) error {
	ok := len(b) >= 3 && len(b) <= 63
	for i := 0; ok && i < len(b); i++ {
		c := b[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		ok = alnum || (c == '-' || c == '.') && i > 0 && i < len(b)-1
	}
	if !ok || strings.Contains(b, "..") {
		return fmt.Errorf("s3: bucket %q: want 3-63 of [a-z0-9.-]", b)
	}
	return nil
}

// safeName keeps keys free of characters that need escaping in CopySource
// headers and listings.
func safeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

func (c Config) withDefaults() Config {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PresignTTL == 0 {
		c.PresignTTL = DefaultPresignTTL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}
