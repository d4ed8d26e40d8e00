package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/ferryml/ferry/internal/objstore"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/prometheus/client_golang/prometheus"
)

// storeEnv is what `ferry serve` reads from the environment for an s3:// repository:
// the variables the AWS CLI and SDKs read.
type storeEnv struct {
	region          string // AWS_REGION, else AWS_DEFAULT_REGION
	endpoint        string // AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
	accessKeyID     string // AWS_ACCESS_KEY_ID
	secretAccessKey string // AWS_SECRET_ACCESS_KEY
	sessionToken    string // AWS_SESSION_TOKEN
	cacheHome       string // XDG_CACHE_HOME, else $HOME/.cache: where the default cache folder goes
}

func storeEnvFrom(getenv func(string) string) storeEnv {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	e := storeEnv{
		region:          first("AWS_REGION", "AWS_DEFAULT_REGION"),
		endpoint:        first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		accessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		secretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		sessionToken:    getenv("AWS_SESSION_TOKEN"),
		cacheHome:       getenv("XDG_CACHE_HOME"),
	}
	if e.cacheHome == "" && getenv("HOME") != "" {
		e.cacheHome = filepath.Join(getenv("HOME"), ".cache")
	}
	return e
}

// openModelStore builds the mirror of an s3:// repository, or returns nil for a folder.
// The default cache folder is named for the endpoint and URL, so two stores never share
// one.
func openModelStore(cfg serveConfig, log *slog.Logger) (*objstore.Syncer, error) {
	if !objstore.IsURL(cfg.repository) {
		if cfg.modelCacheDir != "" {
			return nil, errors.New("--model-cache-dir: only used with an s3:// --model-repository")
		}
		return nil, nil
	}
	dir := cfg.modelCacheDir
	if dir == "" {
		if cfg.store.cacheHome == "" {
			return nil, errors.New("--model-cache-dir: not given, and neither XDG_CACHE_HOME nor HOME is set to put a default under")
		}
		sum := sha256.Sum256([]byte(cfg.store.endpoint + "\n" + cfg.repository))
		dir = filepath.Join(cfg.store.cacheHome, "ferry", hex.EncodeToString(sum[:8]))
	}
	st, err := objstore.New(objstore.Options{URL: cfg.repository, CacheDir: dir, Endpoint: cfg.store.endpoint,
		Region: cfg.store.region, AccessKeyID: cfg.store.accessKeyID, SecretAccessKey: cfg.store.secretAccessKey,
		SessionToken: cfg.store.sessionToken, StallTimeout: cfg.storeStall, Logger: log.With("component", "objstore"),
		DialControl: cfg.hardening.guard.Control})
	if err != nil {
		return nil, fmt.Errorf("--model-repository: %w", err)
	}
	return st, nil
}

// repositoryRoot is the folder the repository reads: the mirror for an object store.
func repositoryRoot(cfg serveConfig, st *objstore.Syncer) string {
	if st == nil {
		return cfg.repository
	}
	return st.Root()
}

// storeSource hands the mirror to the repository (nil interface for a folder).
func storeSource(st *objstore.Syncer, log *slog.Logger) repository.Source {
	if st == nil {
		return nil
	}
	return &mirrorSource{st: st, log: log}
}

// mirrorSource lets Ferry start from the files an earlier run fetched when the store
// cannot be reached at start; without such files a failed first sync stops the start.
type mirrorSource struct {
	st      *objstore.Syncer
	log     *slog.Logger
	started atomic.Bool // the first sync (at start) has run
}

func (m *mirrorSource) Sync(ctx context.Context) (map[string]error, error) {
	refused, err := m.st.Sync(ctx)
	first := !m.started.Swap(true)
	if err != nil && first && ctx.Err() == nil && m.st.Cached() {
		m.log.Warn("model store unreachable at start; serving the files fetched earlier", "err", err)
		return nil, nil
	}
	return refused, err
}

// registerStore exports the mirror's counters when the repository is an object store.
func registerStore(reg prometheus.Registerer, st *objstore.Syncer) {
	if st != nil {
		reg.MustRegister(metrics.Store(st.Stats)...)
	}
}

// batchS3 is where batch jobs' s3:// inputs and outputs go: the same store settings.
func (e storeEnv) batchS3() batch.S3Options {
	return batch.S3Options{Endpoint: e.endpoint, Region: e.region, PathStyle: e.endpoint != ""}
}
