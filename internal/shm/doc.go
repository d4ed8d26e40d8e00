// Package shm owns the system shared memory regions clients register with Triton's
// shared memory extension: a table of named POSIX shared memory objects (shm_open keys,
// files under /dev/shm) mapped into the server, and the copies between those mappings and
// Go memory that let a request take its inputs from, and leave its outputs in, a region.
//
// A region is mapped once, when it is registered, and unmapped when it is unregistered
// and no request holds a lease on it any more, so a request that uses a region while
// another client unregisters it finishes (or fails cleanly) and never touches an unmapped
// page. A client can also shrink the object under a mapping (ftruncate), which makes the
// pages it lost raise SIGBUS: every copy runs under runtime/debug.SetPanicOnFault and turns
// such a fault into an error. For the same reason the mapping is never handed to C code
// (ONNX Runtime): inputs are copied into Go buffers and outputs copied into the region.
//
// The package is a leaf: it knows tensors, not requests or transports. Its errors wrap
// ErrNotFound, ErrExists and ErrInvalid, which each transport maps to its statuses.
package shm
