package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/packreg/packreg/digest"
)

// WalkBlobs is storage.BlobWalker: the objects under <prefix>/blobs/,
// a listing page (up to 1,000 keys) at a time. Keys that are not a
// blob's are skipped.
func (s *Store) WalkBlobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error {
	prefix := s.key("blobs") + "/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap("walk", prefix, err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			alg, rest, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
			_, hex, _ := strings.Cut(rest, "/")
			d, err := digest.Parse(alg + ":" + hex)
			if err != nil {
				continue
			}
			if k, err := s.blobKey(d); err != nil || k != key {
				continue
			}
			if err := fn(d, aws.ToInt64(o.Size), aws.ToTime(o.LastModified)); err != nil {
				return err
			}
		}
	}
	return nil
}
