package engine

import (
	"context"

	"github.com/ferryml/ferry/internal/backend/onnx"
)

// batch holds one kind of run's buffers, reused from step to step. past and
// present hold one [B,H,P,Dh] tensor per layer and K/V (layer*2 + 0 for K, 1 for V).
type batch struct {
	ids, pos, mask []int64
	logits, last   []float32
	past, present  [][]float32
	in, out        []onnx.Buffer

	// After a decode run, present is exactly the next decode run's past when the
	// same sequences decode again in the same order, each from where that run left
	// it: prev, prevLen (each row's KV length after the run) and prevT say which.
	prev    []*seq
	prevLen []int
	prevT   int
}

// forward runs rows (each with its past in the KV blocks and its next r.n tokens)
// as one left-padded batch, stores the new KV columns into the rows' blocks, and
// returns each row's last-position logits, vocab floats per row.
func (e *Engine) forward(ctx context.Context, b *batch, rows []row) ([]float32, error) {
	if e.slots != nil {
		return e.forwardShared(ctx, b, rows)
	}
	sh := e.shape
	B, pmax, smax := len(rows), 0, 0
	for _, r := range rows {
		pmax, smax = max(pmax, r.s.computed), max(smax, r.n)
	}
	t := pmax + smax
	reuse := smax == 1 && b.continues(rows, pmax)
	if reuse {
		b.past, b.present = b.present, b.past
	}
	kvLen := func(cols int) int { return B * sh.heads * cols * sh.headDim }
	// The KV buffers are sized once for the largest batch over the whole context: a
	// buffer that grew as the sequences did would be a fresh allocation every 25%, and
	// on a VM the page faults of a fresh 100 MB buffer stall a GPT-2-small step by
	// 150-400 ms. Sized once, only pages not touched before fault, a few per step.
	full := e.cfg.MaxSeqs * sh.heads * e.cfg.ContextLength * sh.headDim
	b.past = growAllCap(b.past, 2*sh.layers, kvLen(pmax), full)
	b.present = growAllCap(b.present, 2*sh.layers, kvLen(t), full)
	b.ids, b.pos, b.mask = grow(b.ids, B*smax), grow(b.pos, B*smax), grow(b.mask, B*t)
	logitRows := smax
	if sh.lastOnly {
		logitRows = 1
	}
	b.logits = grow(b.logits, B*logitRows*sh.vocab)
	for i, r := range rows {
		b.fillRow(i, r, pmax, smax)
		if !reuse {
			e.gather(b.past, i, r, pmax)
		}
	}
	b.bind(sh, B, pmax, smax, logitRows)
	e.runMu.Lock()
	err := e.sess.RunBuffers(ctx, b.in, b.out)
	e.runMu.Unlock()
	b.prev = b.prev[:0]
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		e.scatter(b.present, i, r, t)
	}
	if smax == 1 {
		b.prevLen = b.prevLen[:0]
		for _, r := range rows {
			b.prev, b.prevLen = append(b.prev, r.s), append(b.prevLen, r.s.computed+1)
		}
		b.prevT = t
	}
	if logitRows == 1 {
		return b.logits[:B*sh.vocab], nil
	}
	b.last = grow(b.last, B*sh.vocab)
	for i := range rows {
		src := (i*smax + smax - 1) * sh.vocab
		copy(b.last[i*sh.vocab:(i+1)*sh.vocab], b.logits[src:src+sh.vocab])
	}
	return b.last, nil
}

// continues reports whether the last run decoded exactly these sequences, in this
// order, so its present tensors (padded to pmax) are this run's past.
func (b *batch) continues(rows []row, pmax int) bool {
	if len(b.prev) != len(rows) || b.prevT != pmax {
		return false
	}
	for i, r := range rows {
		// A sequence preempted and readmitted since may have another length.
		if b.prev[i] != r.s || b.prevLen[i] != r.s.computed {
			return false
		}
	}
	return true
}

// fillRow writes row i's ids, positions and mask. The row's past is right-aligned in
// [0,pmax) and its new tokens in [pmax, pmax+smax); the padding on the left of each
// is masked out, and the model's causal mask (by column index) stays correct since
// every real token sits after the padding.
func (b *batch) fillRow(i int, r row, pmax, smax int) {
	s, start, pad := r.s, r.s.computed, smax-r.n
	ids, pos := b.ids[i*smax:(i+1)*smax], b.pos[i*smax:(i+1)*smax]
	for j := range smax {
		if j < pad {
			ids[j], pos[j] = 0, 0
			continue
		}
		p := start + j - pad
		ids[j], pos[j] = int64(s.tokens[p]), int64(p)
	}
	t := pmax + smax
	mask := b.mask[i*t : (i+1)*t]
	for c := range t {
		keep := (c < pmax && c >= pmax-start) || (c >= pmax && c-pmax >= pad)
		mask[c] = 0
		if keep {
			mask[c] = 1
		}
	}
}

// bind describes this run's buffers to the session.
func (b *batch) bind(sh shape, B, pmax, smax, logitRows int) {
	b.in, b.out = b.in[:0], b.out[:0]
	t := pmax + smax
	b.in = append(b.in,
		onnx.Buffer{Name: "input_ids", Shape: []int64{int64(B), int64(smax)}, I64: b.ids[:B*smax]},
		onnx.Buffer{Name: "position_ids", Shape: []int64{int64(B), int64(smax)}, I64: b.pos[:B*smax]},
		onnx.Buffer{Name: "attention_mask", Shape: []int64{int64(B), int64(t)}, I64: b.mask[:B*t]})
	b.out = append(b.out, onnx.Buffer{Name: "logits", Shape: []int64{int64(B), int64(logitRows), int64(sh.vocab)}, F32: b.logits[:B*logitRows*sh.vocab]})
	pastShape := []int64{int64(B), int64(sh.heads), int64(pmax), int64(sh.headDim)}
	presShape := []int64{int64(B), int64(sh.heads), int64(t), int64(sh.headDim)}
	for j := range b.past {
		b.in = append(b.in, onnx.Buffer{Name: sh.pastNames[j], Shape: pastShape, F32: b.past[j]})
		b.out = append(b.out, onnx.Buffer{Name: sh.presentNames[j], Shape: presShape, F32: b.present[j]})
	}
}

// at is the arena offset of block blk's slot 0 for layer l, K or V (k), head h.
func (e *Engine) at(blk, l, k, h int) int {
	sh := e.shape
	return (((blk*sh.layers+l)*2+k)*sh.heads + h) * e.cfg.BlockSize * sh.headDim
}

// eachHead calls f for every layer, K or V (k), and head.
func (e *Engine) eachHead(f func(l, k, h int)) {
	for l := range e.shape.layers {
		for k := range 2 {
			for h := range e.shape.heads {
				f(l, k, h)
			}
		}
	}
}

// gather copies row i's past (positions [0, computed)) from its blocks into the
// right end of its [H, pmax, Dh] slice of every past tensor.
func (e *Engine) gather(past [][]float32, i int, r row, pmax int) {
	dh, bs, p := e.shape.headDim, e.cfg.BlockSize, r.s.computed
	blocks := r.s.table.Blocks()
	e.eachHead(func(l, k, h int) {
		dst := past[2*l+k][((i*e.shape.heads+h)*pmax+pmax-p)*dh:]
		for q := 0; q < p; q += bs {
			n := min(bs, p-q) * dh
			src := e.at(blocks[q/bs], l, k, h)
			copy(dst[q*dh:q*dh+n], e.arena[src:src+n])
		}
	})
}

// scatter copies row i's r.n new KV columns (the last ones of present, t wide) into
// its blocks at positions [computed, computed+n).
func (e *Engine) scatter(present [][]float32, i int, r row, t int) {
	e.storeColumns(r, func(l, k, h int) []float32 {
		return present[2*l+k][((i*e.shape.heads+h)*t+t-r.n)*e.shape.headDim:]
	})
}

// storeColumns copies row r's r.n new KV columns into its blocks at positions
// [computed, computed+n); src gives a layer's K or V head's new columns, first first.
func (e *Engine) storeColumns(r row, src func(l, k, h int) []float32) {
	dh, bs, start := e.shape.headDim, e.cfg.BlockSize, r.s.computed
	blocks := r.s.table.Blocks()
	e.eachHead(func(l, k, h int) {
		src := src(l, k, h)
		for j := 0; j < r.n; {
			p := start + j
			slot := p % bs
			n := min(bs-slot, r.n-j)
			dst := e.at(blocks[p/bs], l, k, h) + slot*dh
			copy(e.arena[dst:dst+n*dh], src[j*dh:(j+n)*dh])
			j += n
		}
	})
}

// grow returns s resized to n, reallocating only when it is too small. The result
// is never nil: a nil buffer would have no type for onnx.Buffer.
func grow[T any](s []T, n int) []T {
	if s == nil || cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// growAllCap is growAll whose buffers, when they must be made, get capacity c (at
// least n), so they are made once.
func growAllCap(s [][]float32, count, n, c int) [][]float32 {
	for len(s) < count {
		s = append(s, nil)
	}
	for i := range s {
		if s[i] == nil || cap(s[i]) < n {
			s[i] = make([]float32, n, max(n, c))
		}
		s[i] = s[i][:n]
	}
	return s
}

func growAll(s [][]float32, count, n int) [][]float32 {
	for len(s) < count {
		s = append(s, nil)
	}
	for i := range s {
		s[i] = grow(s[i], n)
	}
	return s
}
