package repository

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// How a load is measured (used while a memory budget is set, when loads run one at a
// time so that no other load moves the figure):
//
//   - With Options.NativeHeapInUse (cmd/ferry passes the C allocator's in-use bytes, which
//     is where ONNX Runtime keeps a session): the growth of the C heap's in-use bytes
//     across opening the instances and the warmup. Allocator accounting is immune to
//     memory reuse, so it is repeatable: loading a model with a 4 MiB initializer
//     measured 4.07-4.10 MiB every time. Go's heap is not read: requests in flight move
//     the live heap by megabytes between two readings (their buffers, sync.Pool
//     contents), which swamped models of a few hundred KiB in both directions; a loaded
//     version's Go side (config, scheduler, goroutines) is charged as a fixed overhead
//     (budget.go).
//   - Without it: the growth of the process's anonymous resident memory (/proc/self/statm
//     resident minus shared pages), with Go's free memory returned to the OS before each
//     reading. This suits pure-Go backends measured without traffic (tests). For C memory
//     it is noisy: glibc keeps memory freed by earlier unloads in per-thread arenas and
//     reuses it without the RSS growing, and releases it late; the same 4 MiB model
//     measured -12 to +14 MiB this way, even with malloc_trim before each reading.
//
// A backend whose instances run in other processes (python) reports their memory through
// Backend.OutsideMemory, which is added.
//
// Requests for other models run during a load, and what they allocate or free between
// the two readings is charged to it. Without per-session arenas (cmd/ferry turns ONNX
// Runtime's off under a budget) that is a run's transient buffers, small next to a
// session, but it can go either way; so a version is never charged less than its floor
// (charge, budget.go): what its instances report holding (ONNX: the file plus the C heap
// of the smallest session, measured when the runtime started), at least its files.
// Memory a model allocates after its warmup (an arena it asked for, a bigger batch) is
// not charged until it is reloaded; file pages a backend maps (shared, evictable) are
// not counted.

// measureLoad runs load and returns how many bytes the process holds more afterwards
// (negative when requests in flight freed more than the load took).
func (r *Repository) measureLoad(load func() error) (int64, error) {
	probe := r.probe()
	before, err := probe()
	if err != nil {
		return 0, err
	}
	if err := load(); err != nil {
		return 0, err
	}
	after, err := probe()
	if err != nil {
		return 0, err
	}
	return after - before, nil
}

func (r *Repository) probe() func() (int64, error) {
	if native := r.opts.NativeHeapInUse; native != nil {
		return func() (int64, error) { return native(), nil }
	}
	return func() (int64, error) {
		debug.FreeOSMemory() // a collection, then Go's free pages go back to the OS
		return anonResident()
	}
}

// anonResident reads the process's anonymous resident memory: statm's resident pages
// minus its shared (file-backed and shmem) ones.
func anonResident() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("memory budget: measuring resident memory needs /proc/self/statm: %w", err)
	}
	return parseStatm(string(b), int64(os.Getpagesize()))
}

func parseStatm(s string, page int64) (int64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, errors.New("memory budget: /proc/self/statm has fewer than 3 fields")
	}
	resident, err1 := strconv.ParseInt(f[1], 10, 64)
	shared, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("memory budget: /proc/self/statm: %w", err)
	}
	return (resident - shared) * page, nil
}

// formatBytes prints a byte count the way --memory-budget takes it (512MiB, 1.5GiB).
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}
