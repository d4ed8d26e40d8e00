package tokenizer

import (
	"container/heap"
	"slices"
)

func (t *bpeTokenizer) Encode(text string) []int { return t.encode(text, t.plainAdded) }

func (t *bpeTokenizer) EncodeSpecial(text string) []int { return t.encode(text, t.allAdded) }

// encode splits out the added tokens of set and runs BPE over the text between.
func (t *bpeTokenizer) encode(text string, set addedSet) []int {
	var ids []int
	start := 0
	for i := 0; i < len(text); i++ {
		if a, ok := set.match(text[i:]); ok {
			ids = t.encodeOrdinary(text[start:i], ids)
			ids = append(ids, a.id)
			start = i + len(a.text)
			i = start - 1
		}
	}
	return t.encodeOrdinary(text[start:], ids)
}

func (t *bpeTokenizer) encodeOrdinary(text string, ids []int) []int {
	if text == "" {
		return ids
	}
	if t.normalize != nil {
		text = t.normalize(text)
	}
	if t.prefixSpace && text[0] != ' ' {
		text = " " + text
	}
	pieces := []string{text}
	for _, s := range t.splits {
		var next []string
		for _, p := range pieces {
			next = s.apply(p, next)
		}
		pieces = next
	}
	for _, p := range pieces {
		ids = t.bpe(p, ids)
	}
	return ids
}

// symbol is one part of a word during BPE, linked to its neighbours.
type symbol struct{ id, prev, next int }

// pairAt is a possible merge of the symbol at pos with the next one.
type pairAt struct{ rank, pos, left, right, id int }

// pairHeap orders merges by rank, then leftmost first (Hugging Face's order).
type pairHeap []pairAt

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].pos < h[j].pos)
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairAt)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpe appends the ids of one pre-tokenized piece. Merges come off a heap, so a long
// piece (a run of 10,000 '=') costs n log n, not n².
func (t *bpeTokenizer) bpe(piece string, ids []int) []int {
	if t.ignoreMerges {
		if id, ok := t.vocab[byteLevel(piece)]; ok {
			return append(ids, id)
		}
	}
	syms := make([]symbol, 0, len(piece))
	for i := 0; i < len(piece); i++ {
		id := t.byteID[piece[i]]
		if id < 0 {
			id = t.unk
		}
		if id >= 0 { // no unk_token: a byte the vocabulary lacks is dropped, as Hugging Face does
			syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: len(syms) + 1})
		}
	}
	if len(syms) > 1 {
		t.mergeAll(syms)
	}
	for i := 0; i < len(syms); i = syms[i].next { // syms[0] is never merged away
		ids = append(ids, syms[i].id)
	}
	return ids
}

func (t *bpeTokenizer) mergeAll(syms []symbol) {
	h := pairHeap{}
	push := func(pos int) {
		n := syms[pos].next
		if n >= len(syms) {
			return
		}
		if m, ok := t.merges[uint64(syms[pos].id)<<32|uint64(syms[n].id)]; ok {
			heap.Push(&h, pairAt{rank: m.rank, pos: pos, left: syms[pos].id, right: syms[n].id, id: m.id})
		}
	}
	for i := range len(syms) - 1 {
		push(i)
	}
	for h.Len() > 0 {
		p := heap.Pop(&h).(pairAt)
		s := &syms[p.pos]
		// A stale entry: a neighbour merged since it was pushed.
		if s.id != p.left || s.next >= len(syms) || syms[s.next].id != p.right {
			continue
		}
		gone := s.next
		s.id, s.next = p.id, syms[gone].next
		syms[gone].id = -1 // never equal to a pushed left or right
		if s.next < len(syms) {
			syms[s.next].prev = p.pos
		}
		if s.prev >= 0 {
			push(s.prev)
		}
		push(p.pos)
	}
}

func (t *bpeTokenizer) Decode(ids []int) string {
	var b []byte
	for _, id := range ids {
		b = append(b, t.TokenBytes(id)...)
	}
	return string(b)
}

func (t *bpeTokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokens) {
		return nil
	}
	return slices.Clip(t.tokens[id])
}

func (t *bpeTokenizer) EOS() int { return t.eos }

func (t *bpeTokenizer) Special(text string) (int, bool) {
	id, ok := t.special[text]
	return id, ok
}

func (t *bpeTokenizer) VocabSize() int { return len(t.tokens) }

func (t *bpeTokenizer) Name() string { return t.name }
