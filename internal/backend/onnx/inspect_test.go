package onnx

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

func TestInspect(t *testing.T) {
	needORT(t)
	batch16 := tensor.Shape{-1, 16}
	for _, tc := range []struct {
		name  string
		model []byte
		want  IO
	}{
		{"simple", onnxgen.Simple(), IO{
			Inputs:  []TensorInfo{{Name: "INPUT0", DType: tensor.Int32, Shape: batch16}, {Name: "INPUT1", DType: tensor.Int32, Shape: batch16}},
			Outputs: []TensorInfo{{Name: "OUTPUT0", DType: tensor.Int32, Shape: batch16}, {Name: "OUTPUT1", DType: tensor.Int32, Shape: batch16}},
		}},
		{"identity FP16", onnxgen.Identity(onnxgen.Float16, "id"), IO{
			Inputs:  []TensorInfo{{Name: "INPUT0", DType: tensor.FP16, Shape: tensor.Shape{-1, -1}}},
			Outputs: []TensorInfo{{Name: "OUTPUT0", DType: tensor.FP16, Shape: tensor.Shape{-1, -1}}},
		}},
		{"identity BYTES", onnxgen.Identity(onnxgen.String, "id"), IO{
			Inputs:  []TensorInfo{{Name: "INPUT0", DType: tensor.Bytes, Shape: tensor.Shape{-1, -1}}},
			Outputs: []TensorInfo{{Name: "OUTPUT0", DType: tensor.Bytes, Shape: tensor.Shape{-1, -1}}},
		}},
		{"mlp", onnxgen.MLP(1), IO{
			Inputs:  []TensorInfo{{Name: "input", DType: tensor.FP32, Shape: tensor.Shape{-1, onnxgen.MLPInputs}}},
			Outputs: []TensorInfo{{Name: "output", DType: tensor.FP32, Shape: tensor.Shape{-1, onnxgen.MLPClasses}}},
		}},
		{"scalar output", reduceSumModel(), IO{
			Inputs:  []TensorInfo{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{-1, -1}}},
			Outputs: []TensorInfo{{Name: "sum", DType: tensor.FP32, Shape: tensor.Shape{}}},
		}},
		{"FP16 output of unknowable shape left out", unknowableFP16Model(), IO{
			Inputs:  []TensorInfo{{Name: "x", DType: tensor.FP16, Shape: tensor.Shape{-1, -1}}},
			Outputs: []TensorInfo{{Name: "z", DType: tensor.FP32, Shape: tensor.Shape{-1, -1}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rt.Inspect(writeModel(t, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("Inspect (-got +want):\n%s", d)
			}
		})
	}
}

// TestInspectFollowsTheFile: descriptions are remembered per file content, so a model
// file replaced in place is described again, and what Inspect returns is the caller's.
func TestInspectFollowsTheFile(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.Simple())
	first, err := rt.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	first.Inputs[0].Shape[1] = 99 // must not reach the remembered description
	again, err := rt.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Inputs[0].Shape; !got.Equal(tensor.Shape{-1, 16}) {
		t.Errorf("second Inspect: INPUT0 shape %v, want [-1 16]", got)
	}
	if err := os.WriteFile(path, onnxgen.MLP(1), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	replaced, err := rt.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(replaced.Inputs) != 1 || replaced.Inputs[0].Name != "input" {
		t.Errorf("Inspect after the file was replaced by mlp: inputs %+v, want mlp's one input", replaced.Inputs)
	}
}

// Corrupt and missing files fail Inspect and Open with an error naming the file.
func TestInspectBadFile(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	random := make([]byte, 4096)
	rand.Read(random)
	truncated := onnxgen.MLP(1)
	truncated = truncated[:len(truncated)/2]
	files := map[string][]byte{
		"random.onnx":    random,
		"empty.onnx":     {},
		"truncated.onnx": truncated,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"random.onnx", "empty.onnx", "truncated.onnx", "missing.onnx"} {
		path := filepath.Join(dir, name)
		t.Run(name, func(t *testing.T) {
			if _, err := rt.Inspect(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Inspect(%s) err = %v, want an error naming the file", name, err)
			} else {
				t.Logf("Inspect: %v", err)
			}
			s, err := rt.Open(path, SessionOptions{})
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Open(%s) err = %v, want an error naming the file", name, err)
			}
		})
	}
	if _, err := rt.Inspect(filepath.Join(dir, "missing.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect(missing) err = %v, want os.ErrNotExist", err)
	}
}

func TestNewRuntimeErrors(t *testing.T) {
	needORT(t)
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no library path", Options{}, "LibraryPath is required"},
		{"missing library", Options{LibraryPath: "/nonexistent/libonnxruntime.so.1"}, "/nonexistent/libonnxruntime.so.1"},
		{"second runtime", Options{LibraryPath: findORTLib()}, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRuntime(tc.opts)
			if err == nil {
				r.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewRuntime err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseGraphShapes(t *testing.T) {
	decl, err := parseGraph(unknowableFP16Model())
	if err != nil {
		t.Fatal(err)
	}
	g := decl.shapes
	got := map[string][]dim{}
	for name, s := range g.inputs {
		got["in:"+name] = s.dims
	}
	for name, s := range g.outputs {
		got["out:"+name] = s.dims
	}
	want := map[string][]dim{
		"in:x":  {{param: "batch"}, {param: "n"}},
		"out:y": {{param: "a"}, {param: "b"}},
		"out:z": {{param: "batch"}, {param: "n"}},
	}
	if d := cmp.Diff(got, want, cmp.AllowUnexported(dim{})); d != "" {
		t.Errorf("parseGraph shapes (-got +want):\n%s", d)
	}
	simple, err := parseGraph(onnxgen.Simple())
	if err != nil {
		t.Fatal(err)
	}
	wantIn := valueShape{known: true, dims: []dim{{param: "batch"}, {value: 16, fixed: true}}}
	if d := cmp.Diff(simple.shapes.inputs["INPUT0"], wantIn, cmp.AllowUnexported(dim{}, valueShape{})); d != "" {
		t.Errorf("simple INPUT0 (-got +want):\n%s", d)
	}
	if _, err := parseGraph([]byte{0x3a, 0xff}); err == nil {
		t.Error("parseGraph(garbage) succeeded")
	}
}

// reduceSumModel sums a FP32 [batch, n] input to a rank-0 output "sum".
func reduceSumModel() []byte {
	return onnxgen.NewModel("reduce_sum").
		Input("x", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Node("ReduceSum", []string{"x"}, []string{"sum"}, onnxgen.AttrInt("keepdims", 0)).
		Output("sum", onnxgen.Float).
		Bytes()
}

// unknowableFP16Model has an FP16 output "y" whose dimensions are named after
// nothing the inputs declare, so its size is unknown before a run, and a FP32
// output "z" that is fine.
func unknowableFP16Model() []byte {
	return onnxgen.NewModel("unknowable").
		Input("x", onnxgen.Float16, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Node("Identity", []string{"x"}, []string{"y"}).
		Node("Cast", []string{"x"}, []string{"z"}, onnxgen.AttrInt("to", int64(onnxgen.Float))).
		Output("y", onnxgen.Float16, onnxgen.Sym("a"), onnxgen.Sym("b")).
		Output("z", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Bytes()
}

// overridableModel adds a constant to x; the constant "w" is declared both as a graph
// input and as an initializer, which makes it an overridable initializer that ONNX
// Runtime does not list among the inputs.
func overridableModel() []byte {
	return onnxgen.NewModel("overridable").
		Input("x", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(2)).
		Input("w", onnxgen.Float, onnxgen.Fixed(2)).
		InitializerFloat32("w", []int64{2}, []float32{1, 2}).
		Node("Add", []string{"x", "w"}, []string{"y"}).
		Output("y", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(2)).
		Bytes()
}

// TestDeclaredIOMatchesONNXRuntime reads each model's inputs and outputs from its file
// and checks they are what ONNX Runtime reports after building a session, which is
// what parseGraph saves.
func TestDeclaredIOMatchesONNXRuntime(t *testing.T) {
	needORT(t)
	models := map[string][]byte{
		"simple": onnxgen.Simple(), "mlp": onnxgen.MLP(1), "accumulator": onnxgen.Accumulator(),
		"accumulator with controls": onnxgen.AccumulatorWithControls(), "scalar output": reduceSumModel(),
		"unknowable FP16": unknowableFP16Model(), "overridable initializer": overridableModel(),
		"cast": castModel(onnxgen.Int32, onnxgen.Float),
	}
	for _, dt := range onnxgen.V2Types() {
		models["identity "+dt.V2Name()] = onnxgen.Identity(dt, "id")
	}
	for name, model := range models {
		t.Run(name, func(t *testing.T) {
			decl, err := parseGraph(model)
			if err != nil || !decl.complete {
				t.Fatalf("parseGraph: %+v, %v", decl, err)
			}
			ins, outs := decl.inputs, decl.outputs
			so, err := ort.NewSessionOptions()
			if err != nil {
				t.Fatal(err)
			}
			defer so.Destroy()
			wantIns, wantOuts, err := ort.GetInputOutputInfoWithOptions(writeModel(t, model), so)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(ins, wantIns); d != "" {
				t.Errorf("inputs (-declared +ONNX Runtime):\n%s", d)
			}
			if d := cmp.Diff(outs, wantOuts); d != "" {
				t.Errorf("outputs (-declared +ONNX Runtime):\n%s", d)
			}
		})
	}
}
