package s3

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/packreg/packreg/digest"
)

// Signing a URL runs the SDK's whole request pipeline (endpoint rules,
// SigV4): it cost a redirected GET as much CPU again as the rest of the
// request. A URL is valid for PresignTTL, so one signed for a blob is
// handed out again for the first tenth of that time; whoever gets it has
// at least nine tenths left, as after a fresh signature made then.
const maxPresigned = 4096 // URLs remembered; past it the memory starts afresh

type presigned struct {
	mu   sync.Mutex
	urls map[digest.Digest]signedURL
}

type signedURL struct {
	url string
	at  time.Time
}

// RedirectURL returns a presigned GET URL for blob d when Config.Presign is
// set. It does not check that d exists: the caller already knows it from
// metadata, and a HEAD per pull would cost what the redirect saves.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest) (string, bool, error) {
	if !s.cfg.Presign {
		return "", false, nil
	}
	key, err := s.blobKey(d)
	if err != nil {
		return "", false, err
	}
	now := s.now()
	s.presigned.mu.Lock()
	u, ok := s.presigned.urls[d]
	s.presigned.mu.Unlock()
	if ok && now.Sub(u.at) >= 0 && now.Sub(u.at) < s.cfg.PresignTTL/10 {
		return u.url, true, nil
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key},
		s3.WithPresignExpires(s.cfg.PresignTTL))
	if err != nil {
		return "", false, s.wrap("presign", key, err)
	}
	s.presigned.mu.Lock()
	if s.presigned.urls == nil || len(s.presigned.urls) >= maxPresigned {
		s.presigned.urls = make(map[digest.Digest]signedURL)
	}
	s.presigned.urls[d] = signedURL{url: req.URL, at: now}
	s.presigned.mu.Unlock()
	return req.URL, true, nil
}
