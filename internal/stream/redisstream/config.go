package redisstream

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is one Redis Streams consumer: where it reads, where it writes, and its limits.
type Config struct {
	Name             string // consumer name in the streams file: metrics label, logs
	URL              string // redis://host:port/db (redis.ParseURL); default redis://127.0.0.1:6379/0
	Stream           string // input stream
	OutputStream     string
	DeadLetterStream string // "" -> Stream + ".dlq"
	Group            string // "" -> "ferry-" + Name; created (MKSTREAM, from the stream's start) if missing
	Consumer         string // this process's consumer name in the group; "" -> hostname-pid
	Field            string // the entry field holding the message body; "" -> "body"
	// MaxInFlight bounds the entries read and not yet acknowledged (0: 4 x the model's
	// max batch size, at least 16).
	MaxInFlight int
	// ClaimIdle is how long an entry stays pending (read by a consumer that then crashed
	// or stalled) before this consumer reclaims it; 0 -> 30s. It must exceed the longest
	// time one entry takes to score, or live consumers take each other's entries.
	ClaimIdle time.Duration
	MaxLen    int64 // approximate MAXLEN for the output and dead-letter streams; 0 = none
}

// Defaults of the Config fields left empty.
const (
	DefaultURL       = "redis://127.0.0.1:6379/0"
	DefaultField     = "body"
	DefaultClaimIdle = 30 * time.Second
	minInFlight      = 16
)

// withDefaults fills the empty fields; maxBatch is the model's max batch size.
func (c Config) withDefaults(maxBatch int) Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.DeadLetterStream == "" && c.Stream != "" {
		c.DeadLetterStream = c.Stream + ".dlq"
	}
	if c.Group == "" && c.Name != "" {
		c.Group = "ferry-" + c.Name
	}
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "ferry"
		}
		c.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.Field == "" {
		c.Field = DefaultField
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(4*maxBatch, minInFlight)
	}
	if c.ClaimIdle == 0 {
		c.ClaimIdle = DefaultClaimIdle
	}
	return c
}

// validate names every bad field at once; c has its defaults.
func (c Config) validate() (*redis.Options, error) {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: required (the metrics label and the default group)"))
	}
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		errs = append(errs, fmt.Errorf("url %q: %w", c.URL, err))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("stream: required (the input stream)"))
	}
	switch c.OutputStream {
	case "":
		errs = append(errs, errors.New("output_stream: required"))
	case c.Stream:
		errs = append(errs, fmt.Errorf("output_stream: %q is also the input stream; the consumer would read its own answers", c.OutputStream))
	}
	if c.Stream != "" && c.DeadLetterStream == c.Stream {
		errs = append(errs, fmt.Errorf("dead_letter_stream: %q is also the input stream", c.DeadLetterStream))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max_in_flight: must be >= 0, got %d", c.MaxInFlight))
	}
	if c.ClaimIdle < 0 {
		errs = append(errs, fmt.Errorf("claim_idle: must be >= 0, got %v", c.ClaimIdle))
	}
	if c.MaxLen < 0 {
		errs = append(errs, fmt.Errorf("max_len: must be >= 0, got %d", c.MaxLen))
	}
	return opts, errors.Join(errs...)
}
