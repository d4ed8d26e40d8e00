package inferlog

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferryml/ferry/internal/platform/kgolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaSink produces one record per entry: key the request id, value the JSON entry.
// The producer is idempotent (franz-go's default), so its retries never duplicate.
type kafkaSink struct {
	cl      *kgo.Client
	cfg     KafkaConfig
	records []*kgo.Record
	backing []kgo.Record
}

func newKafkaSink(cfg KafkaConfig, log *slog.Logger) (*kafkaSink, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordDeliveryTimeout(cfg.Timeout.D()),
		kgo.ProducerLinger(0), // the runner already batches
		kgo.WithLogger(kgolog.New(log)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &kafkaSink{cl: cl, cfg: cfg}, nil
}

func (k *kafkaSink) name() string { return "kafka" }

// write produces the batch and waits for every record's acknowledgement, so the
// entries (whose bytes the records borrow) stay valid until the broker has them.
func (k *kafkaSink) write(ctx context.Context, batch []*capture) (int, error) {
	if cap(k.backing) < len(batch) {
		k.backing = make([]kgo.Record, maxBatch)
		k.records = make([]*kgo.Record, maxBatch)
	}
	recs := k.records[:len(batch)]
	for i, c := range batch {
		k.backing[i] = kgo.Record{Key: c.reqID[:], Value: c.line[:len(c.line)-1]} // without the newline
		recs[i] = &k.backing[i]
	}
	res := k.cl.ProduceSync(ctx, recs...)
	n := 0
	var first error
	for _, r := range res {
		if r.Err == nil {
			n++
		} else if first == nil {
			first = fmt.Errorf("kafka topic %s: %w", k.cfg.Topic, r.Err)
		}
	}
	clear(k.backing[:len(batch)])
	return n, first
}

func (k *kafkaSink) tick(time.Time) {}

func (k *kafkaSink) close(ctx context.Context) error {
	err := k.cl.Flush(ctx)
	k.cl.Close()
	return err
}
