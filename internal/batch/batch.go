package batch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/lane"
)

// Shard is the I-th of N disjoint parts of an input; the zero value is the whole input.
type Shard struct{ Index, Count int }

// ParseShard reads "I/N" with 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4", s)
	}
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with whole numbers, e.g. 0/4", s)
	}
	sh := Shard{Index: idx, Count: cnt}
	if cnt < 1 {
		return Shard{}, fmt.Errorf("shard %q: want 0 <= I < N", s)
	}
	return sh, sh.check()
}

func (s Shard) check() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 <= I < N", s.Index, s.Count)
	}
	return nil
}

// whole is the shard as a fraction: the zero value is 0/1.
func (s Shard) whole() Shard {
	if s.Count == 0 {
		return Shard{0, 1}
	}
	return s
}

func (s Shard) String() string { w := s.whole(); return fmt.Sprintf("%d/%d", w.Index, w.Count) }

// Options describe one job.
type Options struct {
	// Input and Output are local paths or s3://bucket/key; the format is the
	// extension's: .parquet, .csv, .jsonl or .ndjson. "{shard}" in Output is replaced
	// by the shard's index (0 for a job without a shard).
	Input, Output string
	// Rejects is where failed rows go, one JSON line each (row index, id columns,
	// error); "" is Output + ".rejects.jsonl".
	Rejects        string
	Model, Version string
	Mapping        lane.Mapping // nil: columns named as the inputs
	// IDColumns are copied beside the outputs; none: a "row" column, the row's 0-based
	// index in the input.
	IDColumns []string
	Shard     Shard
	ChunkRows int // rows per committed chunk (0: 64 x the model's max batch)
	// Concurrency is the requests in flight (0: 8): enough queued behind each running
	// batch that the model does not wait for the job's threads to wake between
	// batches, on a machine whose cores it keeps busy.
	Concurrency int
	Priority    int // V2 "priority" parameter on every request (0: the model's default)
	// Background queues the job's requests behind every online request
	// (core.InferRequest.Background): a job on a serving process leaves online latency
	// alone. `ferry batch` in its own process has no online traffic to yield to.
	Background bool
	// Progress is called after each committed chunk, from one goroutine; may be nil.
	// It runs on the goroutine that commits, so it should return quickly.
	Progress func(Progress)
	S3       S3Options
	// WorkDir holds the part files and the checkpoint while the job runs; "" is
	// Output + ".ferry-batch" for a local output, a folder under the system's temporary
	// folder named for the job for an s3:// one.
	WorkDir string
}

// S3Options reach an S3-compatible store; credentials come from the AWS environment.
type S3Options struct {
	Endpoint  string // "" : AWS
	Region    string // "" : us-east-1
	PathStyle bool   // bucket in the path, as most S3-compatible stores want
}

// Progress is a job's state after a committed chunk.
type Progress struct {
	Rows, Rejected int64         // rows scored / rejected so far, counting chunks committed before a resume
	Total          int64         // rows in this job's input (its shard), -1 when not known up front
	Elapsed        time.Duration // since this run (not the job's first) started
	Resumed        bool          // this run continued from a checkpoint
}

// ErrCheckpoint is wrapped by Run's error when the work folder holds a checkpoint of
// another job (other options, or an input that changed since).
var ErrCheckpoint = errors.New("checkpoint belongs to another job")

// Run scores opts.Input into opts.Output. It checks the model and the input's columns
// before scoring anything; rows that cannot be scored go to the rejects file and the
// job goes on. It returns the final progress; an error means the job stopped, and Run
// with the same options continues it.
func Run(ctx context.Context, c lane.Core, opts Options) (Progress, error) {
	j, err := newJob(ctx, c, opts)
	if err != nil {
		return Progress{}, err
	}
	defer j.close()
	return j.run(ctx)
}
