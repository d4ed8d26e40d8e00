package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// The kinds of shared memory requests may carry their tensors in (perf_analyzer's
// --shared-memory).
const (
	ShmNone   = "none"   // tensors travel in the request and response bodies
	ShmSystem = "system" // POSIX shared memory regions under /dev/shm
	ShmCUDA   = "cuda"   // CUDA IPC handles; needs a GPU, which this build has no use of
)

// DefaultOutputShmBytes is the size of each output region, as perf_analyzer's
// --output-shared-memory-size defaults to it.
const DefaultOutputShmBytes = 102400

// shmDir is where Linux keeps POSIX shared memory objects: shm_open("/x") opens
// /dev/shm/x, so a file made there is a region any process can shm_open by its key.
const shmDir = "/dev/shm"

// unregisterTimeout bounds the calls that register and release regions, which do not
// end with a cancelled context (an interrupt): their outcome must be known.
const unregisterTimeout = 10 * time.Second

// SharedMemory makes a client send its tensors through system shared memory regions
// it creates: each request in flight has its own input and output regions, filled with
// the inputs once and registered with the server, and requests name them in the
// shared_memory_region, shared_memory_offset and shared_memory_byte_size parameters
// instead of carrying data.
type SharedMemory struct {
	// OutputBytes is each output region's size; an output that does not fit fails the
	// request (the server says so).
	OutputBytes int
}

// region is one POSIX shared memory object, mapped into this process.
type region struct {
	name       string // the registered name and the file under shmDir
	mem        []byte
	registered bool // the server knows it, so releasing it unregisters it
}

// key is the region's shm_open key, as Triton's clients pass it.
func (r *region) key() string { return "/" + r.name }

// createRegion makes /dev/shm/name of size bytes (at least one: a mapping cannot be
// empty) and maps it. It fails if the name is taken.
func createRegion(name string, size int) (*region, error) {
	path := filepath.Join(shmDir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shared memory region: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	size = max(size, 1)
	if err := f.Truncate(int64(size)); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("shared memory region %s: %d bytes: %w", path, size, err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("shared memory region %s: map %d bytes: %w", path, size, err)
	}
	return &region{name: name, mem: mem}, nil
}

// close unmaps the region and unlinks its file; a server that still maps it keeps its
// memory until it unmaps it too.
func (r *region) close() error {
	return errors.Join(syscall.Munmap(r.mem), os.Remove(filepath.Join(shmDir, r.name)))
}

// shmRegistrar is a protocol's system shared memory extension, as v2client's clients
// offer it.
type shmRegistrar interface {
	RegisterSystemSharedMemory(ctx context.Context, name, key string, offset, size uint64) error
	UnregisterSystemSharedMemory(ctx context.Context, name string) error
}

// shmSet is the regions of one request in flight: one per input, holding every
// sample's value of that input one after another, and one per output.
type shmSet struct {
	regions []*region // the inputs', then the outputs'
	// in[s][k] places input k of sample s; out[j] output j.
	in  [][]v2client.Region
	out []v2client.Region
	// send sends a request of this set's, built by the protocol.
	send Sender
}

// shmPool hands each request in flight a set of regions of its own, made on first need
// and kept for the run, so the regions grow to the most requests ever in flight and no
// two requests write one output region at once.
type shmPool struct {
	reg      shmRegistrar
	prefix   string
	samples  [][]*tensor.Tensor
	outputs  []string
	outBytes int
	// build makes the Sender of a set whose regions are filled and registered.
	build func(*shmSet) (Sender, error)

	mu     sync.Mutex
	idle   []*shmSet
	all    []*shmSet
	made   int
	closed bool
}

func newShmPool(reg shmRegistrar, o SharedMemory, m Model, samples [][]*tensor.Tensor, build func(*shmSet) (Sender, error)) (*shmPool, error) {
	if o.OutputBytes < 1 {
		return nil, fmt.Errorf("output shared memory size %d: must be at least 1 byte", o.OutputBytes)
	}
	if len(m.Outputs) == 0 {
		return nil, fmt.Errorf("model %s: its metadata lists no outputs to place in shared memory", m.ref())
	}
	if _, err := os.Stat(shmDir); err != nil {
		return nil, fmt.Errorf("system shared memory needs %s (Linux): %w", shmDir, err)
	}
	var nonce [4]byte
	rand.Read(nonce[:]) // never fails
	p := &shmPool{reg: reg, samples: samples, outBytes: o.OutputBytes, build: build,
		prefix: fmt.Sprintf("ferry_bench_%d_%s", os.Getpid(), hex.EncodeToString(nonce[:]))}
	p.outputs = m.Outputs
	return p, nil
}

// sender sends each request with a set of regions no other request in flight holds.
func (p *shmPool) sender() Sender {
	return func(ctx context.Context, i int, seq Step) error {
		s, err := p.take(ctx)
		if err != nil {
			return err
		}
		err = p.outputHint(s.send(ctx, i, seq))
		p.mu.Lock()
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return err
	}
}

func (p *shmPool) take(ctx context.Context) (*shmSet, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("shared memory regions released")
	}
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	id := p.made
	p.made++
	p.mu.Unlock()
	s, err := p.newSet(ctx, id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed { // released while this set was made: release it too
		return nil, errors.Join(errors.New("shared memory regions released"), p.release(s))
	}
	p.all = append(p.all, s)
	return s, nil
}

// newSet creates, fills and registers the regions of set id; on failure it releases
// what it made.
func (p *shmPool) newSet(ctx context.Context, id int) (s *shmSet, err error) {
	s = &shmSet{in: make([][]v2client.Region, len(p.samples))}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.release(s))
		}
	}()
	var names []string // of the tensor in each region, for errors
	for k, t := range p.samples[0] {
		size := 0
		for _, sample := range p.samples {
			size += len(sample[k].Data)
		}
		r, err := s.add(fmt.Sprintf("%s_%d_in%d", p.prefix, id, k), size)
		if err != nil {
			return s, fmt.Errorf("input %q: %w", t.Name, err)
		}
		names = append(names, "input "+strconv.Quote(t.Name))
		off := 0
		for i, sample := range p.samples {
			n := copy(r.mem[off:], sample[k].Data)
			s.in[i] = append(s.in[i], v2client.Region{Name: r.name, Offset: uint64(off), Size: uint64(n)})
			off += n
		}
	}
	for j, name := range p.outputs {
		r, err := s.add(fmt.Sprintf("%s_%d_out%d", p.prefix, id, j), p.outBytes)
		if err != nil {
			return s, fmt.Errorf("output %q: %w", name, err)
		}
		names = append(names, "output "+strconv.Quote(name))
		s.out = append(s.out, v2client.Region{Name: r.name, Size: uint64(p.outBytes)})
	}
	// Registered once filled: a server may map the region and read it at once. A
	// registration is not cut off by the request's end (an interrupt): one the server
	// carried out but the client gave up on would stay registered.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unregisterTimeout)
	defer cancel()
	for i, r := range s.regions {
		if err := p.reg.RegisterSystemSharedMemory(rctx, r.name, r.key(), 0, uint64(len(r.mem))); err != nil {
			return s, fmt.Errorf("%s: register shared memory region %s: %w", names[i], r.name, err)
		}
		r.registered = true
	}
	s.send, err = p.build(s)
	return s, err
}

// add creates a region and keeps it in s, so that a failure releases it.
func (s *shmSet) add(name string, size int) (*region, error) {
	r, err := createRegion(name, size)
	if err != nil {
		return nil, err
	}
	s.regions = append(s.regions, r)
	return r, nil
}

// release unregisters and unlinks a set's regions.
func (p *shmPool) release(s *shmSet) error {
	ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
	defer cancel()
	var errs []error
	for _, r := range s.regions {
		if r.registered {
			if err := p.reg.UnregisterSystemSharedMemory(ctx, r.name); err != nil {
				errs = append(errs, fmt.Errorf("unregister shared memory region %s: %w", r.name, err))
			}
		}
		if err := r.close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.regions = nil
	return errors.Join(errs...)
}

// close releases every set. Requests must have finished; later ones fail.
func (p *shmPool) close() error {
	p.mu.Lock()
	p.closed = true
	all := p.all
	p.all, p.idle = nil, nil
	p.mu.Unlock()
	var errs []error
	for _, s := range all {
		errs = append(errs, p.release(s))
	}
	return errors.Join(errs...)
}

// outputHint explains a failed shared memory request whose error names one of the
// outputs: most likely it did not fit its region.
func (p *shmPool) outputHint(err error) error {
	if err == nil {
		return nil
	}
	for _, name := range p.outputs {
		if strings.Contains(err.Error(), name) {
			return fmt.Errorf("%w (output regions hold %d bytes each; a larger output needs --output-shared-memory-size raised)", err, p.outBytes)
		}
	}
	return err
}
