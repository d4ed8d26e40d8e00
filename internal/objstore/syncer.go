package objstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Options configure a Syncer. cmd/ferry fills the store settings from the usual AWS
// environment variables.
type Options struct {
	URL      string // s3://bucket/prefix
	CacheDir string // the mirror and its manifest live here; required
	// Endpoint is a custom S3-compatible endpoint (MinIO, Ceph, R2, ...); it is
	// addressed path-style (endpoint/bucket/key), which every such store accepts.
	Endpoint string
	Region   string // default us-east-1
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials; without
	// them the SDK's default chain is used (shared config files, web identity, instance
	// role).
	AccessKeyID, SecretAccessKey, SessionToken string
	// Timeout bounds one request, download included (default 1 h: model files are
	// large); StallTimeout bounds a wait for the next bytes (default 1 min).
	Timeout, StallTimeout time.Duration
	Parallel              int // concurrent downloads, default 4
	Logger                *slog.Logger
	// DialControl, when set, checks every address the store's requests connect to,
	// after DNS resolution (netguard): an endpoint must not lead to the metadata
	// service. The credential chain's own requests (which ask the instance metadata
	// endpoint on purpose) do not pass it.
	DialControl func(network, address string, c syscall.RawConn) error
}

// Stats count the syncer's work since it was built.
type Stats struct {
	Syncs           int64 // syncs that ran to the end (refused models included)
	Failures        int64 // syncs that could not list the store or write the cache
	Downloads       int64 // objects downloaded and verified
	DownloadedBytes int64
	Refused         int64 // objects refused (download failed, size or checksum mismatch)
	Deleted         int64 // local files removed because their object is gone
}

// Syncer mirrors one store prefix into a local folder. Sync is safe for concurrent use
// (calls run one at a time); Root never changes.
type Syncer struct {
	url, bucket, prefix string
	dir                 string
	client              *s3.Client
	log                 *slog.Logger
	parallel            int

	mu  sync.Mutex // serialises syncs; guards man
	man *manifest

	syncs, failures, downloads, bytes, refused, deleted atomic.Int64
}

// New checks the URL, prepares the cache folder and builds the S3 client; it sends no
// request (Sync does).
func New(opts Options) (*Syncer, error) {
	bucket, prefix, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		return nil, errors.New("model store: no cache folder given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	man, err := prepareCache(opts.CacheDir, opts.URL)
	if err != nil {
		return nil, err
	}
	client, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	return &Syncer{url: opts.URL, bucket: bucket, prefix: prefix, dir: opts.CacheDir, client: client,
		log: opts.Logger, parallel: opts.Parallel, man: man}, nil
}

func newClient(opts Options) (*s3.Client, error) {
	timeout, stall := opts.Timeout, opts.StallTimeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	if stall <= 0 {
		stall = time.Minute
	}
	hc := awshttp.NewBuildableClient().WithTimeout(timeout).WithReadTimeout(stall).
		WithTransportOptions(func(tr *http.Transport) { tr.ResponseHeaderTimeout = stall })
	region := opts.Region
	if region == "" {
		region = "us-east-1" // S3-compatible stores accept any region name
	}
	data := hc
	if opts.DialControl != nil {
		data = awshttp.NewBuildableClient().WithTimeout(timeout).WithReadTimeout(stall).
			WithTransportOptions(func(tr *http.Transport) {
				tr.ResponseHeaderTimeout = stall
				tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: opts.DialControl}).DialContext
			})
	}
	cfg := aws.Config{Region: region, HTTPClient: data,
		// Sync verifies every download itself (verify.go), against every checksum the
		// store sends, so that a mismatch is one clear error naming the object.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	}
	if opts.AccessKeyID != "" || opts.SecretAccessKey != "" {
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken))
	} else {
		// Reads only local files here; the chain asks a credential service (STS, the
		// instance metadata endpoint) lazily, on the first request, under its context.
		def, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region), config.WithHTTPClient(hc))
		if err != nil {
			return nil, fmt.Errorf("model store credentials: %w", err)
		}
		cfg.Credentials = def.Credentials
	}
	if opts.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(opts.Endpoint)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = opts.Endpoint != "" }), nil
}

// Root is the local folder that mirrors the store: the repository reads it.
func (s *Syncer) Root() string { return filepath.Join(s.dir, mirrorName) }

// Stats reports the counters.
func (s *Syncer) Stats() Stats {
	return Stats{Syncs: s.syncs.Load(), Failures: s.failures.Load(), Downloads: s.downloads.Load(),
		DownloadedBytes: s.bytes.Load(), Refused: s.refused.Load(), Deleted: s.deleted.Load()}
}

// objectURL names an object in errors and logs.
func (s *Syncer) objectURL(key string) string { return Scheme + s.bucket + "/" + key }

// ObjectError is an object that could not be brought into the mirror.
type ObjectError struct {
	Object string // s3://bucket/key
	Err    error
}

func (e *ObjectError) Error() string { return fmt.Sprintf("object %s %v", e.Object, e.Err) }
func (e *ObjectError) Unwrap() error { return e.Err }

// errList joins errors on one line, as the repository index shows a reason.
type errList []error

func (l errList) Error() string {
	parts := make([]string, len(l))
	for i, err := range l {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (l errList) Unwrap() []error { return l }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Cached reports whether the mirror holds files from an earlier sync, so a server whose
// store is unreachable at start can still serve what it last fetched.
func (s *Syncer) Cached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.man.Objects) > 0
}
