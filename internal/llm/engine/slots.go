package engine

import (
	"cmp"
	"context"
	"slices"

	"github.com/ferryml/ferry/internal/backend/onnx"
)

// A shared-KV model (onnxgen's GPTConfig.SharedKV; onnxruntime-genai's
// past_present_share_buffer layout, attention by com.microsoft.GroupQueryAttention)
// takes each layer's key (value) cache as one buffer of fixed capacity, bound as both
// past and present, and a run writes only its new tokens' columns. Under the Optimum
// contract every step instead copies the whole past into present (a Concat of
// O(past) per step, 9 ms of a 35 ms batch-8 GPT-2-small step at past 192).
//
// The engine then gives each running sequence a slot: its row of the cache
// [MaxSeqs, heads, capacity, headDim] per layer and K/V, its tokens in columns
// [0, computed). The capacity is the bound buffer's sequence extent, a power of two up
// to ContextLength that follows the longest running sequence: GroupQueryAttention's
// CPU kernel does work in proportion to it (a batch-8 GPT-2-small step at a past of
// 192 took 1.5-2.5 ms longer with a capacity of 1024 than of 256), so a cache sized for
// the whole context would tax every step of short sequences.
//
// The KV blocks stay the budget's unit and the prefix cache's store: each run copies
// its new columns into the sequence's blocks (a few KB a token), and a prefix hit
// copies the cached blocks into the slot once, at admission.

// slots is the shared cache and who holds each row; owned by Run.
type slots struct {
	cache    [][]float32 // layer*2 + 0 (key) or 1 (value): [MaxSeqs, heads, capacity, headDim], in a buffer sized for ContextLength
	owner    []*seq      // slot -> sequence; nil: free
	capacity int         // the columns of a slot's head; see relayout
}

// minCapacity is the smallest capacity the cache shrinks to.
const minCapacity = 64

func newSlots(sh shape, maxSeqs, ctxLen int) *slots {
	s := &slots{owner: make([]*seq, maxSeqs), capacity: min(minCapacity, ctxLen)}
	for range 2 * sh.layers {
		s.cache = append(s.cache, make([]float32, maxSeqs*sh.heads*ctxLen*sh.headDim))
	}
	return s
}

// sharedKV reports whether the model attends with GroupQueryAttention, which takes
// its rows right padded and its past and present as one buffer when they are bound
// to the same memory: the slots' layout. (A model declaring the two alike is not
// enough: an exporter may name both extents "sequence".)
func sharedKV(ops map[string]bool) bool { return ops["GroupQueryAttention"] }

// takeSlot gives s the lowest free slot and copies in the KV of its first
// s.computed tokens (a prefix-cache hit) from its blocks.
func (e *Engine) takeSlot(s *seq) {
	e.fit(s.computed + 1)
	free := slices.Index(e.slots.owner, nil)
	e.slots.owner[free], s.slot = s, free // admission keeps running sequences <= MaxSeqs
	sh, bs := e.shape, e.cfg.BlockSize
	blocks := s.table.Blocks()
	e.eachHead(func(l, k, h int) {
		dst := e.slots.cache[2*l+k][e.slotAt(free, h, 0):]
		for q := 0; q < s.computed; q += bs {
			n := min(bs, s.computed-q) * sh.headDim
			src := e.at(blocks[q/bs], l, k, h)
			copy(dst[q*sh.headDim:q*sh.headDim+n], e.arena[src:src+n])
		}
	})
}

// freeSlot gives s's slot back; compactSlots later fills the hole.
func (e *Engine) freeSlot(s *seq) {
	if e.slots == nil || s.slot < 0 {
		return
	}
	e.slots.owner[s.slot], s.slot = nil, -1
}

// compactSlots moves the sequences of the highest slots into free lower ones, so the
// running sequences hold slots [0, n) and a decode run over them binds no hole (a
// hole runs a throwaway token). A move copies the sequence's computed columns once.
func (e *Engine) compactSlots() {
	own := e.slots.owner
	for {
		free, top := slices.Index(own, nil), len(own)-1
		for top >= 0 && own[top] == nil {
			top--
		}
		if free < 0 || top < free {
			e.shrink()
			return
		}
		s := own[top]
		cols := s.computed * e.shape.headDim
		e.eachHead(func(l, k, h int) {
			c := e.slots.cache[2*l+k]
			from, to := e.slotAt(top, h, 0), e.slotAt(free, h, 0)
			copy(c[to:to+cols], c[from:from+cols])
		})
		own[free], own[top], s.slot = s, nil, free
	}
}

// slotAt is the cache offset of slot's head h, column col.
func (e *Engine) slotAt(slot, h, col int) int {
	return ((slot*e.shape.heads+h)*e.slots.capacity + col) * e.shape.headDim
}

// fit grows the capacity to hold cols columns: the next power of two, at most
// ContextLength.
func (e *Engine) fit(cols int) {
	if cols > e.slots.capacity {
		e.relayout(capacityFor(cols, e.cfg.ContextLength))
	}
}

// shrink halves the capacity while the longest running sequence would fill less than
// half of it after: a server past a long answer does not keep paying for its length,
// and a sequence must double before it grows the cache again.
func (e *Engine) shrink() {
	need := 1
	for _, s := range e.slots.owner {
		if s != nil {
			need = max(need, s.computed+1)
		}
	}
	if c := capacityFor(2*need, e.cfg.ContextLength); c < e.slots.capacity {
		e.relayout(c)
	}
}

func capacityFor(cols, ctxLen int) int {
	c := minCapacity
	for c < cols {
		c *= 2
	}
	return min(c, ctxLen)
}

// relayout moves every occupied slot's columns to the stride of capacity c, in place:
// growing, from the last (slot, head) row to the first, since each row's new place is
// at or after its old one; shrinking, from the first.
func (e *Engine) relayout(c int) {
	old, dh, H := e.slots.capacity, e.shape.headDim, e.shape.heads
	rows := len(e.slots.owner) * H
	move := func(r int) {
		s := e.slots.owner[r/H]
		if s == nil || s.computed <= 0 {
			return
		}
		n := min(s.computed, c) * dh
		for _, buf := range e.slots.cache {
			copy(buf[r*c*dh:r*c*dh+n], buf[r*old*dh:r*old*dh+n])
		}
	}
	if c > old {
		for r := rows - 1; r >= 0; r-- {
			move(r)
		}
	} else {
		for r := range rows {
			move(r)
		}
	}
	e.slots.capacity = c
}

// group is one run of a shared-KV step: the slots [lo, hi) bound, and the step's
// rows (indices into its rows) among them.
type group struct {
	lo, hi int
	idx    []int
}

// groups splits a step's rows into the runs GroupQueryAttention takes: one-token
// steps on a past batch over any lengths (slots in their range that are not
// decoding run a throwaway token at their next free column, which their own next
// run overwrites); first prompts (no past) batch over consecutive slots, right
// padded; a chunk on a past runs alone.
func groups(rows []row) []group {
	var chunks, fresh []group
	dec := group{lo: -1}
	for i, r := range rows {
		slot := r.s.slot
		switch {
		case r.n == 1 && r.s.computed > 0:
			if dec.lo < 0 || slot < dec.lo {
				dec.lo = slot
			}
			dec.hi, dec.idx = max(dec.hi, slot+1), append(dec.idx, i)
		case r.s.computed == 0:
			fresh = append(fresh, group{slot, slot + 1, []int{i}})
		default:
			chunks = append(chunks, group{slot, slot + 1, []int{i}})
		}
	}
	// The decode run goes first: its throwaway token for a slot whose chunk or prompt
	// runs in this step too is then overwritten by that run, not written over it.
	var out []group
	if dec.lo >= 0 {
		out = append(out, dec)
	}
	out = append(out, chunks...)
	slices.SortFunc(fresh, func(a, b group) int { return cmp.Compare(a.lo, b.lo) })
	for i := 0; i < len(fresh); {
		g := fresh[i]
		for i++; i < len(fresh) && fresh[i].lo == g.hi; i++ {
			g.hi, g.idx = g.hi+1, append(g.idx, fresh[i].idx...)
		}
		out = append(out, g)
	}
	return out
}

// forwardShared is forward for a shared-KV model: each group's run writes its new
// columns into the slots in place, and each row's logits land in b.last in rows'
// order.
func (e *Engine) forwardShared(ctx context.Context, b *batch, rows []row) ([]float32, error) {
	need := 0
	for _, r := range rows {
		need = max(need, r.s.computed+r.n)
	}
	for _, s := range e.slots.owner {
		if s != nil {
			need = max(need, s.computed+1) // a throwaway token's column
		}
	}
	e.fit(need)
	V := e.shape.vocab
	b.last = grow(b.last, len(rows)*V)
	for _, g := range groups(rows) {
		if err := e.runGroup(ctx, b, rows, g); err != nil {
			return nil, err
		}
	}
	return b.last[:len(rows)*V], nil
}

// runGroup runs the slots [g.lo, g.hi): each row's next r.n tokens (right padded to
// the longest), and a throwaway token for a slot in range with no row in g.
func (e *Engine) runGroup(ctx context.Context, b *batch, rows []row, g group) error {
	sh, B := e.shape, g.hi-g.lo
	at := slices.Repeat([]int{-1}, B)
	S := 1
	for _, i := range g.idx {
		at[rows[i].s.slot-g.lo] = i
		S = max(S, rows[i].n)
	}
	lens := make([]int, B) // each slot's length after the run
	for j := range B {
		if i := at[j]; i >= 0 {
			lens[j] = rows[i].s.computed + rows[i].n
		} else if s := e.slots.owner[g.lo+j]; s != nil {
			lens[j] = s.computed + 1
		} else {
			lens[j] = 1
		}
	}
	T := slices.Max(lens)
	b.ids, b.pos, b.mask = grow(b.ids, B*S), grow(b.pos, B*S), grow(b.mask, B*T)
	clear(b.ids[:B*S])
	clear(b.pos[:B*S])
	for j := range B {
		start := lens[j] - 1 // a throwaway token's position: the slot's next free column
		var toks []int
		if i := at[j]; i >= 0 {
			s := rows[i].s
			start, toks = s.computed, s.tokens[s.computed:s.computed+rows[i].n]
		}
		b.pos[j*S] = int64(start)
		for q, id := range toks {
			b.ids[j*S+q], b.pos[j*S+q] = int64(id), int64(start+q)
		}
		mask := b.mask[j*T : (j+1)*T]
		for c := range mask {
			mask[c] = 0
			if c < lens[j] {
				mask[c] = 1
			}
		}
	}
	logitRows := S
	if sh.lastOnly {
		logitRows = 1
	}
	b.logits = grow(b.logits, B*logitRows*sh.vocab)
	e.bindShared(b, g, S, T, logitRows)
	e.runMu.Lock()
	err := e.sess.RunBuffers(ctx, b.in, b.out)
	e.runMu.Unlock()
	if err != nil {
		return err
	}
	V := sh.vocab
	for _, i := range g.idx {
		r := rows[i]
		e.scatterSlot(r)
		j := r.s.slot - g.lo
		src := j * V // [B,1,V]: the graph picked each row's last real token
		if !sh.lastOnly {
			src = (j*S + r.n - 1) * V
		}
		copy(b.last[i*V:(i+1)*V], b.logits[src:src+V])
	}
	return nil
}

// bindShared describes a group's run: the slots' rows of every cache, bound as past
// and present both.
func (e *Engine) bindShared(b *batch, g group, S, T, logitRows int) {
	sh, B := e.shape, g.hi-g.lo
	b.in, b.out = b.in[:0], b.out[:0]
	b.in = append(b.in,
		onnx.Buffer{Name: "input_ids", Shape: []int64{int64(B), int64(S)}, I64: b.ids[:B*S]},
		onnx.Buffer{Name: "position_ids", Shape: []int64{int64(B), int64(S)}, I64: b.pos[:B*S]},
		onnx.Buffer{Name: "attention_mask", Shape: []int64{int64(B), int64(T)}, I64: b.mask[:B*T]})
	b.out = append(b.out, onnx.Buffer{Name: "logits", Shape: []int64{int64(B), int64(logitRows), int64(sh.vocab)}, F32: b.logits[:B*logitRows*sh.vocab]})
	kvShape := []int64{int64(B), int64(sh.heads), int64(e.slots.capacity), int64(sh.headDim)}
	lo, hi := e.slotAt(g.lo, 0, 0), e.slotAt(g.hi, 0, 0)
	for j, c := range e.slots.cache {
		b.in = append(b.in, onnx.Buffer{Name: sh.pastNames[j], Shape: kvShape, F32: c[lo:hi]})
		b.out = append(b.out, onnx.Buffer{Name: sh.presentNames[j], Shape: kvShape, F32: c[lo:hi]})
	}
}

// scatterSlot copies row r's new columns [computed, computed+n) from its slot into
// its blocks, where the prefix cache and a later admission find them.
func (e *Engine) scatterSlot(r row) {
	e.storeColumns(r, func(l, k, h int) []float32 {
		return e.slots.cache[2*l+k][e.slotAt(r.s.slot, h, r.s.computed):]
	})
}

// probeShared is probePosition for a shared-KV model: one token at pos, on caches of
// one column.
func (e *Engine) probeShared(pos int) error {
	sh := e.shape
	in := []onnx.Buffer{
		{Name: "input_ids", Shape: []int64{1, 1}, I64: []int64{0}},
		{Name: "position_ids", Shape: []int64{1, 1}, I64: []int64{int64(pos)}},
		{Name: "attention_mask", Shape: []int64{1, 1}, I64: []int64{1}}}
	out := []onnx.Buffer{{Name: "logits", Shape: []int64{1, 1, int64(sh.vocab)}, F32: make([]float32, sh.vocab)}}
	kvShape := []int64{1, int64(sh.heads), 1, int64(sh.headDim)}
	for j := range sh.pastNames {
		c := make([]float32, sh.heads*sh.headDim)
		in = append(in, onnx.Buffer{Name: sh.pastNames[j], Shape: kvShape, F32: c})
		out = append(out, onnx.Buffer{Name: sh.presentNames[j], Shape: kvShape, F32: c})
	}
	return e.sess.RunBuffers(context.Background(), in, out)
}
