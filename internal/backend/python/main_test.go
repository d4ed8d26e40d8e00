package python

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needPython skips a test when there is no python3 to run models with.
func needPython(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH; the python backend tests need it: ", err)
	}
	return p
}

// model is a model folder written for a test.
type model struct {
	dir    string // <tmp>/<name>
	config string
	source string
}

// writeModel writes <tmp>/<name>/config.pbtxt and <tmp>/<name>/1/model.py.
func writeModel(t testing.TB, name, config, source string) model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.pbtxt"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "1", "model.py"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return model{dir: dir, config: config, source: source}
}

// open starts an instance of m, closed when the test ends.
func (m model) open(t testing.TB, opts Options) (*Instance, error) {
	t.Helper()
	cfg, err := modelconfig.Parse([]byte(m.config))
	if err != nil {
		t.Fatal(err)
	}
	modelconfig.SetDefaults(cfg, filepath.Base(m.dir))
	if err := modelconfig.Validate(cfg, filepath.Base(m.dir)); err != nil {
		t.Fatal(err)
	}
	in, err := NewFactory(opts).Open(context.Background(), filepath.Join(m.dir, "1", "model.py"), cfg)
	if err == nil {
		t.Cleanup(func() { in.Close() })
	}
	return in, err
}

func (m model) mustOpen(t testing.TB, opts Options) *Instance {
	t.Helper()
	in, err := m.open(t, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return in
}

func int32s(vs ...int32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func fp32s(vs ...float32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func tens(name string, dt tensor.DType, shape tensor.Shape, data []byte) *tensor.Tensor {
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}
}

// logBuffer is a slog handler target that tests can read safely.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// children lists the processes whose parent is this test process, with their state
// letter from /proc/<pid>/stat ("Z" for a zombie).
func children(t testing.TB) map[int]string {
	t.Helper()
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me {
			out[pid] = f[0]
		}
	}
	return out
}

// flavor is one way pb_utils runs: with NDArray standing in for numpy, or with numpy.
type flavor struct {
	name string
	opts Options
	skip string // why this flavor cannot run here
}

var numpyPython = sync.OnceValue(func() string {
	for _, py := range []string{"python3", "/usr/bin/python3", "python3.11", "python3.12"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	return ""
})

// flavors lists both; the numpy one is skipped, saying so, where no interpreter on this
// machine can import numpy.
func flavors(t testing.TB) []flavor {
	needPython(t)
	np := flavor{name: "numpy", opts: Options{Interpreter: numpyPython()}}
	if np.opts.Interpreter == "" {
		np.skip = "no python3 here can import numpy (tried python3, /usr/bin/python3, python3.11, python3.12); only the standard-library flavor ran"
	}
	return []flavor{{name: "stdlib", opts: Options{noNumpy: true}}, np}
}
