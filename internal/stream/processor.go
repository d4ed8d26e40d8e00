package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// Message is one consumed message as the Processor sees it.
type Message struct {
	Key   []byte
	Value []byte
}

// Result is what became of one message: exactly one of Value and Err is set. With Retry
// the message was not scored (core was unavailable or overloaded, or the context ended;
// Err says which) and must be consumed again, neither produced nor dead-lettered.
type Result struct {
	Value []byte // the output message: a V2 JSON response, or a flat JSON row
	Err   error  // the message goes to the dead-letter topic with this error
	Retry bool
}

// Options configure a Processor.
type Options struct {
	Model   string
	Version string // "" lets core pick, as for online requests
	Mapping lane.Mapping
	// Passthrough lists the row fields copied into each output row (ids, keys); nil
	// copies every field the model does not read.
	Passthrough []string
	Limits      core.Limits
	// Priority is the V2 priority parameter every request carries (0: the model's
	// default level).
	Priority int
}

// Processor scores messages for one model. It is safe for concurrent use.
type Processor struct {
	c      lane.Core
	s      *lane.Schema
	opts   Options
	reads  map[string]bool // fields the model reads
	pass   map[string]bool // Options.Passthrough's fields; nil when it is nil
	params core.Parameters
}

// NewProcessor reads the model's schema through core; a mapping that names an input
// the model lacks fails here, before anything is consumed.
func NewProcessor(ctx context.Context, c lane.Core, opts Options) (*Processor, error) {
	s, err := lane.Describe(ctx, c, opts.Model, opts.Version, opts.Mapping)
	if err != nil {
		return nil, err
	}
	if opts.Limits == (core.Limits{}) {
		opts.Limits = core.DefaultLimits()
	}
	p := &Processor{c: c, s: s, opts: opts, reads: map[string]bool{}}
	for _, f := range s.Fields() {
		p.reads[f] = true
	}
	if opts.Passthrough != nil {
		p.pass = map[string]bool{}
		for _, f := range opts.Passthrough {
			p.pass[f] = true
		}
	}
	if opts.Priority > 0 {
		p.params = core.Parameters{"priority": int64(opts.Priority)}
	}
	return p, nil
}

// Schema is the model's schema as the processor reads rows with it.
func (p *Processor) Schema() *lane.Schema { return p.s }

// Process scores msgs and returns one result per message, in msgs' order. Rows are
// gathered into requests of up to the model's max batch size; every request runs
// concurrently, so the dynamic batcher sees them together.
func (p *Processor) Process(ctx context.Context, msgs []Message) []Result {
	results := make([]Result, len(msgs))
	var wg sync.WaitGroup
	b := p.s.NewBuilder()
	var batch []int // message index per row in b
	rows := make([]rowIn, len(msgs))
	var kept []lane.Field // the flat rows' passthrough fields, each row's a piece of it
	flush := func() {
		if b.Len() == 0 {
			return
		}
		req, idx := b.Request(""), batch
		batch = nil
		wg.Go(func() { p.scoreRows(ctx, req, idx, rows, results) })
	}
	for i, m := range msgs {
		if i%yieldEvery == yieldEvery-1 {
			// Decoding a chunk is milliseconds of pure Go work; a lane's network
			// goroutines (fetches, produce acknowledgements) that became runnable meanwhile
			// would otherwise wait for the scheduler's 10 ms preemption, and the
			// acknowledgements are what frees room for the next fetch. Measured on the
			// Kafka lane: a chunk's acknowledgement wait fell from 4.3-7.4 ms to 2.7-4.3 ms.
			runtime.Gosched()
		}
		var fields []lane.Field
		var ok bool
		if kept, fields, ok = p.addFlat(b, m.Value, flush, kept); ok {
			rows[i] = rowIn{kept: fields, flat: true}
			batch = append(batch, i)
			continue
		}
		req, row, err := lane.DecodeMessage(m.Value, p.opts.Limits)
		switch {
		case err != nil:
			results[i].Err = err
		case req != nil:
			wg.Go(func() { results[i] = p.scoreRequest(ctx, req) })
		default:
			rows[i] = rowIn{row: row}
			err := b.Add(row)
			if errors.Is(err, lane.ErrFull) {
				flush()
				err = b.Add(row)
			}
			if err != nil {
				results[i].Err = err
				continue
			}
			batch = append(batch, i)
		}
	}
	flush()
	wg.Wait()
	return results
}

// rowIn is a message's row as Process read it: decoded the general way, or the
// fields AddFlat kept of a flat row.
type rowIn struct {
	row  lane.Row
	kept []lane.Field
	flat bool
}

// general is the row as the general way decodes it.
func (r rowIn) general() lane.Row {
	if r.flat {
		return lane.FieldsRow(r.kept)
	}
	return r.row
}

// addFlat adds a flat row the direct way (Builder.AddFlat), flushing first when the
// request is full. Its passthrough fields are appended to kept, and fields is them;
// false when the message needs the general way.
func (p *Processor) addFlat(b *lane.Builder, body []byte, flush func(), kept []lane.Field) (_, fields []lane.Field, ok bool) {
	start := len(kept)
	kept, ok, err := b.AddFlat(body, p.pass, kept)
	if ok && errors.Is(err, lane.ErrFull) {
		flush()
		kept, ok, err = b.AddFlat(body, p.pass, kept) // an empty request takes any row: err is nil
	}
	if !ok || err != nil {
		return kept[:start], nil, false
	}
	return kept, kept[start:len(kept):len(kept)], true
}

func (p *Processor) scoreRequest(ctx context.Context, req *core.InferRequest) Result {
	if req.Model == "" {
		req.Model, req.Version = p.opts.Model, p.opts.Version
	}
	if req.Model != p.opts.Model {
		return Result{Err: fmt.Errorf("request names model %q; this consumer serves %q", req.Model, p.opts.Model)}
	}
	p.setPriority(req)
	resp, err := p.c.Infer(ctx, req)
	if err != nil {
		return failed(ctx, err)
	}
	out, err := lane.EncodeResponse(resp)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Value: out}
}

func (p *Processor) setPriority(req *core.InferRequest) {
	if p.params == nil {
		return
	}
	if req.Parameters == nil {
		req.Parameters = core.Parameters{}
	}
	if _, set := req.Parameters["priority"]; !set {
		req.Parameters["priority"] = p.params["priority"]
	}
}

// scoreRows runs one request of rows and writes each row's output message.
func (p *Processor) scoreRows(ctx context.Context, req *core.InferRequest, idx []int, rows []rowIn, results []Result) {
	req.Parameters = p.params
	resp, err := p.c.Infer(ctx, req)
	if err != nil {
		for _, i := range idx {
			results[i] = failed(ctx, err)
		}
		return
	}
	var split [][]*tensor.Tensor // the general way's pieces, made once a row needs them
	w, fast := lane.NewOutputRows(resp.Outputs, len(idx), p.s.Batching)
	var buf []byte
	for k, i := range idx {
		if fast {
			if cap(buf)-len(buf) < 256 { // rows share 4 KB buffers: one allocation for many rows
				buf = make([]byte, 0, 4096)
			}
			start := len(buf)
			var ok bool
			if r := rows[i]; r.flat {
				buf, ok = w.AppendFields(buf, r.kept, k)
			} else {
				buf, ok = w.Append(buf, r.row, p.keep, k)
			}
			if ok {
				results[i] = Result{Value: buf[start:len(buf):len(buf)]}
				continue
			}
			buf = buf[:start]
		}
		if split == nil {
			var err error
			if split, err = p.s.Split(resp, len(idx)); err != nil {
				for _, i := range idx[k:] { // the rows before k are written: OutputRows took them
					results[i].Err = err
				}
				return
			}
		}
		results[i] = p.outputRow(rows[i].general(), resp.Outputs, split[k])
	}
}

// keep says whether an input field is copied into the output row.
func (p *Processor) keep(f string) bool { return lane.Passes(p.pass, f, p.reads[f]) }

// outputRow is a flat JSON row: the passthrough fields, then each output by name.
func (p *Processor) outputRow(in lane.Row, names []*tensor.Tensor, outs []*tensor.Tensor) Result {
	row := make(map[string]any, len(outs)+len(p.opts.Passthrough))
	if p.opts.Passthrough != nil {
		for _, f := range p.opts.Passthrough {
			if v, ok := in[f]; ok {
				row[f] = v
			}
		}
	} else {
		for f, v := range in {
			if !p.reads[f] {
				row[f] = v
			}
		}
	}
	for j, t := range outs {
		v, err := lane.Value(t)
		if err != nil {
			return Result{Err: err}
		}
		row[names[j].Name] = v
	}
	b, err := lane.MarshalRow(row)
	if err != nil {
		return Result{Err: fmt.Errorf("encoding the output row: %w", err)}
	}
	return Result{Value: b}
}

// failed sorts an inference error: what may succeed later is retried, what never will
// (a bad request, an unknown model) is dead-lettered.
func failed(ctx context.Context, err error) Result {
	if ctx.Err() != nil || errors.Is(err, core.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Result{Err: err, Retry: true}
	}
	return Result{Err: err}
}

// Header names of a dead-lettered message: why it failed, and where it came from.
const (
	HeaderError  = "ferry-error"
	HeaderSource = "ferry-source"
)

// Position is a message's place in its source, for the dead-letter header and logs.
func Position(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "@" + strconv.FormatInt(offset, 10)
}

// yieldEvery is how many messages Process decodes between yields of the processor.
const yieldEvery = 64
