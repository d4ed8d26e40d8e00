package kv

import (
	"errors"
	"fmt"
	"slices"
)

// ErrExhausted is returned (wrapped) when the pool has too few blocks for a request.
// Nothing changed: the caller may free or preempt and try again.
var ErrExhausted = errors.New("kv: out of cache blocks")

// Manager hands out the blocks of one pool. See the package comment.
type Manager struct {
	bs     int
	blocks []block
	free   []int // ref 0 and no cached contents: taken first (a stack)
	// lruHead..lruTail links the blocks with ref 0 whose contents are cached
	// (oldest first); they are evicted from the head when free is empty.
	lruHead, lruTail, lruLen int
	cache                    map[uint64]int // block hash -> block id; nil when prefix caching is off
	used                     int            // blocks with ref > 0
	queries, hits            int64          // prefix cache lookups and hits, in tokens
}

type block struct {
	ref        int
	cached     bool    // registered in Manager.cache under hash
	hash       uint64  // valid when cached
	parent     uint64  // the hash its chain started from, to verify a hit
	tokens     []int32 // the block's tokens, to verify a hit (a hash collision is a miss)
	prev, next int     // LRU links, -1 at the ends
}

// Table is one sequence's blocks in position order: token i lives in block
// Blocks()[i/BlockSize] at slot i%BlockSize. The zero value is an empty table.
type Table struct {
	blocks []int
	hashes []uint64 // the chain hash of each leading full block, committed or matched
}

// Blocks returns the table's block ids (the caller must not change them).
func (t *Table) Blocks() []int { return t.blocks }

// Stats is a snapshot of a Manager's counters.
type Stats struct {
	Total, Used int // blocks in the pool, and those referenced by a sequence
	Cached      int // blocks with ref 0 that still hold reusable contents
	// Queries and Hits count prefix-cache lookups in tokens, as vLLM's
	// prefix_cache_queries and prefix_cache_hits do.
	Queries, Hits int64
}

// Usage is the fraction of blocks in use, vLLM's kv_cache_usage_perc (0..1).
func (s Stats) Usage() float64 {
	if s.Total == 0 {
		return 0
	}
	return float64(s.Used) / float64(s.Total)
}

// New returns a Manager over numBlocks blocks of blockSize tokens each.
// prefixCache turns on sharing of full blocks by content hash.
func New(blockSize, numBlocks int, prefixCache bool) (*Manager, error) {
	if blockSize <= 0 || numBlocks <= 0 {
		return nil, fmt.Errorf("kv: block size and block count must be > 0, got %d and %d", blockSize, numBlocks)
	}
	m := &Manager{bs: blockSize, blocks: make([]block, numBlocks), free: make([]int, 0, numBlocks), lruHead: -1, lruTail: -1}
	for i := numBlocks - 1; i >= 0; i-- {
		m.blocks[i].prev, m.blocks[i].next = -1, -1
		m.free = append(m.free, i) // popped from the end: block 0 first
	}
	if prefixCache {
		m.cache = make(map[uint64]int)
	}
	return m, nil
}

// BlockSize is the number of tokens a block holds.
func (m *Manager) BlockSize() int { return m.bs }

// Stats reports the pool's counters.
func (m *Manager) Stats() Stats {
	return Stats{Total: len(m.blocks), Used: m.used, Cached: m.lruLen, Queries: m.queries, Hits: m.hits}
}

// RefCount is how many tables hold block b.
func (m *Manager) RefCount(b int) int { return m.blocks[b].ref }

// Match fills the empty table t with the cached blocks that hold the leading full
// blocks of tokens, and returns how many tokens they cover. It leaves at least one
// token uncovered, since the model must run on a sequence's last token to give its
// next logits. It counts len(tokens) queries and the covered tokens as hits; with
// prefix caching off it does nothing and returns 0.
func (m *Manager) Match(t *Table, tokens []int) int {
	if m.cache == nil || len(tokens) == 0 {
		return 0
	}
	if len(t.blocks) != 0 {
		panic("kv: Match on a table that already holds blocks")
	}
	m.queries += int64(len(tokens))
	var parent uint64
	for i := 0; i < (len(tokens)-1)/m.bs; i++ {
		chunk := tokens[i*m.bs : (i+1)*m.bs]
		h := chainHash(parent, chunk)
		b, ok := m.cache[h]
		if !ok || !m.blocks[b].holds(parent, chunk) {
			break
		}
		m.acquire(b)
		t.blocks = append(t.blocks, b)
		t.hashes = append(t.hashes, h)
		parent = h
	}
	n := len(t.blocks) * m.bs
	m.hits += int64(n)
	return n
}

// Reserve makes t hold enough blocks for n tokens. When the pool cannot give them it
// returns an error wrapping ErrExhausted and changes nothing.
func (m *Manager) Reserve(t *Table, n int) error {
	need := (n+m.bs-1)/m.bs - len(t.blocks)
	if need <= 0 {
		return nil
	}
	if avail := len(m.free) + m.lruLen; need > avail {
		return fmt.Errorf("%w: %d tokens need %d more blocks, %d of %d are free", ErrExhausted, n, need, avail, len(m.blocks))
	}
	for range need {
		t.blocks = append(t.blocks, m.take())
	}
	return nil
}

// Commit records that the KV of tokens (the sequence's tokens from position 0) is
// now written into t's blocks, so its full blocks can be found by Match. A full block
// whose contents another block already caches stays private to t.
func (m *Manager) Commit(t *Table, tokens []int) {
	full := min(len(tokens)/m.bs, len(t.blocks))
	for i := len(t.hashes); i < full; i++ {
		var parent uint64
		if i > 0 {
			parent = t.hashes[i-1]
		}
		chunk := tokens[i*m.bs : (i+1)*m.bs]
		h := chainHash(parent, chunk)
		t.hashes = append(t.hashes, h)
		if m.cache == nil {
			continue
		}
		if _, dup := m.cache[h]; dup {
			continue
		}
		b := &m.blocks[t.blocks[i]]
		b.cached, b.hash, b.parent = true, h, parent
		b.tokens = b.tokens[:0]
		for _, id := range chunk {
			b.tokens = append(b.tokens, int32(id))
		}
		m.cache[h] = t.blocks[i]
	}
}

// Free releases t's blocks and empties it. Blocks whose last reference goes keep
// their cached contents on the LRU list, the sequence's last block nearest eviction
// (its parents are the likelier to be shared).
func (m *Manager) Free(t *Table) {
	for _, b := range slices.Backward(t.blocks) {
		blk := &m.blocks[b]
		if blk.ref <= 0 {
			panic(fmt.Sprintf("kv: block %d freed with refcount %d", b, blk.ref))
		}
		blk.ref--
		if blk.ref > 0 {
			continue
		}
		m.used--
		if blk.cached {
			m.lruPush(b)
		} else {
			m.free = append(m.free, b)
		}
	}
	t.blocks, t.hashes = t.blocks[:0], t.hashes[:0]
}

// acquire adds a reference to block b, taking it off the LRU list if it was idle.
func (m *Manager) acquire(b int) {
	blk := &m.blocks[b]
	if blk.ref == 0 {
		m.lruRemove(b)
		m.used++
	}
	blk.ref++
}

// take returns a block with ref 1, evicting the least recently used cached block
// when no uncached one is free. The caller has checked one is available.
func (m *Manager) take() int {
	var b int
	if n := len(m.free); n > 0 {
		b, m.free = m.free[n-1], m.free[:n-1]
	} else {
		b = m.lruHead
		m.lruRemove(b)
		blk := &m.blocks[b]
		if m.cache[blk.hash] == b {
			delete(m.cache, blk.hash)
		}
		blk.cached = false
	}
	m.blocks[b].ref = 1
	m.used++
	return b
}

func (m *Manager) lruPush(b int) {
	blk := &m.blocks[b]
	blk.prev, blk.next = m.lruTail, -1
	if m.lruTail >= 0 {
		m.blocks[m.lruTail].next = b
	} else {
		m.lruHead = b
	}
	m.lruTail = b
	m.lruLen++
}

func (m *Manager) lruRemove(b int) {
	blk := &m.blocks[b]
	if blk.prev >= 0 {
		m.blocks[blk.prev].next = blk.next
	} else {
		m.lruHead = blk.next
	}
	if blk.next >= 0 {
		m.blocks[blk.next].prev = blk.prev
	} else {
		m.lruTail = blk.prev
	}
	blk.prev, blk.next = -1, -1
	m.lruLen--
}

func (b *block) holds(parent uint64, chunk []int) bool {
	if !b.cached || b.parent != parent || len(b.tokens) != len(chunk) {
		return false
	}
	for i, id := range chunk {
		if b.tokens[i] != int32(id) {
			return false
		}
	}
	return true
}

// chainHash is FNV-1a over the parent's hash and the block's token ids. Collisions
// are harmless: a hit is verified against the block's stored tokens.
func chainHash(parent uint64, tokens []int) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for range 8 {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	mix(parent)
	for _, id := range tokens {
		mix(uint64(id))
	}
	return h
}
