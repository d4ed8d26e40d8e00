// Package kv is the native LLM engine's KV-cache block manager: the bookkeeping of
// which fixed-size block of the engine's KV arena holds which tokens of which
// sequence. It stores no tensors; the engine keeps the floats and indexes them by
// the block ids handed out here.
//
// Blocks come from one pool sized at construction. Each sequence has a Table (its
// blocks in order); blocks are reference counted, so sequences that share a prompt
// prefix share its blocks. With prefix caching on, every full block is identified,
// as in vLLM's automatic prefix caching, by hash(parent block's hash, its token ids);
// a hash→block map finds them, and a block whose last reference goes away keeps its
// contents on an LRU list until the pool needs it back (lazy eviction). Running out
// of blocks is an error (ErrExhausted) that changes nothing, so the caller can
// preempt a sequence and try again.
//
// A Manager is owned by one goroutine (the engine's step loop); it is not safe for
// concurrent use.
package kv
