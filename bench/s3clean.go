package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// cleanS3Prefix deletes every object (and aborts every multipart upload)
// under the run's own prefix. A full run leaves over a GiB behind, the
// bucket is shared with the tests of everyone on the machine, and the
// registry API cannot free it: a blob DELETE only unlinks the blob from a
// repository. This talks to S3 directly with the SDK, not through packreg.
func cleanS3Prefix(ctx context.Context, raw string) (int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, err
	}
	bucket, prefix := u.Host, strings.Trim(u.Path, "/")+"/"
	if prefix == "/" {
		return 0, errors.New("refusing to empty a whole bucket")
	}
	q := u.Query()
	region := q.Get("region")
	if region == "" {
		region = "us-east-1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return 0, err
	}
	cl := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
		if ep := q.Get("endpoint"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})

	var errs []error
	mp := s3.NewListMultipartUploadsPaginator(cl, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &prefix})
	for mp.HasMorePages() {
		page, err := mp.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list multipart uploads: %w", err))
			break
		}
		for _, up := range page.Uploads {
			if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: up.Key, UploadId: up.UploadId}); err != nil {
				errs = append(errs, err)
			}
		}
	}

	deleted := 0
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list objects: %w", err))
			break
		}
		if len(page.Contents) == 0 {
			continue
		}
		objs := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			objs[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete objects: %w", err))
			continue
		}
		deleted += len(objs) - len(out.Errors)
		for _, e := range out.Errors {
			errs = append(errs, fmt.Errorf("delete %s: %s", aws.ToString(e.Key), aws.ToString(e.Code)))
		}
	}
	return deleted, errors.Join(errs...)
}
