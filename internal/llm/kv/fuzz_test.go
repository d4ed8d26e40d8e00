package kv

import (
	"errors"
	"testing"
)

// FuzzManager drives a small pool with random admit / grow / free sequences over
// prompts drawn from a tiny alphabet (so prefixes collide and share often), checking
// after every operation that the pool is consistent and that each block's refcount
// equals the number of live tables holding it.
func FuzzManager(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, true)
	f.Add([]byte{0, 0, 0, 2, 2, 1, 1, 0, 2}, false)
	f.Add([]byte{3, 3, 3, 3, 3, 3, 0, 7, 7, 7, 7, 1, 1, 1}, true)
	f.Fuzz(func(t *testing.T, ops []byte, prefix bool) {
		m, _ := New(2, 8, prefix)
		type live struct {
			tb     *Table
			tokens []int
		}
		var seqs []live
		for i, op := range ops {
			switch op % 3 {
			case 0: // admit a prompt of 1..6 tokens from a 2-letter alphabet
				n := 1 + int(op/3)%6
				tokens := make([]int, n)
				for j := range tokens {
					tokens[j] = int(op>>uint(j%8)) & 1
				}
				tb := &Table{}
				hit := m.Match(tb, tokens)
				if hit >= len(tokens) || hit%2 != 0 {
					t.Fatalf("op %d: hit %d of %d tokens", i, hit, len(tokens))
				}
				if err := m.Reserve(tb, n); err != nil {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("op %d: %v", i, err)
					}
					m.Free(tb)
					break
				}
				m.Commit(tb, tokens)
				seqs = append(seqs, live{tb, tokens})
			case 1: // grow a live sequence by one token
				if len(seqs) == 0 {
					break
				}
				s := &seqs[int(op/3)%len(seqs)]
				if err := m.Reserve(s.tb, len(s.tokens)+1); err != nil {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("op %d: %v", i, err)
					}
					break
				}
				s.tokens = append(s.tokens, int(op)&1)
				m.Commit(s.tb, s.tokens)
			case 2: // free one
				if len(seqs) == 0 {
					break
				}
				k := int(op/3) % len(seqs)
				m.Free(seqs[k].tb)
				seqs = append(seqs[:k], seqs[k+1:]...)
			}
			if err := m.Check(); err != nil {
				t.Fatalf("op %d (%d): %v", i, op, err)
			}
			refs := map[int]int{}
			for _, s := range seqs {
				if got, want := len(s.tb.Blocks()), (len(s.tokens)+1)/2; got != want {
					t.Fatalf("op %d: a %d-token table holds %d blocks, want %d", i, len(s.tokens), got, want)
				}
				for _, b := range s.tb.Blocks() {
					refs[b]++
				}
			}
			for b := range m.blocks {
				if m.RefCount(b) != refs[b] {
					t.Fatalf("op %d: block %d refcount %d, %d tables hold it", i, b, m.RefCount(b), refs[b])
				}
			}
		}
	})
}
