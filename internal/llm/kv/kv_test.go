package kv

import (
	"errors"
	"slices"
	"testing"
)

func seq(start, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = start + i
	}
	return s
}

// fill reserves and commits tokens into a fresh table after matching its prefix.
func fill(t *testing.T, m *Manager, tokens []int) (*Table, int) {
	t.Helper()
	tb := &Table{}
	hit := m.Match(tb, tokens)
	if err := m.Reserve(tb, len(tokens)); err != nil {
		t.Fatalf("Reserve(%d tokens): %v", len(tokens), err)
	}
	m.Commit(tb, tokens)
	if err := m.Check(); err != nil {
		t.Fatalf("Check after fill: %v", err)
	}
	return tb, hit
}

func TestNewRejectsEmptyPool(t *testing.T) {
	for _, c := range [][2]int{{0, 4}, {4, 0}, {-1, 1}} {
		if _, err := New(c[0], c[1], true); err == nil {
			t.Errorf("New(%d, %d) succeeded, want an error", c[0], c[1])
		}
	}
}

func TestSharedPrefixIsReusedAndCounted(t *testing.T) {
	m, _ := New(4, 16, true)
	a, hit := fill(t, m, seq(0, 10)) // blocks: [0..3] [4..7] [8 9]
	if hit != 0 {
		t.Fatalf("first sequence hit %d tokens, want 0", hit)
	}
	b, hit := fill(t, m, append(seq(0, 8), 100, 101, 102))
	if hit != 8 {
		t.Fatalf("second sequence hit %d tokens, want 8 (two full blocks)", hit)
	}
	if !slices.Equal(a.Blocks()[:2], b.Blocks()[:2]) || a.Blocks()[2] == b.Blocks()[2] {
		t.Fatalf("tables %v and %v: want the first two blocks shared, the third private", a.Blocks(), b.Blocks())
	}
	if got := m.RefCount(a.Blocks()[0]); got != 2 {
		t.Fatalf("shared block refcount %d, want 2", got)
	}
	st := m.Stats()
	if st.Queries != 21 || st.Hits != 8 || st.Used != 4 {
		t.Fatalf("stats %+v, want 21 queries, 8 hits, 4 used", st)
	}
	// A prompt that is exactly two blocks long reuses only one: its last token must run.
	c, hit := fill(t, m, seq(0, 8))
	if hit != 4 {
		t.Fatalf("an 8-token prompt hit %d tokens, want 4 (the last token is always computed)", hit)
	}
	for _, tb := range []*Table{a, b, c} {
		m.Free(tb)
	}
	if st := m.Stats(); st.Used != 0 || st.Cached == 0 {
		t.Fatalf("after freeing everything: %+v, want 0 used and cached blocks kept", st)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestDifferentParentIsAMiss(t *testing.T) {
	m, _ := New(4, 8, true)
	a, _ := fill(t, m, seq(0, 9))
	m.Free(a)
	// Same second block tokens but a different first block: the chain hash differs.
	_, hit := fill(t, m, append([]int{9, 9, 9, 9}, seq(4, 5)...))
	if hit != 0 {
		t.Fatalf("hit %d tokens with a different first block, want 0", hit)
	}
}

func TestEvictionTakesUncachedFirstThenOldest(t *testing.T) {
	m, _ := New(2, 4, true)
	a, _ := fill(t, m, seq(0, 4)) // 2 full blocks, cached
	m.Free(a)                     // LRU: block of [2 3] first (the tail block), then [0 1]
	b, _ := fill(t, m, seq(10, 3))
	// b took the 2 uncached free blocks; both of a's blocks are still cached.
	if st := m.Stats(); st.Cached != 2 {
		t.Fatalf("cached blocks %d, want 2 (uncached free blocks are used first)", st.Cached)
	}
	c := &Table{}
	if err := m.Reserve(c, 2); err != nil {
		t.Fatal(err)
	}
	// The evicted block was a's tail ([2 3]); its head ([0 1]) still matches.
	probe := &Table{}
	if hit := m.Match(probe, seq(0, 5)); hit != 2 {
		t.Fatalf("after evicting one block, prefix hit %d tokens, want 2 (the parent block survives)", hit)
	}
	for _, tb := range []*Table{b, c, probe} {
		m.Free(tb)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestExhaustionIsAnErrorThatChangesNothing(t *testing.T) {
	m, _ := New(4, 3, false)
	a := &Table{}
	if err := m.Reserve(a, 8); err != nil {
		t.Fatal(err)
	}
	b := &Table{}
	err := m.Reserve(b, 9)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("Reserve past the pool: err %v, want ErrExhausted", err)
	}
	if len(b.Blocks()) != 0 || m.Stats().Used != 2 {
		t.Fatalf("failed Reserve left table %v and %d used blocks, want nothing taken", b.Blocks(), m.Stats().Used)
	}
	if err := m.Reserve(b, 4); err != nil {
		t.Fatalf("the remaining block: %v", err)
	}
	m.Free(a)
	m.Free(b)
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Used != 0 || st.Usage() != 0 {
		t.Fatalf("after freeing: %+v, want nothing used", st)
	}
}

func TestPrefixCacheOffNeverShares(t *testing.T) {
	m, _ := New(4, 8, false)
	a, _ := fill(t, m, seq(0, 9))
	b, hit := fill(t, m, seq(0, 9))
	if hit != 0 || slices.ContainsFunc(a.Blocks(), func(x int) bool { return slices.Contains(b.Blocks(), x) }) {
		t.Fatalf("cache off: hit %d, tables %v and %v share blocks", hit, a.Blocks(), b.Blocks())
	}
	if st := m.Stats(); st.Queries != 0 {
		t.Fatalf("cache off counted %d queries", st.Queries)
	}
}
