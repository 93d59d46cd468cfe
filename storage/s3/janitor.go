package s3

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PurgeUploads removes the S3 leftovers of uploads whose last activity
// (newest part, staged segment, or multipart initiation) is before cutoff:
// sessions the registry dropped, and orphans of crashed attempts that no
// session names. Incomplete multipart uploads cost storage and are
// invisible in plain listings, hence this sweep. The cutoff must be older
// than the registry's upload session expiry, or live uploads are lost.
// It returns how many upload directories it purged.
func (s *Store) PurgeUploads(ctx context.Context, cutoff time.Time) (int, error) {
	root := s.key("uploads") + "/"
	last := map[string]time.Time{} // upload id -> newest activity seen
	seen := func(key string, t time.Time) {
		id, _, ok := strings.Cut(strings.TrimPrefix(key, root), "/")
		if !ok || id == "" {
			return
		}
		if cur, ok := last[id]; !ok || t.After(cur) {
			last[id] = t
		}
	}
	err := s.listObjects(ctx, root, func(o types.Object) error {
		seen(aws.ToString(o.Key), aws.ToTime(o.LastModified))
		return nil
	})
	if err != nil {
		return 0, err
	}
	var mps []types.MultipartUpload
	err = s.listUploads(ctx, root, func(m types.MultipartUpload) {
		seen(aws.ToString(m.Key), aws.ToTime(m.Initiated))
		mps = append(mps, m)
	})
	if err != nil {
		return 0, err
	}
	// An old multipart upload may still be receiving parts: look at them
	// only for uploads that otherwise qualify.
	for _, m := range mps {
		key := aws.ToString(m.Key)
		id, _, _ := strings.Cut(strings.TrimPrefix(key, root), "/")
		if !last[id].Before(cutoff) {
			continue
		}
		in := &s3.ListPartsInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: m.UploadId}
		for {
			out, err := s.client.ListParts(ctx, in)
			if isNotFound(err) {
				break
			}
			if err != nil {
				return 0, s.wrap("purge: list parts", key, err)
			}
			for _, p := range out.Parts {
				seen(key, aws.ToTime(p.LastModified))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			in.PartNumberMarker = out.NextPartNumberMarker
		}
	}
	n := 0
	var errs []error
	for id, t := range last {
		if !t.Before(cutoff) {
			continue
		}
		if err := s.purgeDir(ctx, root+id+"/", true); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// purgeDir deletes every object under dir and, with multipart, aborts
// every multipart upload there. The tails cached of it go first.
func (s *Store) purgeDir(ctx context.Context, dir string, multipart bool) error {
	s.tails.drop(dir)
	var errs []error
	if multipart {
		err := s.listUploads(ctx, dir, func(m types.MultipartUpload) {
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: m.Key, UploadId: m.UploadId})
			if err != nil && !isNotFound(err) {
				errs = append(errs, s.wrap("abort multipart upload", aws.ToString(m.Key), err))
			}
		})
		if err != nil {
			return err
		}
	}
	var keys []string
	if err := s.listObjects(ctx, dir, func(o types.Object) error {
		keys = append(keys, aws.ToString(o.Key))
		return nil
	}); err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, keys); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// listObjects calls fn for every object under prefix, a listing page
// (up to 1,000 keys) at a time; an error of fn ends the listing.
func (s *Store) listObjects(ctx context.Context, prefix string, fn func(types.Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap("list", prefix, err)
		}
		for _, o := range out.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) listUploads(ctx context.Context, prefix string, fn func(types.MultipartUpload)) error {
	in := &s3.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: &prefix}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return s.wrap("list multipart uploads", prefix, err)
		}
		for _, m := range out.Uploads {
			fn(m)
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// deleteKeys deletes keys, 1000 (the S3 limit) per request. Missing keys
// are not errors.
func (s *Store) deleteKeys(ctx context.Context, keys []string) error {
	var errs []error
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		objs := make([]types.ObjectIdentifier, len(batch))
		for i := range batch {
			objs[i] = types.ObjectIdentifier{Key: &batch[i]}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &s.cfg.Bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			errs = append(errs, s.wrap("delete objects", batch[0], err))
			continue
		}
		for _, e := range out.Errors {
			if code := aws.ToString(e.Code); code != "NoSuchKey" {
				errs = append(errs, s.wrap("delete", aws.ToString(e.Key), errors.New(code+": "+aws.ToString(e.Message))))
			}
		}
	}
	return errors.Join(errs...)
}
