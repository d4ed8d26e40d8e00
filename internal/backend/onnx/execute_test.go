package onnx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

func TestExecuteSimple(t *testing.T) {
	s := open(t, onnxgen.Simple())
	for _, batch := range []int64{1, 3} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			a, b := make([]int32, batch*16), make([]int32, batch*16)
			for i := range a {
				a[i], b[i] = int32(i), int32(1000-3*i)
			}
			shape := tensor.Shape{batch, 16}
			// Inputs out of model order: Execute matches them by name.
			out, err := s.Execute(context.Background(), []*tensor.Tensor{
				tt("INPUT1", tensor.Int32, shape, b), tt("INPUT0", tensor.Int32, shape, a),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 2 || out[0].Name != "OUTPUT0" || out[1].Name != "OUTPUT1" {
				t.Fatalf("outputs %v, want OUTPUT0, OUTPUT1", names(out))
			}
			sum, diff := values[int32](t, out[0]), values[int32](t, out[1])
			for i := range a {
				if sum[i] != a[i]+b[i] || diff[i] != a[i]-b[i] {
					t.Fatalf("element %d: OUTPUT0 %d, OUTPUT1 %d, want %d, %d", i, sum[i], diff[i], a[i]+b[i], a[i]-b[i])
				}
			}
			for _, o := range out {
				if o.DType != tensor.Int32 || !o.Shape.Equal(shape) {
					t.Errorf("%s is %s%v, want INT32%v", o.Name, o.DType, o.Shape, shape)
				}
			}
		})
	}
}

// Every V2 datatype ONNX Runtime's Identity takes survives the round trip
// byte for byte.
func TestIdentityRoundTrip(t *testing.T) {
	var strs []byte
	for _, s := range []string{"hello", "", "ünïcode", "\xff\xfe not utf-8", "a\x00b", "last"} {
		strs = tensor.AppendBytesElement(strs, []byte(s))
	}
	s23 := tensor.Shape{2, 3}
	for _, tc := range []struct {
		elem onnxgen.DataType
		in   *tensor.Tensor
	}{
		{onnxgen.Bool, tt("INPUT0", tensor.Bool, s23, []bool{true, false, false, true, true, false})},
		{onnxgen.Uint8, tt("INPUT0", tensor.Uint8, s23, []uint8{0, 1, 2, 127, 128, 255})},
		{onnxgen.Uint16, tt("INPUT0", tensor.Uint16, s23, []uint16{0, 1, 2, 1 << 15, 12345, math.MaxUint16})},
		{onnxgen.Uint32, tt("INPUT0", tensor.Uint32, s23, []uint32{0, 1, 2, 1 << 31, 123456789, math.MaxUint32})},
		{onnxgen.Uint64, tt("INPUT0", tensor.Uint64, s23, []uint64{0, 1, 2, 1 << 63, 1234567890123, math.MaxUint64})},
		{onnxgen.Int8, tt("INPUT0", tensor.Int8, s23, []int8{math.MinInt8, -1, 0, 1, 100, math.MaxInt8})},
		{onnxgen.Int16, tt("INPUT0", tensor.Int16, s23, []int16{math.MinInt16, -1, 0, 1, 1000, math.MaxInt16})},
		{onnxgen.Int32, tt("INPUT0", tensor.Int32, s23, []int32{math.MinInt32, -1, 0, 1, 100000, math.MaxInt32})},
		{onnxgen.Int64, tt("INPUT0", tensor.Int64, s23, []int64{math.MinInt64, -1, 0, 1, 1 << 40, math.MaxInt64})},
		// 1.0, -2.0, 65504 (max half), smallest subnormal, +Inf, NaN
		{onnxgen.Float16, tt("INPUT0", tensor.FP16, s23, []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00})},
		{onnxgen.Float, tt("INPUT0", tensor.FP32, s23, []float32{-1.5, 0, float32(math.Inf(1)), math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.NaN())})},
		{onnxgen.Double, tt("INPUT0", tensor.FP64, s23, []float64{-1.5, 0, math.Pi, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(-1)})},
		{onnxgen.String, &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: s23, Data: strs}},
		// Zero rows: ONNX Runtime runs them, and every path copes with no data.
		{onnxgen.Float, tt("INPUT0", tensor.FP32, tensor.Shape{0, 3}, []float32{})},
		{onnxgen.Float16, tt("INPUT0", tensor.FP16, tensor.Shape{0, 3}, []uint16{})},
		{onnxgen.String, &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: tensor.Shape{0, 3}, Data: []byte{}}},
	} {
		t.Run(fmt.Sprintf("%s%v", tc.in.DType, tc.in.Shape), func(t *testing.T) {
			s := open(t, onnxgen.Identity(tc.elem, "identity"))
			in := *tc.in
			in.Data = bytes.Clone(tc.in.Data)
			out := execute(t, s, nil, &in)
			checkTensor(t, out[0], "OUTPUT0", tc.in.DType, tc.in.Shape, tc.in.Data)
			if !bytes.Equal(in.Data, tc.in.Data) {
				t.Errorf("Execute changed its input: % x", in.Data)
			}
		})
	}
}

// Input bytes at an odd address (as a network buffer may give) are copied to
// an aligned buffer before ONNX Runtime sees them.
func TestMisalignedInput(t *testing.T) {
	s := open(t, onnxgen.Identity(onnxgen.Int64, "identity"))
	want := tt("INPUT0", tensor.Int64, tensor.Shape{2, 2}, []int64{1, -2, math.MaxInt64, math.MinInt64})
	buf := make([]byte, len(want.Data)+1)
	copy(buf[1:], want.Data)
	in := &tensor.Tensor{Name: "INPUT0", DType: tensor.Int64, Shape: want.Shape, Data: buf[1:]}
	out := execute(t, s, nil, in)
	checkTensor(t, out[0], "OUTPUT0", tensor.Int64, want.Shape, want.Data)
}

func TestBF16(t *testing.T) {
	floats := []float32{1, -2, 0.5, 3, 0, -0.25}
	bits := []uint16{0x3f80, 0xc000, 0x3f00, 0x4040, 0x0000, 0xbe80} // exact in bfloat16
	shape := tensor.Shape{2, 3}
	t.Run("FP32 to BF16", func(t *testing.T) {
		s := open(t, castModel(onnxgen.Float, onnxgen.BFloat16))
		out := execute(t, s, nil, tt("x", tensor.FP32, shape, floats))
		checkTensor(t, out[0], "y", tensor.BF16, shape, tt("", tensor.BF16, nil, bits).Data)
	})
	t.Run("BF16 to FP32", func(t *testing.T) {
		s := open(t, castModel(onnxgen.BFloat16, onnxgen.Float))
		out := execute(t, s, nil, tt("x", tensor.BF16, shape, bits))
		checkTensor(t, out[0], "y", tensor.FP32, shape, tt("", tensor.FP32, nil, floats).Data)
	})
}

// An FP16 output whose dimensions come from different input axes is sized
// from the request before the run.
func TestFP16OutputShapeFromInputs(t *testing.T) {
	model := onnxgen.NewModel("transpose").
		Input("x", onnxgen.Float16, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Node("Transpose", []string{"x"}, []string{"y"}, onnxgen.AttrInts("perm", 1, 0)).
		Output("y", onnxgen.Float16, onnxgen.Sym("n"), onnxgen.Sym("batch")).
		Bytes()
	s := open(t, model)
	in := tt("x", tensor.FP16, tensor.Shape{2, 3}, []uint16{1, 2, 3, 4, 5, 6})
	out := execute(t, s, nil, in)
	checkTensor(t, out[0], "y", tensor.FP16, tensor.Shape{3, 2}, tt("", tensor.FP16, nil, []uint16{1, 4, 2, 5, 3, 6}).Data)
}

func TestUnknowableFP16Output(t *testing.T) {
	s := open(t, unknowableFP16Model())
	in := tt("x", tensor.FP16, tensor.Shape{1, 2}, []uint16{0x3c00, 0xc000})
	out := execute(t, s, nil, in)
	checkTensor(t, out[0], "z", tensor.FP32, tensor.Shape{1, 2}, tt("", tensor.FP32, nil, []float32{1, -2}).Data)
	_, err := s.Execute(context.Background(), []*tensor.Tensor{in}, []string{"y"})
	var ie *InputError
	if !errors.As(err, &ie) || !ie.Output || ie.Name != "y" || !strings.Contains(err.Error(), "cannot be returned") {
		t.Errorf("Execute(want y) err = %v, want an output error for y", err)
	}
}

func TestScalars(t *testing.T) {
	t.Run("rank-0 output", func(t *testing.T) {
		s := open(t, reduceSumModel())
		out := execute(t, s, nil, tt("x", tensor.FP32, tensor.Shape{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
		checkTensor(t, out[0], "sum", tensor.FP32, tensor.Shape{}, tt("", tensor.FP32, nil, []float32{21}).Data)
	})
	t.Run("rank-0 input", func(t *testing.T) {
		model := onnxgen.NewModel("scale").
			Input("x", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(2)).
			Input("k", onnxgen.Float).
			Node("Mul", []string{"x", "k"}, []string{"y"}).
			Output("y", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(2)).
			Bytes()
		s := open(t, model)
		out := execute(t, s, nil, tt("x", tensor.FP32, tensor.Shape{2, 2}, []float32{1, 2, 3, 4}),
			tt("k", tensor.FP32, tensor.Shape{}, []float32{-0.5}))
		checkTensor(t, out[0], "y", tensor.FP32, tensor.Shape{2, 2}, tt("", tensor.FP32, nil, []float32{-0.5, -1, -1.5, -2}).Data)
	})
}

func TestExecuteRequestedOutputs(t *testing.T) {
	s := open(t, onnxgen.Simple())
	shape := tensor.Shape{1, 16}
	in := []*tensor.Tensor{
		tt("INPUT0", tensor.Int32, shape, make([]int32, 16)), tt("INPUT1", tensor.Int32, shape, make([]int32, 16)),
	}
	for _, tc := range []struct {
		want    []string
		wantErr string
	}{
		{[]string{"OUTPUT1"}, ""},
		{[]string{"OUTPUT1", "OUTPUT0"}, ""},
		{[]string{}, ""},
		{[]string{"OUTPUT9"}, `output "OUTPUT9": the model has no such output`},
		{[]string{"OUTPUT0", "OUTPUT0"}, `output "OUTPUT0": requested more than once`},
	} {
		t.Run(strings.Join(tc.want, ",")+" ", func(t *testing.T) {
			out, err := s.Execute(context.Background(), in, tc.want)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Execute(want %q) err = %v, want %q", tc.want, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(names(out), tc.want); d != "" {
				t.Errorf("outputs (-got +want):\n%s", d)
			}
		})
	}
}

func TestExecuteBadRequest(t *testing.T) {
	simple := open(t, onnxgen.Simple())
	boolID := open(t, onnxgen.Identity(onnxgen.Bool, "identity_bool"))
	bytesID := open(t, onnxgen.Identity(onnxgen.String, "identity_bytes"))
	shape := tensor.Shape{1, 16}
	zeros := make([]int32, 16)
	in0 := tt("INPUT0", tensor.Int32, shape, zeros)
	in1 := tt("INPUT1", tensor.Int32, shape, zeros)
	for _, tc := range []struct {
		name    string
		s       *Session
		in      []*tensor.Tensor
		wantErr string
	}{
		{"wrong datatype", simple, []*tensor.Tensor{tt("INPUT0", tensor.FP32, shape, make([]float32, 16)), in1},
			`input "INPUT0": datatype FP32 does not match the model's INT32`},
		{"missing input", simple, []*tensor.Tensor{in0}, `input "INPUT1": missing: the model needs it`},
		{"no inputs", simple, nil, `input "INPUT0": missing: the model needs it` + "\n" + `input "INPUT1": missing: the model needs it`},
		{"unknown input", simple, []*tensor.Tensor{in0, in1, tt("INPUT9", tensor.Int32, shape, zeros)},
			`input "INPUT9": the model has no such input (it takes "INPUT0", "INPUT1")`},
		{"repeated input", simple, []*tensor.Tensor{in0, in0, in1}, `input "INPUT0": given more than once`},
		{"wrong shape", simple, []*tensor.Tensor{tt("INPUT0", tensor.Int32, tensor.Shape{1, 15}, zeros[:15]), in1},
			`input "INPUT0": shape [1,15] does not match the model's [-1,16]`},
		{"short data", simple, []*tensor.Tensor{{Name: "INPUT0", DType: tensor.Int32, Shape: shape, Data: make([]byte, 60)}, in1},
			`input "INPUT0": shape [1,16] of INT32 needs 64 bytes, got 60`},
		{"BOOL byte not 0 or 1", boolID, []*tensor.Tensor{{Name: "INPUT0", DType: tensor.Bool, Shape: tensor.Shape{1, 3}, Data: []byte{1, 0, 2}}},
			`input "INPUT0": BOOL element 2 is byte 2, want 0 or 1`},
		{"BYTES length prefix past the end", bytesID, []*tensor.Tensor{{Name: "INPUT0", DType: tensor.Bytes, Shape: tensor.Shape{1, 1}, Data: []byte{10, 0, 0, 0, 'a'}}},
			`input "INPUT0": BYTES element length prefix runs past the end of the data`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Execute(context.Background(), tc.in, nil)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Execute err = %v, want %q", err, tc.wantErr)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Errorf("Execute err is %T, want it to hold an *InputError", err)
			}
		})
	}
}

func TestExecuteCancelled(t *testing.T) {
	s := open(t, onnxgen.MLP(1))
	t.Run("before the run", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Execute(ctx, []*tensor.Tensor{mlpInput(1)}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Execute err = %v, want context.Canceled", err)
		}
	})
	t.Run("during the run", func(t *testing.T) {
		// The run takes a quarter of a second or more on one thread; the
		// cancellation lands 20ms in, long after the pre-run check, and ONNX
		// Runtime notices its terminate flag at the next graph node.
		in := mlpInput(16384)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err := s.Execute(ctx, []*tensor.Tensor{in}, nil)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run stopped") {
			t.Errorf("Execute err = %v, want a run stopped by context.Canceled", err)
		}
		t.Logf("stopped after %v", time.Since(start))
	})
}

// execute runs s and fails the test on error.
func execute(t *testing.T, s *Session, want []string, in ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	out, err := s.Execute(context.Background(), in, want)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return out
}

func checkTensor(t *testing.T, got *tensor.Tensor, name string, dt tensor.DType, shape tensor.Shape, data []byte) {
	t.Helper()
	if got.Name != name || got.DType != dt || !got.Shape.Equal(shape) {
		t.Errorf("output is %q %s%v, want %q %s%v", got.Name, got.DType, got.Shape, name, dt, shape)
	}
	if !bytes.Equal(got.Data, data) {
		t.Errorf("output %q data\n got % x\nwant % x", got.Name, got.Data, data)
	}
}

func names(ts []*tensor.Tensor) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

// castModel casts input "x" [batch, n] to output "y" of another type.
func castModel(from, to onnxgen.DataType) []byte {
	return onnxgen.NewModel("cast").
		Input("x", from, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Node("Cast", []string{"x"}, []string{"y"}, onnxgen.AttrInt("to", int64(to))).
		Output("y", to, onnxgen.Sym("batch"), onnxgen.Sym("n")).
		Bytes()
}

// mlpInput is a deterministic [batch, 256] FP32 input for onnxgen.MLP.
func mlpInput(batch int) *tensor.Tensor {
	x := make([]float32, batch*onnxgen.MLPInputs)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	return tt("input", tensor.FP32, tensor.Shape{int64(batch), onnxgen.MLPInputs}, x)
}
