package onnx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// Separate sessions (and several goroutines per session) run at once and
// each gets its own model's answer.
func TestConcurrentExecute(t *testing.T) {
	const sessions, workers, runs = 4, 3, 10
	in := mlpInput(4)
	var wg sync.WaitGroup
	for i := range sessions {
		s := open(t, onnxgen.MLP(uint64(i)))
		want := execute(t, s, nil, in)[0].Data
		for range workers {
			wg.Go(func() {
				for range runs {
					out, err := s.Execute(context.Background(), []*tensor.Tensor{in}, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(out[0].Data, want) {
						t.Errorf("session %d: output differs from its first run", i)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// Close waits for running Executes; later ones get ErrClosed.
func TestCloseWhileExecuting(t *testing.T) {
	needORT(t)
	s, err := rt.Open(writeModel(t, onnxgen.MLP(1)), SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := mlpInput(64)
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				_, err := s.Execute(context.Background(), []*tensor.Tensor{in}, nil)
				once.Do(func() { close(started) })
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Execute(context.Background(), []*tensor.Tensor{in}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after Close err = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A thousand runs through each memory path (ONNX-Runtime-allocated,
// preallocated FP16, strings) leave the process's resident memory where it
// was: every ONNX Runtime value is released. (Leaking the string values alone
// would add about 100 MiB of C++ strings.)
func TestNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	f32 := open(t, onnxgen.Identity(onnxgen.Float, "f32"))
	f16 := open(t, onnxgen.Identity(onnxgen.Float16, "f16"))
	str := open(t, onnxgen.Identity(onnxgen.String, "str"))
	bigF32 := tt("INPUT0", tensor.FP32, tensor.Shape{64, 1024}, make([]float32, 64*1024))
	bigF16 := tt("INPUT0", tensor.FP16, tensor.Shape{64, 1024}, make([]uint16, 64*1024))
	var strs []byte
	for range 1024 {
		strs = tensor.AppendBytesElement(strs, bytes.Repeat([]byte("s"), 64))
	}
	bigStr := &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: tensor.Shape{16, 64}, Data: strs}
	loop := func(n int) {
		for range n {
			execute(t, f32, nil, bigF32)
			execute(t, f16, nil, bigF16)
			execute(t, str, nil, bigStr)
		}
	}
	loop(100) // warm ONNX Runtime's arenas up
	before := rss(t)
	loop(1000)
	after := rss(t)
	t.Logf("resident memory %d MiB before, %d MiB after", before>>20, after>>20)
	if after-before > 48<<20 {
		t.Errorf("resident memory grew by %d MiB over 1000 runs of each kind", (after-before)>>20)
	}
}

// rss reads the process's resident set size after a full garbage collection.
func rss(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm:", err)
	}
	fields := strings.Fields(string(b))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
