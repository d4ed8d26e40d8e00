package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

// registry records registrations as a server would, and reads each region by its key
// from /dev/shm, as a server maps it.
type registry struct {
	mu      sync.Mutex
	regions map[string][]byte // name -> the region's contents when registered
	keys    map[string]string
	failOn  string // a name whose registration fails
	unregs  []string
}

func newRegistry() *registry {
	return &registry{regions: map[string][]byte{}, keys: map[string]string{}}
}

func (r *registry) RegisterSystemSharedMemory(_ context.Context, name, key string, _, size uint64) error {
	if name == r.failOn {
		return errors.New("refused")
	}
	b, err := os.ReadFile(filepath.Join(shmDir, strings.TrimPrefix(key, "/")))
	if err != nil {
		return err
	}
	if uint64(len(b)) != size {
		return fmt.Errorf("region %s: %d bytes, registered as %d", key, len(b), size)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.regions[name]; dup {
		return fmt.Errorf("region %s registered twice", name)
	}
	r.regions[name], r.keys[name] = b, key
	return nil
}

func (r *registry) UnregisterSystemSharedMemory(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.regions[name]; !ok {
		return fmt.Errorf("region %s is not registered", name)
	}
	delete(r.regions, name)
	r.unregs = append(r.unregs, name)
	return nil
}

func shmSamples() [][]*tensor.Tensor {
	mk := func(name string, b ...byte) *tensor.Tensor {
		return &tensor.Tensor{Name: name, DType: tensor.Uint8, Shape: tensor.Shape{int64(len(b))}, Data: b}
	}
	return [][]*tensor.Tensor{
		{mk("A", 1, 2, 3), mk("B", 9)},
		{mk("A", 4, 5, 6), mk("B", 8)},
	}
}

func leftInShm(t *testing.T, prefix string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(shmDir, prefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestShmPoolGivesEachRequestInFlightItsOwnRegions(t *testing.T) {
	reg := newRegistry()
	m := Model{Name: "m", Outputs: []string{"OUT"}}
	var mu sync.Mutex
	seen := map[*shmSet]bool{}
	p, err := newShmPool(reg, SharedMemory{OutputBytes: 64}, m, shmSamples(), func(s *shmSet) (Sender, error) {
		return func(context.Context, int, Step) error {
			mu.Lock()
			defer mu.Unlock()
			if seen[s] {
				return errors.New("a set in use by two requests")
			}
			seen[s] = true
			return nil
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	send := p.sender()
	// Two requests at once take two sets; a third after them reuses one.
	if err := send(t.Context(), 0, Step{}); err != nil {
		t.Fatal(err)
	}
	s0, _ := p.take(t.Context())
	if err := send(t.Context(), 1, Step{}); err != nil {
		t.Fatal(err)
	}
	if len(p.all) != 2 || len(reg.regions) != 6 {
		t.Fatalf("%d sets, %d regions registered; want 2 sets of 3 (A, B, OUT)", len(p.all), len(reg.regions))
	}
	// Set 0's input A holds both samples' A one after another; the refs say where.
	a := s0.in[1][0]
	if got := reg.regions[a.Name][a.Offset : a.Offset+a.Size]; !bytes.Equal(got, []byte{4, 5, 6}) {
		t.Errorf("sample 1's A read from its region = %v, want [4 5 6]", got)
	}
	if key := reg.keys[a.Name]; key != "/"+a.Name || !strings.HasPrefix(a.Name, "ferry_bench_") {
		t.Errorf("region %q registered with key %q, want /%s", a.Name, key, a.Name)
	}
	if out := s0.out[0]; out.Size != 64 || len(reg.regions[out.Name]) != 64 {
		t.Errorf("output ref %+v, want a 64-byte region", out)
	}
	p.idle = append(p.idle, s0)
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if len(reg.regions) != 0 || len(reg.unregs) != 6 {
		t.Errorf("after close: %d regions still registered, %d unregistered; want 0 and 6", len(reg.regions), len(reg.unregs))
	}
	if left := leftInShm(t, p.prefix); len(left) != 0 {
		t.Errorf("after close these stay in /dev/shm: %v", left)
	}
	if err := send(t.Context(), 0, Step{}); err == nil {
		t.Error("a request after close succeeded, want an error")
	}
}

func TestShmPoolReleasesWhatAFailedSetMade(t *testing.T) {
	reg := newRegistry()
	m := Model{Name: "m", Outputs: []string{"OUT"}}
	p, err := newShmPool(reg, SharedMemory{OutputBytes: 8}, m, shmSamples(), func(*shmSet) (Sender, error) {
		return func(context.Context, int, Step) error { return nil }, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.failOn = p.prefix + "_0_out0" // the inputs register, then the output fails
	err = p.sender()(t.Context(), 0, Step{})
	if err == nil || !strings.Contains(err.Error(), `output "OUT"`) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want the output's registration refused", err)
	}
	if len(reg.regions) != 0 || len(reg.unregs) != 2 {
		t.Errorf("%d regions left registered, %d unregistered; want 0 and the 2 inputs", len(reg.regions), len(reg.unregs))
	}
	if left := leftInShm(t, p.prefix); len(left) != 0 {
		t.Errorf("these stay in /dev/shm: %v", left)
	}
}

func TestNewShmPoolRejects(t *testing.T) {
	build := func(*shmSet) (Sender, error) { return nil, nil }
	for _, tc := range []struct {
		name    string
		o       SharedMemory
		m       Model
		wantErr string
	}{
		{"no output size", SharedMemory{}, Model{Name: "m", Outputs: []string{"O"}}, "output shared memory size 0: must be at least 1 byte"},
		{"no outputs", SharedMemory{OutputBytes: 1}, Model{Name: "m"}, `model "m": its metadata lists no outputs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newShmPool(newRegistry(), tc.o, tc.m, shmSamples(), build)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("newShmPool err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCreateRegion(t *testing.T) {
	name := fmt.Sprintf("ferry_bench_test_%d", os.Getpid())
	r, err := createRegion(name, 5)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.mem, "hello")
	b, err := os.ReadFile(filepath.Join(shmDir, name))
	if err != nil || string(b) != "hello" {
		t.Errorf("/dev/shm/%s holds %q (%v), want what was written to the mapping", name, b, err)
	}
	if _, err := createRegion(name, 5); err == nil {
		t.Error("a second region of the same name was created, want an error")
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(shmDir, name)); !os.IsNotExist(err) {
		t.Errorf("after close: stat err = %v, want not exist", err)
	}
}

func TestShmOutputHint(t *testing.T) {
	p := &shmPool{outputs: []string{"OUTPUT0"}, outBytes: 100}
	err := p.outputHint(errors.New(`HTTP 400: output "OUTPUT0" needs 400 bytes, its region holds 100`))
	if err == nil || !strings.Contains(err.Error(), "--output-shared-memory-size") {
		t.Errorf("hint = %v, want it to name --output-shared-memory-size", err)
	}
	if err := p.outputHint(errors.New("HTTP 503: queue full")); strings.Contains(err.Error(), "shared-memory") {
		t.Errorf("an error about no output got the hint: %v", err)
	}
}
