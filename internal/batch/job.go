package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
)

// job is one Run: its resolved paths, the model's schema and the opened input.
type job struct {
	c       lane.Core
	opts    Options
	schema  *lane.Schema
	params  core.Parameters
	in, out format
	output  string // resolved ({shard} replaced)
	rejects string
	dir     string // work folder
	store   *store // nil unless a path is s3://
	local   string // the input file read: opts.Input, or its copy in dir
	id      inputID
	src     source
	ids     []string // id columns; nil: the "row" column
	cols    []outCol
	start   time.Time
	stop    context.CancelCauseFunc // ends a running score with its reason
}

func newJob(ctx context.Context, c lane.Core, opts Options) (*job, error) {
	j := &job{c: c, opts: opts, start: time.Now()}
	if err := j.resolve(); err != nil {
		return nil, err
	}
	s, err := lane.Describe(ctx, c, opts.Model, opts.Version, opts.Mapping)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", opts.Model, err)
	}
	j.schema = s
	if opts.Priority > 0 {
		j.params = core.Parameters{"priority": int64(opts.Priority)}
	}
	if isS3(opts.Input) || isS3(j.output) || isS3(j.rejects) {
		if j.store, err = newStore(opts.S3); err != nil {
			return nil, err
		}
	}
	_, statErr := os.Stat(j.dir)
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	err = j.stageInput(ctx)
	if err == nil {
		err = j.openInput()
	}
	if err != nil {
		j.close()
		if errors.Is(statErr, os.ErrNotExist) {
			os.RemoveAll(j.dir) // a job that never started leaves nothing behind
		}
		return nil, err
	}
	return j, nil
}

// resolve checks the options and works out the paths.
func (j *job) resolve() error {
	o := &j.opts
	if o.Input == "" || o.Output == "" || o.Model == "" {
		return errors.New("a batch job needs an input, an output and a model")
	}
	if err := o.Shard.check(); err != nil {
		return err
	}
	var err error
	if j.in, err = formatOf(o.Input); err != nil {
		return fmt.Errorf("input %w", err)
	}
	j.output = strings.ReplaceAll(o.Output, "{shard}", strconv.Itoa(o.Shard.whole().Index))
	if j.out, err = formatOf(j.output); err != nil {
		return fmt.Errorf("output %w", err)
	}
	j.rejects = o.Rejects
	if j.rejects == "" {
		j.rejects = j.output + ".rejects.jsonl"
	}
	j.rejects = strings.ReplaceAll(j.rejects, "{shard}", strconv.Itoa(o.Shard.whole().Index))
	if o.ChunkRows < 0 || o.Concurrency < 0 || o.Priority < 0 {
		return errors.New("ChunkRows, Concurrency and Priority must not be negative")
	}
	j.dir = o.WorkDir
	if j.dir == "" {
		if isS3(j.output) {
			sum := sha256.Sum256([]byte(o.Input + "\n" + j.output))
			j.dir = filepath.Join(os.TempDir(), "ferry-batch-"+hex.EncodeToString(sum[:8]))
		} else {
			j.dir = j.output + ".ferry-batch"
		}
	}
	j.ids = o.IDColumns
	return nil
}

// stageInput finds the file to read: a local input as it is, an s3:// one copied into
// the work folder (once: a resumed job reuses the copy while the object is unchanged).
func (j *job) stageInput(ctx context.Context) error {
	if !isS3(j.opts.Input) {
		st, err := os.Stat(j.opts.Input)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		j.local = j.opts.Input
		j.id = inputID{Size: st.Size(), ModTime: st.ModTime().UnixNano()}
		return nil
	}
	id, err := j.store.head(ctx, j.opts.Input)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	j.id = id
	j.local = filepath.Join(j.dir, "input"+j.in.ext())
	if cp, _ := loadCheckpoint(j.dir); cp != nil && cp.Input == id {
		if st, err := os.Stat(j.local); err == nil && st.Size() == id.Size {
			return nil
		}
	}
	if err := j.store.download(ctx, j.opts.Input, j.local); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	return nil
}

// openInput opens the input and checks it against the model before anything is scored.
func (j *job) openInput() error {
	var err error
	switch j.in {
	case fmtParquet:
		var p *parquetSource
		p, err = openParquet(j.local)
		j.src = p
	default:
		j.src, err = openText(j.local, j.in == fmtCSV)
	}
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	have := j.src.Columns()
	if err := j.schema.CheckFields(have); err != nil {
		return err
	}
	for _, id := range j.ids {
		if !slices.Contains(have, id) {
			return fmt.Errorf("id column %q is not in the input (columns: %s)", id, strings.Join(have, ", "))
		}
	}
	fields := fieldInputs(j.schema, j.opts.Mapping)
	if err := j.src.Check(fields); err != nil {
		return err
	}
	wanted := append(slices.Clone(j.schema.Fields()), j.ids...)
	switch s := j.src.(type) {
	case *parquetSource:
		s.wanted = wanted
		s.plan = planColumns(j.schema, s, len(j.ids))
	case *textSource:
		s.wanted = wanted
		s.schema, s.ids = j.schema, j.ids
	}
	ids := j.ids
	typeOf := j.src.IDType
	if len(ids) == 0 {
		ids, typeOf = []string{"row"}, func(string) idType { return idInt64 }
	}
	j.cols = outColumns(ids, typeOf, j.schema.Outputs)
	return nil
}

func (j *job) close() {
	if j.src != nil {
		j.src.Close()
	}
}

func (j *job) chunkRows() int {
	if j.opts.ChunkRows > 0 {
		return j.opts.ChunkRows
	}
	return 64 * j.schema.MaxBatch
}

func (j *job) concurrency() int {
	if j.opts.Concurrency > 0 {
		return j.opts.Concurrency
	}
	return 8
}

// run resumes or starts the job, scores every chunk and puts the output in place.
func (j *job) run(ctx context.Context) (Progress, error) {
	hash := jobHash(j.opts, j.output, j.rejects)
	cp, err := loadCheckpoint(j.dir)
	if err != nil {
		return Progress{}, err
	}
	resumed := cp != nil
	switch {
	case cp != nil && (cp.Job != hash || cp.Input != j.id):
		return Progress{}, fmt.Errorf("%w: %s was written for other options or an input that has changed since; delete it to start over", ErrCheckpoint, j.dir)
	case cp == nil:
		start, total, err := j.src.Span(j.opts.Shard)
		if err != nil {
			return Progress{}, fmt.Errorf("input: %w", err)
		}
		cp = &checkpoint{Job: hash, Input: j.id, Pos: start, Total: total}
		if err := cp.save(j.dir); err != nil {
			return Progress{}, err
		}
	}
	if err := dropUncommitted(j.dir, cp.Chunks); err != nil {
		return Progress{}, err
	}
	if !cp.Done {
		if err := j.score(ctx, cp, resumed); err != nil {
			return j.progress(cp, resumed), err
		}
	}
	if err := j.finish(ctx, cp); err != nil {
		return j.progress(cp, resumed), err
	}
	return j.progress(cp, resumed), nil
}

func (j *job) progress(cp *checkpoint, resumed bool) Progress {
	return Progress{Rows: cp.Rows, Rejected: cp.Rejected, Total: cp.Total, Elapsed: time.Since(j.start), Resumed: resumed}
}
