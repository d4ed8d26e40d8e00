package onnx

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/platform/ortlib"
	"github.com/ferryml/ferry/internal/tensor"
)

// rt is the Runtime every test shares: the ONNX Runtime environment is
// process-wide, so there is one at a time. nil when no library was found.
var rt *Runtime

func TestMain(m *testing.M) {
	flag.Parse()
	if lib := findORTLib(); lib != "" {
		var err error
		rt, err = NewRuntime(Options{LibraryPath: lib, Logger: testLogger()})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if rt != nil {
		if err := rt.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing runtime:", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return nil
}

// findORTLib returns the library `make ort` fetched (or $FERRY_ORT_LIB); "" if none.
func findORTLib() string { return ortlib.Find(os.Getenv) }

func needORT(tb testing.TB) {
	tb.Helper()
	if rt == nil {
		tb.Skip("ONNX Runtime library not found: run `make ort` or set FERRY_ORT_LIB")
	}
}

// writeModel writes model bytes to a fresh file and returns its path.
func writeModel(tb testing.TB, model []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "model.onnx")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// open loads model into a Session closed at the end of the test.
func open(tb testing.TB, model []byte) *Session {
	tb.Helper()
	needORT(tb)
	s, err := rt.Open(writeModel(tb, model), SessionOptions{IntraOpThreads: 1})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// tt builds a tensor from little-endian encoded values.
func tt[T any](name string, dt tensor.DType, shape tensor.Shape, vals []T) *tensor.Tensor {
	data, err := binary.Append(nil, binary.LittleEndian, vals)
	if err != nil {
		panic(err)
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}
}

// values decodes a tensor's little-endian data.
func values[T any](tb testing.TB, t *tensor.Tensor) []T {
	tb.Helper()
	var one T
	out := make([]T, len(t.Data)/binary.Size(one))
	if err := binary.Read(bytes.NewReader(t.Data), binary.LittleEndian, out); err != nil {
		tb.Fatalf("decoding %s: %v", t.Name, err)
	}
	return out
}
