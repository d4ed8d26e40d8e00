package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/duration"
	"github.com/ferryml/ferry/internal/jobs"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/stream"
	"github.com/ferryml/ferry/internal/stream/kafka"
	"github.com/ferryml/ferry/internal/stream/redisstream"
	"github.com/ferryml/ferry/internal/transport/mgmt"
)

// lanesConfig is the server's other two lanes: batch jobs over files (--jobs-dir) and
// streaming consumers (--streams FILE, --consume URI).
type lanesConfig struct {
	jobsDir     string
	jobsRunning int
	streamsFile string
	consume     []string
}

func (c *lanesConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.jobsDir, "jobs-dir", "", "enable server-side batch jobs (POST /api/v1/jobs); their local input and output files live under this folder (s3:// URIs go to the store the AWS_* environment names)")
	f.IntVar(&c.jobsRunning, "jobs-max-running", 1, "batch jobs that run at once; the rest wait in order")
	f.StringVar(&c.streamsFile, "streams", "", "YAML file of streaming consumers: a topic or stream in, a model, a topic or stream out (docs/streaming.md)")
	f.StringArrayVar(&c.consume, "consume", nil, "a streaming consumer as a URI (repeatable): kafka://BROKER[,BROKER]/TOPIC?model=M&output=TOPIC or redis://HOST:PORT/DB?stream=S&model=M&output=S, with &mapping=INPUT:col,col to fill an input from several fields (docs/streaming.md)")
}

// streamsFile is --streams's YAML.
type streamsFile struct {
	Consumers []consumerSpec `json:"consumers"`
}

// consumerSpec is one streaming consumer: exactly one of Kafka and Redis.
type consumerSpec struct {
	Name        string              `json:"name"`
	Model       string              `json:"model"`
	Version     string              `json:"version,omitempty"`
	Mapping     map[string][]string `json:"mapping,omitempty"`
	Passthrough []string            `json:"passthrough,omitempty"`
	Priority    int                 `json:"priority,omitempty"`
	MaxInFlight int                 `json:"max_in_flight,omitempty"`
	Kafka       *kafkaSpec          `json:"kafka,omitempty"`
	Redis       *redisSpec          `json:"redis,omitempty"`
}

type kafkaSpec struct {
	Brokers         []string `json:"brokers"`
	Group           string   `json:"group,omitempty"`
	InputTopic      string   `json:"input_topic"`
	OutputTopic     string   `json:"output_topic"`
	DeadLetterTopic string   `json:"dead_letter_topic,omitempty"`
	// MaxInFlightBytes bounds the bytes of the messages in flight (0: 64 MiB).
	MaxInFlightBytes int `json:"max_in_flight_bytes,omitempty"`
	// Compression is the output batches' codec: none (default), gzip, snappy, lz4, zstd.
	Compression string `json:"compression,omitempty"`
}

type redisSpec struct {
	URL              string            `json:"url,omitempty"`
	Stream           string            `json:"stream"`
	OutputStream     string            `json:"output_stream"`
	DeadLetterStream string            `json:"dead_letter_stream,omitempty"`
	Group            string            `json:"group,omitempty"`
	Consumer         string            `json:"consumer,omitempty"`
	Field            string            `json:"field,omitempty"`
	ClaimIdle        duration.Duration `json:"claim_idle,omitempty"`
	MaxLen           int64             `json:"max_len,omitempty"`
}

// specs reads --streams and --consume into consumer specs, checked for what needs no
// model: names unique, one broker each, topics named.
func (c lanesConfig) specs() ([]consumerSpec, error) {
	var out []consumerSpec
	if c.streamsFile != "" {
		b, err := os.ReadFile(c.streamsFile)
		if err != nil {
			return nil, fmt.Errorf("--streams: %w", err)
		}
		var f streamsFile
		if err := yaml.UnmarshalStrict(b, &f); err != nil {
			return nil, fmt.Errorf("--streams %s: %w", c.streamsFile, err)
		}
		out = f.Consumers
	}
	for _, u := range c.consume {
		s, err := parseConsumeURI(u)
		if err != nil {
			return nil, fmt.Errorf("--consume %q: %w", u, err)
		}
		out = append(out, s)
	}
	seen := map[string]bool{}
	for i := range out {
		s := &out[i]
		if s.Name == "" {
			s.Name = "consumer-" + strconv.Itoa(i+1)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("streams: two consumers are named %q", s.Name)
		}
		seen[s.Name] = true
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("streams: consumer %q: %w", s.Name, err)
		}
	}
	return out, nil
}

func (s consumerSpec) check() error {
	switch {
	case s.Model == "":
		return errors.New("model is required")
	case (s.Kafka == nil) == (s.Redis == nil):
		return errors.New("give exactly one of kafka and redis")
	case s.Kafka != nil && (len(s.Kafka.Brokers) == 0 || s.Kafka.InputTopic == "" || s.Kafka.OutputTopic == ""):
		return errors.New("kafka needs brokers, input_topic and output_topic")
	case s.Redis != nil && (s.Redis.Stream == "" || s.Redis.OutputStream == ""):
		return errors.New("redis needs stream and output_stream")
	case s.Priority < 0 || s.MaxInFlight < 0 || s.Kafka != nil && s.Kafka.MaxInFlightBytes < 0:
		return errors.New("priority, max_in_flight and max_in_flight_bytes must not be negative")
	}
	return nil
}

// parseConsumeURI reads the compact form of one consumer:
// kafka://b1:9092,b2:9092/TOPIC?model=M&output=OUT[&dlq=T&group=G&name=N&version=V&max_in_flight=N&max_in_flight_bytes=N&compression=C&priority=P
// &mapping=INPUT:col,col&passthrough=col,col]
// redis://host:6379/0?stream=S&model=M&output=OUT[&dlq=S&group=G&consumer=C&field=F&name=N&...]
func parseConsumeURI(raw string) (consumerSpec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return consumerSpec{}, err
	}
	q := u.Query()
	s := consumerSpec{Name: q.Get("name"), Model: q.Get("model"), Version: q.Get("version")}
	for key, dst := range map[string]*int{"max_in_flight": &s.MaxInFlight, "priority": &s.Priority} {
		if v := q.Get(key); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil {
				return s, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	for _, m := range q["mapping"] { // INPUT:col1,col2 (repeatable)
		input, cols, ok := strings.Cut(m, ":")
		if !ok || input == "" || cols == "" {
			return s, fmt.Errorf("mapping %q: want INPUT:column,column", m)
		}
		if s.Mapping == nil {
			s.Mapping = map[string][]string{}
		}
		s.Mapping[input] = strings.Split(cols, ",")
	}
	if p := q.Get("passthrough"); p != "" {
		s.Passthrough = strings.Split(p, ",")
	}
	switch u.Scheme {
	case "kafka":
		s.Kafka = &kafkaSpec{Brokers: strings.Split(u.Host, ","), InputTopic: strings.TrimPrefix(u.Path, "/"),
			OutputTopic: q.Get("output"), DeadLetterTopic: q.Get("dlq"), Group: q.Get("group"), Compression: q.Get("compression")}
		if v := q.Get("max_in_flight_bytes"); v != "" {
			if s.Kafka.MaxInFlightBytes, err = strconv.Atoi(v); err != nil {
				return s, fmt.Errorf("max_in_flight_bytes: %w", err)
			}
		}
	case "redis", "rediss":
		base := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: u.Path}
		s.Redis = &redisSpec{URL: base.String(), Stream: q.Get("stream"), OutputStream: q.Get("output"), DeadLetterStream: q.Get("dlq"),
			Group: q.Get("group"), Consumer: q.Get("consumer"), Field: q.Get("field")}
	default:
		return s, fmt.Errorf("scheme %q: want kafka:// or redis://", u.Scheme)
	}
	return s, nil
}

// lanes is what the server runs beside its transports: the job table and consumers.
type lanes struct {
	jobs      *jobs.Manager // nil without --jobs-dir
	specs     []consumerSpec
	log       *slog.Logger
	mu        sync.Mutex
	consumers map[string]statsSource // by name: a restarted consumer replaces its old self
}

type statsSource interface{ Stats() []stream.Stats }

func newLanes(cfg lanesConfig, c *core.Server, s3 batch.S3Options, log *slog.Logger) (*lanes, error) {
	specs, err := cfg.specs()
	if err != nil {
		return nil, err
	}
	l := &lanes{specs: specs, log: log, consumers: map[string]statsSource{}}
	for _, s := range specs {
		if s.Redis != nil {
			// go-redis logs dial failures through one process-wide logger, to stderr by
			// default: they belong in the server's own log, in its format.
			redis.SetLogger(redisLogger{log.With("library", "go-redis")})
			break
		}
	}
	if cfg.jobsDir != "" {
		dir, err := filepath.Abs(cfg.jobsDir)
		if err != nil {
			return nil, fmt.Errorf("--jobs-dir: %w", err)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--jobs-dir %s: not a folder", cfg.jobsDir)
		}
		l.jobs = jobs.New(jobRunner(c, dir, s3), jobs.Options{MaxRunning: cfg.jobsRunning, Check: func(s mgmtapi.JobSpec) error {
			return checkJob(dir, s)
		}})
	}
	return l, nil
}

// redisLogger hands go-redis's messages to slog as warnings.
type redisLogger struct{ log *slog.Logger }

// Printf logs go-redis's message; its failed dials go at debug level, since the
// consumer reports each failed connection itself, once per retry with its backoff,
// where go-redis logged four lines a second for a Redis that was down.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	level := slog.LevelWarn
	if strings.Contains(format, "failed to dial") {
		level = slog.LevelDebug
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

// jobRunner runs a server-side job as `ferry batch` would, its rows queued behind online
// requests (core.InferRequest.Background).
func jobRunner(c *core.Server, dir string, s3 batch.S3Options) jobs.RunFunc {
	return func(ctx context.Context, spec mgmtapi.JobSpec, progress func(mgmtapi.JobProgress)) error {
		shard, err := optionalShard(spec.Shard) // checked at Submit (checkJob)
		if err != nil {
			return err
		}
		opts := batch.Options{Input: jobPath(dir, spec.Input), Output: jobPath(dir, spec.Output), Rejects: jobPath(dir, spec.Rejects),
			Model: spec.Model, Version: spec.Version, Mapping: lane.Mapping(spec.Mapping), IDColumns: spec.IDColumns, Shard: shard,
			ChunkRows: spec.ChunkRows, Concurrency: spec.Concurrency, Background: true, S3: s3,
			Progress: func(p batch.Progress) {
				progress(mgmtapi.JobProgress{Rows: p.Rows, Rejected: p.Rejected, Total: p.Total, Resumed: p.Resumed})
			}}
		_, err = batch.Run(ctx, c, opts)
		return err
	}
}

// jobPath places a job's local path under the jobs folder; s3:// passes through.
func jobPath(dir, p string) string {
	if p == "" || strings.HasPrefix(p, "s3://") || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// optionalShard is batch.ParseShard where "" is the whole input, as --shard and a job's
// "shard" leave it.
func optionalShard(s string) (batch.Shard, error) {
	if s == "" {
		return batch.Shard{}, nil
	}
	return batch.ParseShard(s)
}

// checkJob refuses, before a job is queued, a shard that is not I/N and a local path
// outside the jobs folder (after resolving any symbolic links in the part that
// exists): a job reads and writes as the server.
func checkJob(dir string, s mgmtapi.JobSpec) error {
	if _, err := optionalShard(s.Shard); err != nil {
		return err
	}
	for _, f := range []struct{ name, p string }{{"input", s.Input}, {"output", s.Output}, {"rejects", s.Rejects}} {
		if f.p == "" || strings.HasPrefix(f.p, "s3://") {
			continue
		}
		if strings.Contains(f.p, "://") {
			return fmt.Errorf("%s %q: only local paths and s3:// URIs", f.name, f.p)
		}
		p := filepath.Clean(jobPath(dir, f.p))
		resolved, err := resolveExisting(p)
		if err != nil {
			return fmt.Errorf("%s %q: %w", f.name, f.p, err)
		}
		rel, err := filepath.Rel(dir, resolved)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s %q is outside --jobs-dir", f.name, f.p)
		}
	}
	return nil
}

// resolveExisting resolves the symbolic links of p's longest existing prefix.
func resolveExisting(p string) (string, error) {
	rest := ""
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !os.IsNotExist(err) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// mgmtOptions serves the job routes.
func (l *lanes) mgmtOptions(o *mgmt.Options) {
	if l.jobs != nil {
		o.Jobs = l.jobs
	}
}

func (l *lanes) enabled() bool { return l.jobs != nil || len(l.specs) > 0 }

// register reports every consumer's counts.
func (l *lanes) register(reg prometheus.Registerer) {
	if len(l.specs) == 0 {
		return
	}
	reg.MustRegister(stream.Collector(func() []stream.Stats {
		l.mu.Lock()
		defer l.mu.Unlock()
		var out []stream.Stats
		for _, s := range l.specs {
			if c := l.consumers[s.Name]; c != nil {
				out = append(out, c.Stats()...)
			}
		}
		return out
	}))
}

// runners are the consumers, each started once the models are loaded (ready closes):
// a consumer reads its model's schema before it consumes anything. A consumer that
// fails (its model not loaded, its broker gone, an output it cannot write) is logged
// and started again after a back-off: a streaming lane never stops online serving.
func (l *lanes) runners(c *core.Server, ready <-chan struct{}) []func(context.Context) error {
	var out []func(context.Context) error
	for _, s := range l.specs {
		out = append(out, func(ctx context.Context) error {
			select {
			case <-ready:
			case <-ctx.Done():
				return nil
			}
			for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
				err := l.consume(ctx, c, s)
				if ctx.Err() != nil {
					return nil
				}
				l.log.Error("streaming consumer stopped; starting it again", "consumer", s.Name, "err", err, "in", wait)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		})
	}
	return out
}

// consume runs one consumer until ctx ends or it fails.
func (l *lanes) consume(ctx context.Context, c *core.Server, s consumerSpec) error {
	run, err := l.start(ctx, c, s)
	if err != nil {
		return err
	}
	if err := run(ctx); err != nil {
		return err
	}
	if ctx.Err() == nil {
		return errors.New("it returned without an error")
	}
	return nil
}

func (l *lanes) start(ctx context.Context, c *core.Server, s consumerSpec) (func(context.Context) error, error) {
	p, err := stream.NewProcessor(ctx, c, stream.Options{Model: s.Model, Version: s.Version, Mapping: lane.Mapping(s.Mapping),
		Passthrough: s.Passthrough, Limits: c.Limits(), Priority: s.Priority})
	if err != nil {
		return nil, err
	}
	var run func(context.Context) error
	var src statsSource
	if k := s.Kafka; k != nil {
		cons, err := kafka.New(kafka.Config{Name: s.Name, Brokers: k.Brokers, Group: k.Group, InputTopic: k.InputTopic, OutputTopic: k.OutputTopic,
			DeadLetterTopic: k.DeadLetterTopic, MaxInFlight: s.MaxInFlight, MaxInFlightBytes: k.MaxInFlightBytes, Compression: k.Compression}, p, l.log)
		if err != nil {
			return nil, err
		}
		run, src = cons.Run, cons
	} else {
		r := s.Redis
		cons, err := redisstream.New(redisstream.Config{Name: s.Name, URL: r.URL, Stream: r.Stream, OutputStream: r.OutputStream,
			DeadLetterStream: r.DeadLetterStream, Group: r.Group, Consumer: r.Consumer, Field: r.Field, MaxInFlight: s.MaxInFlight,
			ClaimIdle: r.ClaimIdle.D(), MaxLen: r.MaxLen}, p, l.log) // each consumer names itself in its lines
		if err != nil {
			return nil, err
		}
		run, src = cons.Run, cons
	}
	l.mu.Lock()
	l.consumers[s.Name] = src
	l.mu.Unlock()
	l.log.Info("consuming", "consumer", s.Name, "model", s.Model)
	return run, nil
}

// close cancels the running jobs (their committed chunks stay: the same spec resumes).
func (l *lanes) close() {
	if l.jobs != nil {
		l.jobs.Close()
	}
}
