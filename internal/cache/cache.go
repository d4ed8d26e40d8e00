package cache

import (
	"container/list"
	"crypto/sha256"
	"sync"

	"github.com/ferryml/ferry/internal/tensor"
)

// Key identifies one cached response: a SHA-256 digest of everything the outputs depend
// on. It is an alias so that users can declare interfaces over it without importing
// this package.
type Key = [sha256.Size]byte

// Fixed per-item costs added to the data bytes, so that a budget of many tiny entries
// still bounds the memory the cache holds (map slot, list element, key, slice headers).
const (
	entryOverhead  = 160
	tensorOverhead = 96
)

// Cache is an LRU of output tensors bounded by a byte budget. All methods are safe for
// concurrent use.
//
// Ownership: Put copies the tensors it stores, so the caller may keep using (or
// mutating) its own. Get returns fresh Tensor values whose Data is shared with the
// cache and every other hit: callers must treat Data as read-only. Name and Shape are
// the caller's to change.
type Cache struct {
	budget int64

	mu    sync.Mutex
	bytes int64                 // accounted size of the entries held; never above budget
	order *list.List            // of *entry; front is the most recently used
	byKey map[Key]*list.Element // the same entries, by key
}

type entry struct {
	key     Key
	outputs []*tensor.Tensor
	size    int64
}

// New builds a cache that holds at most budget bytes (data plus per-entry overhead).
// A budget of 0 or less stores nothing.
func New(budget int64) *Cache {
	return &Cache{budget: max(budget, 0), order: list.New(), byKey: map[Key]*list.Element{}}
}

// Get returns the outputs stored under k and marks them most recently used.
func (c *Cache) Get(k Key) ([]*tensor.Tensor, bool) {
	c.mu.Lock()
	el, ok := c.byKey[k]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	c.order.MoveToFront(el)
	stored := el.Value.(*entry).outputs
	c.mu.Unlock()
	out := make([]*tensor.Tensor, len(stored))
	for i, t := range stored {
		out[i] = &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: append(tensor.Shape(nil), t.Shape...), Data: t.Data}
	}
	return out, true
}

// Put stores a copy of outputs under k, evicting the least recently used entries to stay
// within the budget. It reports whether the entry is held: one larger than the whole
// budget is not stored (and evicts nothing). Putting a key already held only marks it
// used, since equal keys mean equal outputs.
func (c *Cache) Put(k Key, outputs []*tensor.Tensor) bool {
	size := Size(outputs)
	if size > c.budget {
		return false
	}
	stored := make([]*tensor.Tensor, len(outputs))
	for i, t := range outputs { // copy outside the lock
		stored[i] = &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: append(tensor.Shape(nil), t.Shape...),
			Data: append([]byte(nil), t.Data...)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.order.MoveToFront(el)
		return true
	}
	for c.bytes+size > c.budget {
		c.evictLocked()
	}
	c.byKey[k] = c.order.PushFront(&entry{key: k, outputs: stored, size: size})
	c.bytes += size
	return true
}

// evictLocked drops the least recently used entry. Caller holds c.mu and knows one exists.
func (c *Cache) evictLocked() {
	el := c.order.Back()
	e := c.order.Remove(el).(*entry)
	delete(c.byKey, e.key)
	c.bytes -= e.size
}

// Size is what an entry of these outputs counts against the budget.
func Size(outputs []*tensor.Tensor) int64 {
	n := int64(entryOverhead)
	for _, t := range outputs {
		n += tensorOverhead + int64(len(t.Name)) + 8*int64(len(t.Shape)) + int64(len(t.Data))
	}
	return n
}

// Bytes is the accounted size of the entries held now.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len is the number of entries held now.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// Budget is the most bytes the cache holds.
func (c *Cache) Budget() int64 { return c.budget }
