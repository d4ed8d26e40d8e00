package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/llm"
)

// Embed returns one vector per input: the model's "hidden_states" output averaged
// over the input's tokens and L2-normalised. A model without that output answers a
// 400. Embed runs on the caller's goroutine, between the step loop's runs.
func (e *Engine) Embed(ctx context.Context, inputs [][]int) ([][]float32, error) {
	if e.shape.hidden == 0 {
		return nil, llm.BadRequest("model", "model %s has no hidden_states output: it cannot embed", e.cfg.Model)
	}
	if len(inputs) == 0 {
		return nil, llm.BadRequest("input", "no inputs to embed")
	}
	smax := 0
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, llm.BadRequest("input", "input %d is empty", i)
		}
		if len(in) > e.cfg.ContextLength {
			return nil, llm.ContextLengthExceeded(e.cfg.Model, e.cfg.ContextLength, len(in), 0)
		}
		for j, id := range in {
			if id < 0 || id >= e.shape.vocab {
				return nil, llm.BadRequest("input", "input %d token %d is id %d, outside the vocabulary [0, %d)", i, j, id, e.shape.vocab)
			}
		}
		smax = max(smax, len(in))
	}
	B, sh := len(inputs), e.shape
	// Optimum models take the inputs left padded on an empty past. A shared-KV model
	// takes them right padded (its attention reads each row's first len columns), on
	// caches of smax columns bound as past and present.
	shared := e.slots != nil
	ids, pos, mask := make([]int64, B*smax), make([]int64, B*smax), make([]int64, B*smax)
	for i, in := range inputs {
		pad := smax - len(in)
		if shared {
			pad = 0
		}
		for j, id := range in {
			ids[i*smax+pad+j], pos[i*smax+pad+j], mask[i*smax+pad+j] = int64(id), int64(j), 1
		}
	}
	bs := []int64{int64(B), int64(smax)}
	in := []onnx.Buffer{{Name: "input_ids", Shape: bs, I64: ids}, {Name: "position_ids", Shape: bs, I64: pos}, {Name: "attention_mask", Shape: bs, I64: mask}}
	hidden := make([]float32, B*smax*sh.hidden)
	out := []onnx.Buffer{{Name: "hidden_states", Shape: []int64{int64(B), int64(smax), int64(sh.hidden)}, F32: hidden}}
	kvShape := []int64{int64(B), int64(sh.heads), 0, int64(sh.headDim)}
	if shared {
		kvShape[2] = int64(smax)
	}
	for j, name := range sh.pastNames {
		c := make([]float32, B*sh.heads*int(kvShape[2])*sh.headDim)
		in = append(in, onnx.Buffer{Name: name, Shape: kvShape, F32: c})
		if shared {
			out = append(out, onnx.Buffer{Name: sh.presentNames[j], Shape: kvShape, F32: c})
		}
	}
	e.runMu.Lock()
	err := e.sess.RunBuffers(ctx, in, out)
	e.runMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("model %s: embed: %w", e.cfg.Model, err)
	}
	vecs := make([][]float32, B)
	for i, inp := range inputs {
		row := hidden[i*smax*sh.hidden : (i+1)*smax*sh.hidden]
		if shared {
			row = row[:len(inp)*sh.hidden]
		} else {
			row = row[(smax-len(inp))*sh.hidden:]
		}
		vecs[i] = meanNorm(row, sh.hidden)
	}
	return vecs, nil
}

// meanNorm averages the rows of h (width d), then scales the mean to unit length.
func meanNorm(h []float32, d int) []float32 {
	v := make([]float64, d)
	rows := len(h) / d
	for r := range rows {
		for k, x := range h[r*d : (r+1)*d] {
			v[k] += float64(x)
		}
	}
	var norm float64
	for k := range v {
		v[k] /= float64(rows)
		norm += v[k] * v[k]
	}
	norm = math.Sqrt(norm)
	out := make([]float32, d)
	for k := range v {
		if norm > 0 {
			out[k] = float32(v[k] / norm)
		}
	}
	return out
}
