package s3

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// objectReader streams one object and, when the connection breaks
// mid-body, resumes with a Range GET pinned to the same ETag. The SDK
// retries requests, not bodies, and blob bodies are the long transfers.
type objectReader struct {
	s *Store
	// ctx is the Open call's: like an http.Response body, the reader lives
	// as long as the request that opened it.
	ctx     context.Context
	key     string
	etag    string
	pos     int64 // next byte the caller reads
	end     int64 // one past the last byte it returns: size, or a range's end
	size    int64 // object size
	body    io.ReadCloser
	resumes int
}

// openObject GETs key from offset. A non-empty etag must match (If-Match
// and the answer's ETag), which keeps staged tails and resumed reads from
// mixing object versions. Errors are the SDK's, unwrapped: callers inspect
// them before wrapping.
func (s *Store) openObject(ctx context.Context, key string, offset int64, etag string) (*objectReader, error) {
	return s.openRange(ctx, key, offset, 0, etag)
}

// openRange is openObject for bytes [offset, end) only; end 0 means to
// the end of the object, and an end past it is clipped.
func (s *Store) openRange(ctx context.Context, key string, offset, end int64, etag string) (*objectReader, error) {
	if end == 0 && etag == "" && spliceEndpoint(s.cfg) {
		raw, gotTag, size, err := s.rawGet(ctx, key, offset)
		if err == nil {
			return &objectReader{s: s, ctx: ctx, key: key, etag: gotTag, pos: offset, end: size, size: size, body: raw}, nil
		}
		// Nothing of the body was read: the SDK's GET retries, decodes S3's
		// errors (a missing key, a range at the end) and takes any answer.
	}
	body, gotTag, size, err := s.get(ctx, key, offset, end, etag)
	if err != nil {
		return nil, err
	}
	if end == 0 || end > size {
		end = size
	}
	return &objectReader{s: s, ctx: ctx, key: key, etag: gotTag, pos: offset, end: end, size: size, body: body}, nil
}

func (s *Store) get(ctx context.Context, key string, offset, end int64, etag string) (io.ReadCloser, string, int64, error) {
	in := &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key}
	switch {
	case end > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, end-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, "", 0, err
	}
	got := aws.ToString(out.ETag)
	if etag != "" && got != etag {
		out.Body.Close()
		return nil, "", 0, fmt.Errorf("s3: get %s: etag %s, want %s (object replaced)", key, got, etag)
	}
	size := offset + aws.ToInt64(out.ContentLength)
	if cr := aws.ToString(out.ContentRange); cr != "" { // "bytes a-b/total"
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = n
			}
		}
	}
	return out.Body, got, size, nil
}

func (r *objectReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if r.pos >= r.end {
				return 0, io.EOF
			}
			body, _, _, err := r.s.get(r.ctx, r.key, r.pos, r.end, r.etag)
			if err != nil {
				return 0, r.s.wrap("read", r.key, err)
			}
			r.body = body
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF && r.pos >= r.end:
			return n, io.EOF
		}
		// The body ended early or failed: resume from r.pos unless the
		// caller gave up or this keeps happening.
		r.body.Close()
		r.body = nil
		if cerr := r.ctx.Err(); cerr != nil {
			return n, cerr
		}
		if r.resumes >= r.s.cfg.MaxAttempts {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, r.s.wrap("read", r.key, err)
		}
		r.resumes++
		if n > 0 {
			return n, nil
		}
	}
}

func (r *objectReader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}
