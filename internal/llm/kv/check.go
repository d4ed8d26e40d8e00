package kv

import (
	"errors"
	"fmt"
)

// Check verifies the pool's internal consistency: every block is exactly one of in
// use (ref > 0), free, or idle on the LRU list; the counters agree; and the hash map
// points only at blocks that hold that hash. Tests call it after every operation; it
// costs O(blocks).
func (m *Manager) Check() error {
	var errs []error
	where := make([]int, len(m.blocks)) // 0 unseen, 1 free, 2 lru
	for _, b := range m.free {
		if where[b] != 0 {
			errs = append(errs, fmt.Errorf("block %d is on the free list twice", b))
		}
		where[b] = 1
		if m.blocks[b].ref != 0 || m.blocks[b].cached {
			errs = append(errs, fmt.Errorf("free block %d has ref %d, cached %v", b, m.blocks[b].ref, m.blocks[b].cached))
		}
	}
	n, prev := 0, -1
	for b := m.lruHead; b >= 0; b = m.blocks[b].next {
		if where[b] != 0 || n > len(m.blocks) {
			errs = append(errs, fmt.Errorf("block %d is listed twice (free or LRU)", b))
			break
		}
		where[b] = 2
		if m.blocks[b].prev != prev {
			errs = append(errs, fmt.Errorf("LRU block %d: prev link %d, want %d", b, m.blocks[b].prev, prev))
		}
		if m.blocks[b].ref != 0 || !m.blocks[b].cached {
			errs = append(errs, fmt.Errorf("LRU block %d has ref %d, cached %v", b, m.blocks[b].ref, m.blocks[b].cached))
		}
		prev = b
		n++
	}
	if n != m.lruLen || prev != m.lruTail {
		errs = append(errs, fmt.Errorf("LRU list has %d blocks ending at %d, counters say %d ending at %d", n, prev, m.lruLen, m.lruTail))
	}
	used := 0
	for b := range m.blocks {
		switch blk := &m.blocks[b]; {
		case blk.ref < 0:
			errs = append(errs, fmt.Errorf("block %d has ref %d", b, blk.ref))
		case blk.ref > 0:
			used++
			if where[b] != 0 {
				errs = append(errs, fmt.Errorf("block %d has ref %d but is on a free list", b, blk.ref))
			}
		case where[b] == 0:
			errs = append(errs, fmt.Errorf("block %d has ref 0 but is on no list (leaked)", b))
		}
		if blk := &m.blocks[b]; blk.cached && m.cache[blk.hash] != b {
			errs = append(errs, fmt.Errorf("block %d is marked cached but the map does not point to it", b))
		}
	}
	if used != m.used {
		errs = append(errs, fmt.Errorf("%d blocks in use, counter says %d", used, m.used))
	}
	for h, b := range m.cache {
		if !m.blocks[b].cached || m.blocks[b].hash != h {
			errs = append(errs, fmt.Errorf("hash %x maps to block %d, which does not hold it", h, b))
		}
	}
	return errors.Join(errs...)
}
