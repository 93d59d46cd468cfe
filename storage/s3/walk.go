package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/packreg/packreg/digest"
)

// WalkBlobs is storage.BlobWalker: the objects under <prefix>/blobs/.
// Keys that are not a blob's are skipped.
func (s *Store) WalkBlobs(ctx context.Context, fn func(d digest.Digest, size int64, written time.Time) error) error {
	prefix := s.key("blobs") + "/"
	return s.listObjects(ctx, prefix, func(o types.Object) error {
		key := aws.ToString(o.Key)
		alg, rest, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		_, hex, _ := strings.Cut(rest, "/")
		d, err := digest.Parse(alg + ":" + hex)
		if err != nil {
			return nil
		}
		if k, err := s.blobKey(d); err != nil || k != key {
			return nil
		}
		return fn(d, aws.ToInt64(o.Size), aws.ToTime(o.LastModified))
	})
}
