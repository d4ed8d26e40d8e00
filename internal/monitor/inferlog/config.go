package inferlog

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ferryml/ferry/internal/duration"
)

// Config configures the inference log (loaded from YAML with sigs.k8s.io/yaml, hence
// the snake_case json tags). At least one sink (Dir, Kafka or HTTP) is required.
type Config struct {
	// Sample is the fraction of requests logged, in (0, 1]; 0 means 1 (log all). The
	// choice is deterministic per client request id (else trace id), so replicas and a
	// request's shadow copy agree.
	Sample float64 `json:"sample,omitempty"`
	// MaxPayloadBytes caps the tensor bytes kept per entry (inputs, then outputs);
	// whole elements past it are cut and the entry is flagged truncated. Default 16 KiB.
	MaxPayloadBytes int `json:"max_payload_bytes,omitempty"`
	// Redact names input or output tensors whose data is logged as "[redacted]".
	Redact []string `json:"redact,omitempty"`
	// Buffer is the capacity of each queue (the capture queue and each sink's), in
	// entries. Default 1024. Memory is bounded by about (1 + sinks) × Buffer entries.
	Buffer int `json:"buffer,omitempty"`
	// TensorData is how the files and Kafka carry numeric tensor data: "binary"
	// (default: base64 of the little-endian bytes, "data_b64", cheap to write; Query,
	// ferry logs and the API answer V2 JSON numbers) or "json" (V2 JSON arrays, "data").
	// BYTES tensors are always JSON strings; the CloudEvents sink always sends V2 JSON.
	TensorData string `json:"tensor_data,omitempty"`
	// Models limits the log to these models; empty logs every model.
	Models []string `json:"models,omitempty"`

	// Dir enables the file sink: rolling files in this directory, read back by Query.
	Dir string `json:"dir,omitempty"`
	// Format of the files: "jsonl" (default) or "parquet".
	Format string `json:"format,omitempty"`
	// MaxFileBytes rolls a file past this size (default 64 MiB).
	MaxFileBytes int64 `json:"max_file_bytes,omitempty"`
	// MaxFileAge rolls a file this old (default 1h).
	MaxFileAge Duration `json:"max_file_age,omitempty"`

	// Retention removes rolled files whose last entry is older than this (0: keep
	// them); MaxTotalBytes removes the oldest rolled files while the directory's
	// rolled files hold more (0: no bound). Both are applied at each roll.
	Retention     Duration `json:"retention,omitempty"`
	MaxTotalBytes int64    `json:"max_total_bytes,omitempty"`

	Kafka *KafkaConfig `json:"kafka,omitempty"`
	HTTP  *HTTPConfig  `json:"http,omitempty"`
}

// KafkaConfig enables the Kafka sink: one record per entry, key = request id, value =
// the JSON entry.
type KafkaConfig struct {
	Brokers []string `json:"brokers"`
	Topic   string   `json:"topic"`
	// Timeout bounds delivering one batch (default 10s).
	Timeout Duration `json:"timeout,omitempty"`
}

// HTTPConfig enables the CloudEvents sink: KServe's logger format (binary mode), one
// request event per entry and one response event per successful entry.
type HTTPConfig struct {
	URL string `json:"url"`
	// Timeout bounds one POST attempt (default 5s).
	Timeout Duration `json:"timeout,omitempty"`
	// Retries after a failed attempt (network error, 429 or 5xx); default 3, -1 none.
	Retries int `json:"retries,omitempty"`
	// Source is the events' ce-source (default "ferry").
	Source string `json:"source,omitempty"`
	// Concurrency is the number of POSTs in flight (default 4).
	Concurrency int `json:"concurrency,omitempty"`
}

// Defaults.
const (
	DefaultSample          = 1.0
	DefaultMaxPayloadBytes = 16 << 10
	DefaultBuffer          = 1024
	DefaultMaxFileBytes    = 64 << 20
	DefaultMaxFileAge      = time.Hour
	DefaultKafkaTimeout    = 10 * time.Second
	DefaultHTTPTimeout     = 5 * time.Second
	DefaultHTTPRetries     = 3
	DefaultHTTPConcurrency = 4
)

// Encodings of numeric tensor data in the files and Kafka (Config.TensorData).
const (
	TensorDataBinary = "binary"
	TensorDataJSON   = "json"
)

// Formats of the file sink.
const (
	FormatJSONL   = "jsonl"
	FormatParquet = "parquet"
)

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.Sample == 0 {
		c.Sample = DefaultSample
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	if c.TensorData == "" {
		c.TensorData = TensorDataBinary
	}
	if c.Format == "" {
		c.Format = FormatJSONL
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxFileAge == 0 {
		c.MaxFileAge = Duration(DefaultMaxFileAge)
	}
	if k := c.Kafka; k != nil && k.Timeout == 0 {
		kc := *k
		kc.Timeout = Duration(DefaultKafkaTimeout)
		c.Kafka = &kc
	}
	if h := c.HTTP; h != nil {
		hc := *h
		if hc.Timeout == 0 {
			hc.Timeout = Duration(DefaultHTTPTimeout)
		}
		if hc.Retries == 0 {
			hc.Retries = DefaultHTTPRetries
		}
		if hc.Source == "" {
			hc.Source = "ferry"
		}
		if hc.Concurrency == 0 {
			hc.Concurrency = DefaultHTTPConcurrency
		}
		c.HTTP = &hc
	}
	return c
}

// Validate reports every field error at once (on the config with defaults applied).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Sample < 0 || c.Sample > 1 || c.Sample != c.Sample {
		bad("sample: must be in (0, 1], got %v", c.Sample)
	}
	if c.MaxPayloadBytes < 0 {
		bad("max_payload_bytes: must be > 0, got %d", c.MaxPayloadBytes)
	}
	if c.Buffer < 0 {
		bad("buffer: must be > 0, got %d", c.Buffer)
	}
	if c.Format != "" && c.Format != FormatJSONL && c.Format != FormatParquet {
		bad("format: want %q or %q, got %q", FormatJSONL, FormatParquet, c.Format)
	}
	if c.TensorData != "" && c.TensorData != TensorDataBinary && c.TensorData != TensorDataJSON {
		bad("tensor_data: want %q or %q, got %q", TensorDataBinary, TensorDataJSON, c.TensorData)
	}
	if c.MaxTotalBytes < 0 {
		bad("max_total_bytes: must be ≥ 0, got %d", c.MaxTotalBytes)
	}
	if c.MaxFileBytes < 0 {
		bad("max_file_bytes: must be > 0, got %d", c.MaxFileBytes)
	}
	if c.MaxFileAge < 0 {
		bad("max_file_age: must be > 0, got %s", c.MaxFileAge.D())
	}
	if c.Dir == "" && c.Kafka == nil && c.HTTP == nil {
		bad("no sink: set dir, kafka or http")
	}
	if k := c.Kafka; k != nil {
		if len(k.Brokers) == 0 {
			bad("kafka.brokers: at least one broker is required")
		}
		if k.Topic == "" {
			bad("kafka.topic: required")
		}
		if k.Timeout != 0 && k.Timeout.D() < time.Second { // franz-go's floor for a delivery timeout
			bad("kafka.timeout: must be at least 1s, got %s", k.Timeout.D())
		}
	}
	if h := c.HTTP; h != nil {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("http.url: want http://HOST[:PORT]/PATH or https://..., got %q", h.URL)
		}
		if h.Timeout < 0 {
			bad("http.timeout: must be > 0, got %s", h.Timeout.D())
		}
		if h.Retries < -1 {
			bad("http.retries: must be >= -1, got %d", h.Retries)
		}
		if h.Concurrency < 0 {
			bad("http.concurrency: must be > 0, got %d", h.Concurrency)
		}
	}
	return errors.Join(errs...)
}

// Duration reads "10s" or a number of seconds and writes "10s" (the rollout spec's
// type, so every config file spells durations one way).
type Duration = duration.Duration
