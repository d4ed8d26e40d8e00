package batch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// chunk is rows read together and committed together.
type chunk struct {
	k    int
	recs []record
	res  []result
	end  position
	err  error          // reading it failed
	wg   sync.WaitGroup // the chunk's requests
}

// readAhead reads chunks on its own goroutine, one ahead of the requests, so that
// decoding a chunk never leaves the model without work.
func (j *job) readAhead(ctx context.Context, rd rowReader, first int) <-chan *chunk {
	out := make(chan *chunk, 1)
	go func() {
		defer close(out)
		for k := first; ctx.Err() == nil; k++ {
			recs, end, err := rd.Next(j.chunkRows())
			if err == nil && len(recs) == 0 {
				return
			}
			select {
			case out <- &chunk{k: k, recs: recs, res: make([]result, len(recs)), end: end, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// result is one row's fate: its outputs (one value per model output), or why not.
type result struct {
	out []any
	err error
}

// score reads chunks and sends their requests, up to Concurrency in flight across chunk
// boundaries (so the dynamic batcher never runs dry between chunks), while one
// goroutine commits finished chunks in order.
func (j *job) score(ctx context.Context, cp *checkpoint, resumed bool) error {
	rd, err := j.src.Read(j.opts.Shard, cp.Pos)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j.stop = cancel
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	commits := make(chan *chunk, 1)
	committed := make(chan error, 1)
	go func() { committed <- j.commitAll(ctx, cancel, commits, cp, resumed) }()
	sem := make(chan struct{}, j.concurrency())
	reads := j.readAhead(readCtx, rd, cp.Chunks)
	var readErr error
	for ch := range reads {
		if ch.err != nil {
			readErr = fmt.Errorf("input: %w", ch.err)
			break
		}
		j.dispatch(ctx, ch, sem)
		commits <- ch
	}
	cancelRead()
	for range reads {
	}
	close(commits)
	if err := <-committed; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// dispatch batches a chunk's rows to the model's size and sends each request.
func (j *job) dispatch(ctx context.Context, ch *chunk, sem chan struct{}) {
	b := j.schema.NewBuilder()
	var idx []int
	flush := func() {
		if b.Len() == 0 {
			return
		}
		req, rows := b.Request(""), idx
		idx = nil
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		ch.wg.Go(func() {
			defer func() { <-sem }()
			j.infer(ctx, req, rows, ch)
		})
	}
	for i := range ch.recs {
		r := &ch.recs[i]
		if r.err != nil {
			ch.res[i].err = r.err
			continue
		}
		err := r.addTo(b)
		if errors.Is(err, lane.ErrFull) {
			flush()
			err = r.addTo(b)
		}
		if err != nil {
			ch.res[i].err = err
			continue
		}
		idx = append(idx, i)
	}
	flush()
}

// infer scores one request. A request core refuses as invalid is scored again row by
// row, so that one bad row does not reject its neighbours; core being unavailable
// (overloaded, reloading) is waited out; the job stops when it lasts.
func (j *job) infer(ctx context.Context, req *core.InferRequest, idx []int, ch *chunk) {
	req.Parameters, req.Background = j.params, j.opts.Background
	resp, err := j.call(ctx, req)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil && retryable(err):
		j.stop(fmt.Errorf("model %q stayed unavailable: %w", j.opts.Model, err))
		return
	case err != nil && len(idx) > 1:
		for _, i := range idx {
			b := j.schema.NewBuilder()
			if err := ch.recs[i].addTo(b); err != nil {
				ch.res[i].err = err
				continue
			}
			j.infer(ctx, b.Request(""), []int{i}, ch)
		}
		return
	case err != nil:
		ch.res[idx[0]].err = err
		return
	}
	if err := j.split(resp, idx, ch); err != nil {
		for _, i := range idx {
			ch.res[i].err = err
		}
	}
}

// call sends a request, waiting out an unavailable core for up to about a minute.
func (j *job) call(ctx context.Context, req *core.InferRequest) (*core.InferResponse, error) {
	wait := 10 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := j.c.Infer(ctx, req)
		if err == nil || !retryable(err) || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func retryable(err error) bool {
	return errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrRateLimited)
}

// split cuts a response into the rows' output values, in the schema's output order.
func (j *job) split(resp *core.InferResponse, idx []int, ch *chunk) error {
	order := make([]int, len(j.schema.Outputs))
	for o, col := range j.schema.Outputs {
		order[o] = -1
		for k, t := range resp.Outputs {
			if t.Name == col.Name {
				order[o] = k
			}
		}
		if order[o] < 0 {
			return fmt.Errorf("the response has no output %q", col.Name)
		}
	}
	if outs, ok := floatValues(resp, order, len(idx), j.schema.Batching); ok {
		for r, i := range idx {
			ch.res[i].out = outs[r]
		}
		return nil
	}
	pieces, err := j.schema.Split(resp, len(idx))
	if err != nil {
		return err
	}
	for r, i := range idx {
		out := make([]any, len(order))
		for o, k := range order {
			if out[o], err = lane.Value(pieces[r][k]); err != nil {
				return err
			}
		}
		ch.res[i].out = out
	}
	return nil
}

// floatValues is split's answer for the common response, a batching model's FP32
// outputs, decoded a tensor at a time rather than cut into a tensor per row first: a
// row's value is what lane.Value gives for its piece. ok is false for any other
// response, which split cuts the general way.
func floatValues(resp *core.InferResponse, order []int, n int, batching bool) (rows [][]any, ok bool) {
	if !batching || n == 0 {
		return nil, false
	}
	total := 0
	for _, k := range order {
		t := resp.Outputs[k]
		if t.DType != tensor.FP32 || len(t.Shape) == 0 || t.Shape[0] != int64(n) || len(t.Data)%(4*n) != 0 {
			return nil, false
		}
		total += len(t.Data) / 4
	}
	floats := make([]float32, 0, total)
	vals := make([]any, n*len(order))
	rows = make([][]any, n)
	for r := range rows {
		rows[r] = vals[r*len(order) : (r+1)*len(order) : (r+1)*len(order)]
	}
	for o, k := range order {
		t := resp.Outputs[k]
		per, start := len(t.Data)/(4*n), len(floats)
		for b := 0; b < len(t.Data); b += 4 {
			floats = append(floats, math.Float32frombits(binary.LittleEndian.Uint32(t.Data[b:])))
		}
		for r := range rows {
			fs := floats[start+r*per : start+(r+1)*per : start+(r+1)*per]
			if per == 1 {
				rows[r][o] = fs[0] // lane.Value's scalar for one element
			} else {
				rows[r][o] = fs
			}
		}
	}
	return rows, true
}

// commitAll commits chunks in order as their requests finish.
func (j *job) commitAll(ctx context.Context, cancel context.CancelCauseFunc, commits <-chan *chunk, cp *checkpoint, resumed bool) error {
	var failed error
	for ch := range commits {
		ch.wg.Wait()
		if failed != nil || ctx.Err() != nil {
			continue // drain: a chunk cut short is never committed
		}
		if err := firstChunkFailed(ch, cp); err != nil {
			failed = err
			cancel(err)
			continue
		}
		if err := j.commit(ch, cp); err != nil {
			failed = err
			cancel(err)
			continue
		}
		if j.opts.Progress != nil {
			j.opts.Progress(j.progress(cp, resumed))
		}
	}
	return failed
}

// firstChunkFailed stops a job whose first chunk has not one row scored: that is a
// wrong mapping or model (a feature list one column short, say), not bad rows, and
// writing every row of a large file to the rejects file would only hide it.
func firstChunkFailed(ch *chunk, cp *checkpoint) error {
	if ch.k != 0 || cp.Chunks != 0 || len(ch.res) == 0 {
		return nil
	}
	for _, r := range ch.res {
		if r.err == nil {
			return nil
		}
	}
	return fmt.Errorf("every row of the first chunk failed (%d rows); the first, row %d: %w", len(ch.res), ch.recs[0].index, ch.res[0].err)
}

// commit writes a chunk's part and rejects files, then the checkpoint that counts them.
func (j *job) commit(ch *chunk, cp *checkpoint) error {
	var rejected int64
	part := filepath.Join(j.dir, partName(ch.k, j.out.ext()))
	err := writeFile(part, func(f *os.File) error {
		w := newPartWriter(j.out, f, j.cols)
		vals := make([]any, len(j.cols))
		for i, r := range ch.res {
			if r.err != nil {
				continue
			}
			j.idValues(vals, &ch.recs[i])
			copy(vals[len(vals)-len(r.out):], r.out)
			if err := w.Write(vals); err != nil {
				return err
			}
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", part, err)
	}
	rej := filepath.Join(j.dir, rejectsName(ch.k))
	err = writeFile(rej, func(f *os.File) error {
		var b []byte
		for i, r := range ch.res {
			if r.err != nil {
				rejected++
				b = j.appendReject(b, &ch.recs[i], r.err)
			}
		}
		_, err := f.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", rej, err)
	}
	next := *cp
	next.Chunks, next.Pos = ch.k+1, ch.end
	next.Rows += int64(len(ch.recs)) - rejected
	next.Rejected += rejected
	if err := next.save(j.dir); err != nil {
		return err
	}
	*cp = next
	return nil
}

// idValues fills the leading id values of a row.
func (j *job) idValues(vals []any, r *record) {
	if len(j.ids) == 0 {
		vals[0] = r.index
		return
	}
	for k, id := range j.ids {
		vals[k] = r.id(k, id)
	}
}

// appendReject adds one line to the rejects file: the row's index, its ids, the error.
func (j *job) appendReject(b []byte, r *record, err error) []byte {
	b = append(b, `{"row":`...)
	b = strconv.AppendInt(b, r.index, 10)
	if len(j.ids) > 0 {
		b = append(b, `,"ids":{`...)
		for k, id := range j.ids {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, id)
			b = append(b, ':')
			b = appendJSON(b, r.id(k, id)) // nil when the row could not be read
		}
		b = append(b, '}')
	}
	b = append(b, `,"error":`...)
	b = appendJSON(b, err.Error())
	return append(b, "}\n"...)
}

// writeFile writes a file beside its name, syncs it and renames it into place.
func writeFile(path string, fill func(*os.File) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
