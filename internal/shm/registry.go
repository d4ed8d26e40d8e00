package shm

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
	"syscall"
)

// Region describes one registered region, as the status endpoints report it.
type Region struct {
	Name     string
	Key      string // the shm_open key, as registered
	Offset   uint64 // where the region starts in the shared memory object
	ByteSize uint64
}

// Registry is the table of registered regions. It is safe for concurrent use; the zero
// value is not usable, call New. Close it when the server stops. A nil *Registry is a
// server without shared memory: it lists no regions and refuses to register one.
type Registry struct {
	mu      sync.Mutex // guards regions, closed and every mapping's refs
	regions map[string]*mapping
	closed  bool
}

// mapping is one registered region's memory.
type mapping struct {
	Region
	mem  []byte // what mmap returned: a page-aligned span of the object
	data []byte // the region itself, within mem
	refs int    // 1 while registered, plus 1 per lease; unmapped at 0
}

// New returns an empty Registry. It maps nothing until a region is registered.
func New() *Registry { return &Registry{regions: map[string]*mapping{}} }

// Register maps byteSize bytes at offset of the shared memory object key under name.
func (r *Registry) Register(name, key string, offset, byteSize uint64) error {
	if r == nil {
		return errDisabled
	}
	if err := checkName(name); err != nil {
		return err
	}
	file, err := CheckKey(key)
	if err != nil {
		return err
	}
	if byteSize == 0 {
		return invalidf("shared memory region %q: byte_size must be greater than 0", name)
	}
	if offset > math.MaxInt64 || byteSize > math.MaxInt64-offset {
		return invalidf("shared memory region %q: offset %d + byte_size %d overflows", name, offset, byteSize)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("shared memory region %q: the server is shutting down", name)
	}
	if _, dup := r.regions[name]; dup {
		return existsf("shared memory region %q is already registered; unregister it first", name)
	}
	m, err := mapRegion(Region{Name: name, Key: key, Offset: offset, ByteSize: byteSize}, file)
	if err != nil {
		return err
	}
	r.regions[name] = m
	return nil
}

// mapRegion opens the object and maps the pages holding the region. mmap needs a
// page-aligned file offset, so the mapping starts at the page holding offset.
func mapRegion(rg Region, file string) (*mapping, error) {
	fd, size, err := openObject(rg.Key, file)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd) // the mapping outlives the descriptor
	if end := rg.Offset + rg.ByteSize; end > uint64(size) {
		return nil, invalidf("shared memory region %q: offset %d + byte_size %d = %d is past the end of %q (%d bytes)", rg.Name, rg.Offset, rg.ByteSize, end, rg.Key, size)
	}
	page := uint64(os.Getpagesize())
	start := rg.Offset &^ (page - 1)
	length := rg.Offset - start + rg.ByteSize
	if length > math.MaxInt {
		return nil, invalidf("shared memory region %q: %d bytes are too many to map", rg.Name, length)
	}
	mem, err := syscall.Mmap(fd, int64(start), int(length), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shared memory region %q: mmap of %d bytes of %q: %w", rg.Name, length, rg.Key, err)
	}
	skip := rg.Offset - start
	return &mapping{Region: rg, mem: mem, data: mem[skip : skip+rg.ByteSize : skip+rg.ByteSize], refs: 1}, nil
}

// Unregister removes the region name at once: new requests can no longer use it. Its
// memory is unmapped when the last request using it releases its lease. Unregistering a
// name that is not registered does nothing, as in Triton.
func (r *Registry) Unregister(name string) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.regions[name]; ok {
		delete(r.regions, name)
		return r.unref(m)
	}
	return nil
}

// UnregisterAll unregisters every region.
func (r *Registry) UnregisterAll() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unregisterAll()
}

func (r *Registry) unregisterAll() error {
	var first error
	for name, m := range r.regions {
		delete(r.regions, name)
		if err := r.unref(m); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close unregisters every region and refuses new ones; call it once the transports have
// stopped. A lease still held keeps its mapping until it is released.
func (r *Registry) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.unregisterAll()
}

// unref drops one reference and unmaps at the last. r.mu must be held.
func (r *Registry) unref(m *mapping) error {
	m.refs--
	if m.refs > 0 {
		return nil
	}
	mem := m.mem
	m.mem, m.data = nil, nil
	if err := syscall.Munmap(mem); err != nil {
		return fmt.Errorf("shared memory region %q: munmap: %w", m.Name, err)
	}
	return nil
}

// Status reports the region name, or every region (sorted by name) when name is "".
func (r *Registry) Status(name string) ([]Region, error) {
	if r == nil {
		r = &Registry{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if name != "" {
		m, ok := r.regions[name]
		if !ok {
			return nil, notFoundf("unable to find system shared memory region %q", name)
		}
		return []Region{m.Region}, nil
	}
	out := make([]Region, 0, len(r.regions))
	for _, n := range slices.Sorted(maps.Keys(r.regions)) {
		out = append(out, r.regions[n].Region)
	}
	return out, nil
}

// Lease is one request's hold on size bytes at offset of a region: while it is held
// the memory stays mapped, even if the region is unregistered. A Lease is used by one
// goroutine; Release it when done.
type Lease struct {
	r    *Registry
	m    *mapping
	data []byte
}

// Acquire leases size bytes at offset of the region name, checking the bounds.
func (r *Registry) Acquire(name string, offset, size int64) (*Lease, error) {
	if offset < 0 || size < 0 {
		return nil, invalidf("shared memory region %q: offset %d and byte size %d must not be negative", name, offset, size)
	}
	if r == nil {
		return nil, errDisabled
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.regions[name]
	if !ok {
		return nil, invalidf("shared memory region %q is not registered", name)
	}
	total := int64(m.ByteSize)
	if offset > total || size > total-offset {
		return nil, invalidf("shared memory region %q: offset %d + byte size %d is past the end of the region (%d bytes)", name, offset, size, total)
	}
	m.refs++
	return &Lease{r: r, m: m, data: m.data[offset : offset+size : offset+size]}, nil
}

// Len is the leased size in bytes.
func (l *Lease) Len() int { return len(l.data) }

// CopyOut copies the leased bytes into dst, which must be as long. A fault (the client
// shrank the object) is an ErrInvalid error.
func (l *Lease) CopyOut(dst []byte) error {
	if len(dst) != len(l.data) {
		return fmt.Errorf("shm: CopyOut of %d bytes from a lease of %d", len(dst), len(l.data))
	}
	return l.guard(dst, l.data)
}

// CopyIn copies src to the start of the leased bytes; src must not be longer.
func (l *Lease) CopyIn(src []byte) error {
	if len(src) > len(l.data) {
		return fmt.Errorf("shm: CopyIn of %d bytes into a lease of %d", len(src), len(l.data))
	}
	return l.guard(l.data[:len(src)], src)
}

func (l *Lease) guard(dst, src []byte) error {
	if err := guardedCopy(dst, src); err != nil {
		return invalidf("shared memory region %q (key %q): %v; was the shared memory object truncated?", l.m.Name, l.m.Key, err)
	}
	return nil
}

// Release gives the lease back; the last one of an unregistered region unmaps it.
// Releasing twice is harmless.
func (l *Lease) Release() {
	if l.m == nil {
		return
	}
	l.r.mu.Lock()
	_ = l.r.unref(l.m) // munmap of a live mapping cannot fail; there is no one to tell
	l.r.mu.Unlock()
	l.m, l.data = nil, nil
}
