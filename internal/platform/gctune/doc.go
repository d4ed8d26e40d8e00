// Package gctune keeps Go's garbage collector from running too often in a server whose
// live heap is small. With GOGC=100 a collection starts each time the heap doubles, so a
// server holding 4 MiB of live data and allocating a few KiB per request collects dozens
// of times a second; at 34k requests/s that cost a quarter of its CPU. Run raises GOGC
// while the live heap is small, so that a fixed headroom, and not much more, is allocated
// between collections, and lets it fall back to 100 as the live heap grows past the
// headroom. It holds from the first collection on and before it, when a GOGC computed
// from a live heap of 0 would let the heap reach hundreds of MiB.
package gctune
