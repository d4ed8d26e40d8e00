package onnxtest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/platform/ortlib"
)

// Options say what Main does around the tests.
type Options struct {
	// Cleanup runs after the tests, before the runtime closes (generated models'
	// folders, say).
	Cleanup func()
	// Leaks fails a passing run that leaves goroutines behind (goleak).
	Leaks bool
}

// Main opens ONNX Runtime from the library `make ort` fetched (or $FERRY_ORT_LIB) into
// *rt, which stays nil when there is none (tests that need it skip), runs the tests,
// closes the runtime, and exits with the tests' code.
func Main(m *testing.M, rt **onnx.Runtime, opts Options) {
	if lib := ortlib.Find(os.Getenv); lib != "" {
		r, err := onnx.NewRuntime(onnx.Options{LibraryPath: lib})
		if err != nil {
			fmt.Fprintf(os.Stderr, "initialising ONNX Runtime from %s: %v\n", lib, err)
			os.Exit(1)
		}
		*rt = r
	}
	code := m.Run()
	if opts.Cleanup != nil {
		opts.Cleanup()
	}
	if *rt != nil {
		if err := (*rt).Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing ONNX Runtime:", err)
			code = 1
		}
	}
	if code == 0 && opts.Leaks {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
