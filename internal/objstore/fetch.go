package objstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// object is one listed key below the prefix.
type object struct {
	key  string
	rel  string // path below the prefix, without a trailing "/"
	dir  bool   // a folder marker (key ends in "/"): an ensemble's empty version folder
	etag string
	size int64
}

// download is a verified object in a temporary file, waiting to be renamed into place.
type download struct {
	tmp   string
	entry entry
	err   error
}

// list reads every object below the prefix. Keys that are not safe paths are skipped
// with a warning: they could otherwise write outside the cache folder.
func (s *Syncer) list(ctx context.Context) (map[string]object, error) {
	out := map[string]object{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rest := strings.TrimPrefix(key, s.prefix)
			if rest == "" {
				continue // the prefix's own folder marker
			}
			rel, ok := relPath(rest)
			if !ok {
				s.log.Warn("model store object skipped: its key is not a safe path below the prefix", "object", s.objectURL(key))
				continue
			}
			ob := object{key: key, rel: rel, dir: strings.HasSuffix(rest, "/"),
				etag: strings.Trim(aws.ToString(o.ETag), `"`), size: aws.ToInt64(o.Size)}
			if prev, dup := out[rel]; dup && !prev.dir {
				continue // "m/x" and "m/x/": the file wins, the marker adds nothing
			}
			out[rel] = ob
		}
	}
	return out, nil
}

// fetchAll downloads objects with s.parallel workers; the result is by path.
func (s *Syncer) fetchAll(ctx context.Context, objs []object) map[string]*download {
	res := make([]*download, len(objs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.parallel, len(objs)) {
		wg.Go(func() {
			for i := range next {
				res[i] = s.fetch(ctx, objs[i])
			}
		})
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make(map[string]*download, len(objs))
	for i, o := range objs {
		out[o.rel] = res[i]
	}
	return out
}

// fetch downloads one object to a temporary file and verifies it. The file is removed
// unless the object passes every check.
func (s *Syncer) fetch(ctx context.Context, o object) *download {
	refuse := func(format string, args ...any) *download {
		s.refused.Add(1)
		return &download{err: &ObjectError{Object: s.objectURL(o.key), Err: fmt.Errorf(format, args...)}}
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(o.key)},
		// Ask for the stored checksums without the SDK validating them: verify.go does.
		s3.WithAPIOptions(smithyhttp.AddHeaderValue("X-Amz-Checksum-Mode", "ENABLED")))
	if err != nil {
		return refuse("not fetched: %w", err)
	}
	defer out.Body.Close()
	rep := reportedOf(out)
	v, err := newVerifier(rep)
	if err != nil {
		return refuse("refused: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpName), "object-*")
	if err != nil {
		return refuse("not fetched: %w", err)
	}
	_, err = io.CopyBuffer(io.MultiWriter(f, v), out.Body, make([]byte, 1<<20)) // large writes: fewer syscalls
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return refuse("not fetched: download failed after %d bytes: %w", v.n, err)
	}
	// The listing and the GET normally agree; if the object was replaced in between,
	// the GET's own length is what the bytes must match.
	listed := o.size
	if rep.ETag != o.etag && rep.Size >= 0 {
		listed = rep.Size
	}
	if err := v.verify(listed); err != nil {
		os.Remove(f.Name())
		return refuse("refused: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return refuse("not fetched: %w", err)
	}
	s.downloads.Add(1)
	s.bytes.Add(v.n)
	s.log.Debug("model store object verified", "object", s.objectURL(o.key), "bytes", v.n, "checked", v.verifiedBy())
	return &download{tmp: f.Name(), entry: entry{ETag: rep.ETag, Size: v.n}}
}

// reportedOf collects what a GET response says about the object's bytes.
func reportedOf(out *s3.GetObjectOutput) reported {
	r := reported{
		Size:      -1,
		ETag:      strings.Trim(aws.ToString(out.ETag), `"`),
		SHA256:    aws.ToString(out.ChecksumSHA256),
		SHA1:      aws.ToString(out.ChecksumSHA1),
		CRC32:     aws.ToString(out.ChecksumCRC32),
		CRC32C:    aws.ToString(out.ChecksumCRC32C),
		CRC64NVME: aws.ToString(out.ChecksumCRC64NVME),
	}
	if out.ContentLength != nil {
		r.Size = *out.ContentLength
	}
	// A multipart upload's ETag is "md5-of-part-md5s-N"; SSE-KMS and SSE-C objects have
	// ETags that are not the MD5 of their bytes.
	r.ETagIsMD5 = !strings.Contains(r.ETag, "-") && out.SSECustomerAlgorithm == nil &&
		out.ServerSideEncryption != types.ServerSideEncryptionAwsKms && out.ServerSideEncryption != types.ServerSideEncryptionAwsKmsDsse
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		r.ContentMD5 = raw.Header.Get("Content-MD5")
	}
	return r
}
