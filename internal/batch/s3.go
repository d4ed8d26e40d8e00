package batch

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func isS3(p string) bool { return strings.HasPrefix(p, "s3://") }

// store reads and writes whole objects of an S3-compatible store.
type store struct{ c *s3.Client }

func newStore(o S3Options) (*store, error) {
	region := o.Region
	if region == "" {
		region = "us-east-1" // S3-compatible stores accept any region name
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("S3 credentials: %w", err)
	}
	// The store's own checksums are not asked for: the copy is checked by size.
	cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	if o.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(o.Endpoint)
	}
	return &store{c: s3.NewFromConfig(cfg, func(so *s3.Options) { so.UsePathStyle = o.PathStyle })}, nil
}

func splitS3(u string) (bucket, key string, err error) {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || strings.Trim(p.Path, "/") == "" {
		return "", "", fmt.Errorf("%q: want s3://bucket/key", u)
	}
	return p.Host, strings.TrimPrefix(p.Path, "/"), nil
}

// head is an object's identity: size, modification time and ETag.
func (s *store) head(ctx context.Context, u string) (inputID, error) {
	bucket, key, err := splitS3(u)
	if err != nil {
		return inputID{}, err
	}
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return inputID{}, fmt.Errorf("%s: %w", u, err)
	}
	id := inputID{Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		id.ModTime = out.LastModified.UnixNano()
	}
	return id, nil
}

// download copies an object to a local file, renamed into place once whole.
func (s *store) download(ctx context.Context, u, dst string) error {
	bucket, key, err := splitS3(u)
	if err != nil {
		return err
	}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	defer out.Body.Close()
	return writeFile(dst, func(f *os.File) error {
		n, err := f.ReadFrom(out.Body)
		if err == nil && out.ContentLength != nil && n != *out.ContentLength {
			err = fmt.Errorf("%s: got %d of %d bytes", u, n, *out.ContentLength)
		}
		return err
	})
}

// upload puts a local file as an object (one PutObject: up to 5 GiB).
func (s *store) upload(ctx context.Context, src, u string) error {
	bucket, key, err := splitS3(u)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: the assembled file is gone; delete the work folder and run the job again", u)
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f, ContentLength: aws.Int64(st.Size())})
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}
