package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/stream"
)

// Config is one Kafka consumer: a topic in, a topic out, through one Processor.
type Config struct {
	// Name names the consumer in metrics and logs; the group defaults to "ferry-"+Name.
	Name    string
	Brokers []string // seed brokers, host:port
	Group   string
	// InputTopic is consumed; OutputTopic receives one message per scored input,
	// keyed by the input's key.
	InputTopic  string
	OutputTopic string
	// DeadLetterTopic receives the messages that cannot be decoded or fail, as they
	// were, with the error and their position in headers ("": InputTopic + ".dlq").
	DeadLetterTopic string
	// MaxInFlight bounds the messages fetched but not yet finished (their result
	// acknowledged), across partitions; at it, fetching pauses (0: sixty-four of the
	// model's batches, at least 64). One Process call takes at most four batches and
	// at most a quarter of the bound, so each partition has chunks fetched, being
	// scored and being acknowledged at once.
	MaxInFlight int
	// MaxInFlightBytes bounds the same messages by their keys' and values' bytes, so
	// large messages cannot make the count bound a memory problem (0: 64 MiB). A poll
	// may pass it by what one fetch brings.
	MaxInFlightBytes int
	// Compression is the output and dead-letter batches' codec: none (the default,
	// as Kafka's own producer), gzip, snappy, lz4 or zstd. Compressing costs the CPU the
	// model shares, for bandwidth a lane's small results rarely need; franz-go's own
	// default is snappy (in the lane benchmark, none ran the lane at 177k-208k
	// messages/s against 143k-174k with snappy, on noisy cores).
	Compression string
	// Opts are extra franz-go client options (TLS, SASL, timeouts); they come after
	// the consumer's own, so they may override them.
	Opts []kgo.Opt
}

// Defaults the consumer uses where the configuration leaves a field out.
const (
	groupPrefix = "ferry-"
	dlqSuffix   = ".dlq"
	// batchesFlight is MaxInFlight's default in model batches, and chunkBatches a
	// chunk's: sixteen chunks, so that with four partitions each has one fetched
	// ahead and one being acknowledged while one is scored. The acknowledgements of
	// a chunk take milliseconds (a produce round trip), and with only four chunks of
	// room the partitions sat waiting for records 70% of the time in the benchmark
	// (a block profile of partition.next); sixteen ran the lane at 0.79-0.80 of
	// core's rate against 0.69-0.70 (BenchmarkKafkaLane, median per-round ratios).
	batchesFlight = 64
	chunkBatches  = 4
	minFlight     = 64 // and at least this, for a model that does not batch (one row a request)
	minChunk      = 16
	// defaultFlightBytes is MaxInFlightBytes's default.
	defaultFlightBytes = 64 << 20
	commitEvery        = time.Second
	// fetchPartitionBytes is the most one fetch takes of a partition (franz-go's
	// default is 1 MiB).
	fetchPartitionBytes = 128 << 10
	backoffMin          = 20 * time.Millisecond
	backoffMax          = 2 * time.Second
	finishTimeout       = 10 * time.Second // waiting for produced results' acknowledgements on stop or revoke
)

// validate checks every field at once and fills the defaults.
func (c *Config) validate(p *stream.Processor) error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: required (it labels the consumer's metrics)"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one seed broker is required"))
	}
	for i, b := range c.Brokers {
		if b == "" {
			errs = append(errs, fmt.Errorf("brokers[%d]: empty address", i))
		}
	}
	if c.InputTopic == "" {
		errs = append(errs, errors.New("input_topic: required"))
	}
	if c.OutputTopic == "" {
		errs = append(errs, errors.New("output_topic: required"))
	}
	if c.DeadLetterTopic == "" && c.InputTopic != "" {
		c.DeadLetterTopic = c.InputTopic + dlqSuffix
	}
	if c.InputTopic != "" && (c.OutputTopic == c.InputTopic || c.DeadLetterTopic == c.InputTopic) {
		errs = append(errs, fmt.Errorf("output_topic and dead_letter_topic must differ from input_topic %q (the consumer would read its own output)", c.InputTopic))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max_in_flight: must be >= 0, got %d", c.MaxInFlight))
	}
	if c.MaxInFlightBytes < 0 {
		errs = append(errs, fmt.Errorf("max_in_flight_bytes: must be >= 0, got %d", c.MaxInFlightBytes))
	}
	if _, err := codec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if p == nil {
		errs = append(errs, errors.New("processor: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.Group == "" {
		c.Group = groupPrefix + c.Name
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = max(batchesFlight*p.Schema().MaxBatch, minFlight)
	}
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = defaultFlightBytes
	}
	return nil
}

// codec is the franz-go codec a Compression names.
func codec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", name)
}
