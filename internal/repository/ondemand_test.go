package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// memBackend opens instances that hold real memory: a version's model.mem file gives
// the MiB, which the instance maps and fills (residentMemory), so the process's resident
// memory really grows by that much while it is open.
type memBackend struct {
	mu    sync.Mutex
	opens map[string]int // model name -> instances opened
	gate  chan struct{}  // when set, Open waits until it is closed
}

type memInstance struct{ buf []byte }

// residentMemory maps n bytes and makes every page resident. The kernel fills them
// (MADV_POPULATE_WRITE, Linux 5.14+) rather than Go code touching each page, so under
// the race detector no shadow memory is added to what the test measures; on an older
// kernel the pages are touched one by one. Munmap gives the memory back at once, with
// no collection to wait for.
func residentMemory(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	const madvPopulateWrite = 23
	if syscall.Madvise(b, madvPopulateWrite) != nil {
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
	}
	return b, nil
}

func (m *memInstance) Execute(_ context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{{Name: "OUTPUT0", DType: in[0].DType, Shape: in[0].Shape, Data: in[0].Data}}, nil
}

func (m *memInstance) Close() error { return syscall.Munmap(m.buf) }

var _ scheduler.Instance = (*memInstance)(nil)

func (b *memBackend) backend() Backend {
	return Backend{Platform: "mem", DefaultFilename: "model.mem",
		Open: func(ctx context.Context, path string, _ *inference.ModelConfig) (scheduler.Instance, error) {
			b.mu.Lock()
			b.opens[filepath.Base(filepath.Dir(filepath.Dir(path)))]++
			gate := b.gate
			b.mu.Unlock()
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			mib, err := strconv.Atoi(strings.TrimSpace(string(text)))
			if err != nil {
				return nil, err
			}
			buf, err := residentMemory(mib << 20)
			if err != nil {
				return nil, err
			}
			return &memInstance{buf: buf}, nil
		}}
}

func (b *memBackend) openCount(model string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens[model]
}

const memConfig = `backend: "mem"
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1 ] } ]
`

// unloadLog records the Unloaded hook.
type unloadLog struct {
	mu  sync.Mutex
	got []string // "model:reason"
}

func (u *unloadLog) add(model, _, reason string) {
	u.mu.Lock()
	u.got = append(u.got, model+":"+reason)
	u.mu.Unlock()
}

func (u *unloadLog) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.got, " ")
}

type memRepo struct {
	*Repository
	backend *memBackend
	unloads *unloadLog
}

// newMemRepo builds an on-demand repository of mem models, name -> MiB; opts sets the
// budget and timeouts.
func newMemRepo(t testing.TB, models map[string]int, opts Options) *memRepo {
	t.Helper()
	root := t.TempDir()
	for name, mib := range models {
		dir := filepath.Join(root, name, "1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name, "config.pbtxt"), []byte(memConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.mem"), []byte(strconv.Itoa(mib)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mr := &memRepo{backend: &memBackend{opens: map[string]int{}}, unloads: &unloadLog{}}
	opts.Root, opts.Mode = root, ModeOnDemand
	opts.Backends = Backends{"mem": mr.backend.backend()}
	opts.Hooks.Unloaded = mr.unloads.add
	var err error
	if mr.Repository, err = New(opts); err != nil {
		t.Fatal(err)
	}
	if err := mr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mr.Close() })
	return mr
}

func (mr *memRepo) states() map[string]string {
	out := map[string]string{}
	for _, e := range mr.Index(false) {
		out[e.Name] = e.State + " " + e.Reason
	}
	return out
}

func (mr *memRepo) use(t testing.TB, name string) {
	t.Helper()
	l, err := mr.Acquire(context.Background(), name, "")
	if err != nil {
		t.Fatalf("Acquire(%s): %v", name, err)
	}
	l.Release()
}

func TestOnDemandLoadsOnFirstRequestOnce(t *testing.T) {
	mr := newMemRepo(t, map[string]int{"a": 1, "b": 1, "c": 1}, Options{})
	for name, st := range mr.states() {
		if st != "UNAVAILABLE unloaded" {
			t.Errorf("before any request, index shows %s as %q, want UNAVAILABLE unloaded", name, st)
		}
	}
	if !mr.Healthy() {
		t.Error("Healthy() = false with nothing loaded, want true")
	}
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			l, err := mr.Acquire(context.Background(), "b", "")
			if err != nil {
				errs <- err
				return
			}
			l.Release()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Acquire(b) from %d concurrent first requests: %v", clients, err)
	}
	if n := mr.backend.openCount("b"); n != 1 {
		t.Errorf("%d concurrent first requests opened b %d times, want 1 (one shared load)", clients, n)
	}
	st := mr.states()
	if st["b"] != "READY " || st["a"] != "UNAVAILABLE unloaded" {
		t.Errorf("index after requests for b: %v; want b READY and a, c unloaded", st)
	}
	if _, err := mr.Acquire(context.Background(), "nope", ""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Acquire(nope) = %v, want ErrNotFound", err)
	}
}

func TestOnDemandWaitIsBounded(t *testing.T) {
	mr := newMemRepo(t, map[string]int{"slow": 1}, Options{LoadTimeout: 50 * time.Millisecond})
	gate := make(chan struct{})
	mr.backend.mu.Lock()
	mr.backend.gate = gate
	mr.backend.mu.Unlock()

	_, err := mr.Acquire(context.Background(), "slow", "")
	if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "not ready after 50ms") {
		t.Errorf("Acquire while the load takes longer than the load timeout: %v; want ErrUnavailable naming the timeout", err)
	}
	if st := mr.states()["slow"]; st != "LOADING " {
		t.Errorf("index while loading: %q, want LOADING", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mr.Acquire(ctx, "slow", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled context while loading: %v, want context.Canceled", err)
	}
	close(gate) // the load that nobody waits for anymore still completes
	l, err := mr.waitLease(t, "slow")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if n := mr.backend.openCount("slow"); n != 1 {
		t.Errorf("opened %d times, want 1: requests that gave up did not start loads of their own", n)
	}
}

// waitLease acquires with a generous timeout (the load is under way).
func (mr *memRepo) waitLease(t testing.TB, name string) (*core.Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return mr.Acquire(ctx, name, "")
}

func TestOnDemandLoadAndUnloadAPI(t *testing.T) {
	mr := newMemRepo(t, map[string]int{"a": 1}, Options{})
	ctx := context.Background()
	if err := mr.Load(ctx, "a", core.LoadOptions{}); err != nil {
		t.Fatalf("Load(a) in on-demand mode: %v", err)
	}
	if st := mr.states()["a"]; st != "READY " {
		t.Errorf("after Load: %q, want READY", st)
	}
	if err := mr.Unload(ctx, "a"); err != nil {
		t.Fatalf("Unload(a) in on-demand mode: %v", err)
	}
	if got := mr.unloads.String(); got != "a:api" {
		t.Errorf("unload hook saw %q, want a:api", got)
	}
	mr.use(t, "a") // loads again
	if n := mr.backend.openCount("a"); n != 2 {
		t.Errorf("opened a %d times, want 2 (API load, then the request after the unload)", n)
	}
}

// TestOnDemandRefreshReplacesChangedModels: a loaded model whose files change (or go) is
// unloaded at the next refresh, so its next request loads the new files; unchanged
// models, and a model loaded from a load request's own config, stay.
func TestOnDemandRefreshReplacesChangedModels(t *testing.T) {
	mr := newMemRepo(t, map[string]int{"same": 1, "changed": 1, "gone": 1, "api": 1}, Options{AllowLoadFiles: true})
	ctx := context.Background()
	for _, name := range []string{"same", "changed", "gone"} {
		mr.use(t, name)
	}
	if err := mr.Load(ctx, "api", core.LoadOptions{Config: `{"backend": "mem", "max_batch_size": 0,
		"input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [1]}],
		"output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [1]}]}`}); err != nil {
		t.Fatalf("Load(api) with a config: %v", err)
	}
	mr.refreshOnDemand(ctx)
	if got := mr.unloads.String(); got != "" {
		t.Fatalf("refresh with no file changed unloaded %q, want nothing", got)
	}

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(mr.opts.Root, "changed", "1", "model.mem"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mr.opts.Root, "gone")); err != nil {
		t.Fatal(err)
	}
	mr.refreshOnDemand(ctx)
	if got := mr.unloads.String(); got != "changed:replaced gone:removed" {
		t.Errorf("unloads after the files changed: %q, want changed:replaced gone:removed", got)
	}
	st := mr.states()
	if st["same"] != "READY " || st["api"] != "READY " {
		t.Errorf("index after refresh: %v; want same and api still READY", st)
	}
	mr.use(t, "changed") // loads the new files
	if n := mr.backend.openCount("changed"); n != 2 {
		t.Errorf("changed opened %d times, want 2 (before and after the change)", n)
	}
	if _, err := mr.Acquire(ctx, "gone", ""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Acquire(gone) after its folder went: %v, want ErrNotFound", err)
	}
}

func TestOnDemandOptionsChecked(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"budget outside on-demand", Options{Mode: ModeExplicit, MemoryBudget: 1 << 20}, `need model control mode "on-demand", not "explicit"`},
		{"idle unload outside on-demand", Options{Mode: ModePoll, IdleUnload: time.Second}, `need model control mode "on-demand", not "poll"`},
		{"negative budget", Options{Mode: ModeOnDemand, MemoryBudget: -1}, "memory budget: must be >= 0, got -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Root = root
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%+v) = %v, want an error containing %q", tc.opts, err, tc.wantErr)
			}
		})
	}
}

// The janitor unloads a model nobody used for the idle time, and only that one: a model
// with a lease out stays however long it is held. Fake time (synctest) makes it exact.
func TestIdleUnload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := newMemRepo(t, map[string]int{"idle": 1, "held": 1, "busy": 1}, Options{IdleUnload: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- mr.Run(ctx) }()

		mr.use(t, "idle")
		held, err := mr.Acquire(context.Background(), "held", "")
		if err != nil {
			t.Fatal(err)
		}
		mr.use(t, "busy")
		for range 6 { // busy is used every 500ms: never idle for 1s
			time.Sleep(500 * time.Millisecond)
			mr.use(t, "busy")
		}
		synctest.Wait()
		st := mr.states()
		if st["idle"] != "UNAVAILABLE unloaded" || st["held"] != "READY " || st["busy"] != "READY " {
			t.Errorf("after 3s: %v; want idle unloaded, held and busy READY", st)
		}
		if got := mr.unloads.String(); got != "idle:idle" {
			t.Errorf("unload hook saw %q, want idle:idle", got)
		}
		held.Release()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := mr.states()["held"]; st != "UNAVAILABLE unloaded" {
			t.Errorf("1.5s after its lease was returned, held is %q, want unloaded", st)
		}
		mr.use(t, "idle") // scale from zero: the next request loads it again
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// A stateful model keeps its sequences' state between requests, in its scheduler: it is
// not unloaded while a sequence may still be live (its sequence idle time), even though
// no lease is out.
func TestIdleUnloadKeepsLiveSequences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := newMemRepo(t, map[string]int{"plain": 1, "seq": 1}, Options{IdleUnload: 500 * time.Millisecond})
		seqConfig := memConfig + "max_batch_size: 1\nsequence_batching { max_sequence_idle_microseconds: 2000000 }\n"
		if err := os.WriteFile(filepath.Join(mr.opts.Root, "seq", "config.pbtxt"), []byte(seqConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- mr.Run(ctx) }()
		mr.use(t, "plain")
		mr.use(t, "seq")
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := mr.states(); st["plain"] != "UNAVAILABLE unloaded" || st["seq"] != "READY " {
			t.Errorf("1.5s after use: %v; want plain unloaded, seq (sequences live for 2s) READY", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := mr.states()["seq"]; st != "UNAVAILABLE unloaded" {
			t.Errorf("2.5s after use, seq is %q, want unloaded", st)
		}
		cancel()
		<-done
	})
}

func TestParseStatm(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"1000 300 100 10 0 500 0\n", 200 * 4096, ""},
		{"1000 300", 0, "fewer than 3 fields"},
		{"1000 x 100", 0, "invalid syntax"},
	} {
		got, err := parseStatm(tc.in, 4096)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseStatm(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseStatm(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 512: "512B", 512 << 20: "512MiB", 3 << 29: "1.5GiB", 1500: "1.5KiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
