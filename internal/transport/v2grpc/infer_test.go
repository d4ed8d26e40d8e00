package v2grpc

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// le writes values little-endian, independently of the code under test.
func le(vals ...any) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func bytesElems(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = tensor.AppendBytesElement(b, []byte(e))
	}
	return b
}

// datatypeCases holds, for every V2 datatype, typed contents and the raw bytes they
// must become. FP16 and BF16 have no typed form.
var datatypeCases = []struct {
	dtype string
	shape []int64
	typed *inference.InferTensorContents
	raw   []byte
}{
	{"BOOL", []int64{3}, &inference.InferTensorContents{BoolContents: []bool{true, false, true}}, []byte{1, 0, 1}},
	{"INT8", []int64{3}, &inference.InferTensorContents{IntContents: []int32{-1, 127, -128}}, le(int8(-1), int8(127), int8(-128))},
	{"INT16", []int64{2}, &inference.InferTensorContents{IntContents: []int32{-2, 300}}, le(int16(-2), int16(300))},
	{"INT32", []int64{1, 2}, &inference.InferTensorContents{IntContents: []int32{-3, 70000}}, le(int32(-3), int32(70000))},
	{"INT64", []int64{2}, &inference.InferTensorContents{Int64Contents: []int64{-4, 1 << 40}}, le(int64(-4), int64(1<<40))},
	{"UINT8", []int64{2}, &inference.InferTensorContents{UintContents: []uint32{0, 255}}, []byte{0, 255}},
	{"UINT16", []int64{2}, &inference.InferTensorContents{UintContents: []uint32{65535, 1}}, le(uint16(65535), uint16(1))},
	{"UINT32", []int64{1}, &inference.InferTensorContents{UintContents: []uint32{1 << 31}}, le(uint32(1 << 31))},
	{"UINT64", []int64{1}, &inference.InferTensorContents{Uint64Contents: []uint64{1 << 63}}, le(uint64(1 << 63))},
	{"FP32", []int64{2, 1}, &inference.InferTensorContents{Fp32Contents: []float32{1.5, -2}}, le(float32(1.5), float32(-2))},
	{"FP64", []int64{1}, &inference.InferTensorContents{Fp64Contents: []float64{0.25}}, le(0.25)},
	{"BYTES", []int64{3}, &inference.InferTensorContents{BytesContents: [][]byte{[]byte("ab"), {}, []byte("xyz")}}, bytesElems("ab", "", "xyz")},
	{"FP16", []int64{2}, nil, le(uint16(0x3c00), uint16(0xc000))},
	{"BF16", []int64{2}, nil, le(uint16(0x3f80), uint16(0xc000))},
	{"FP32", []int64{0, 4}, &inference.InferTensorContents{}, nil},
	{"BYTES", []int64{}, &inference.InferTensorContents{BytesContents: [][]byte{[]byte("scalar")}}, bytesElems("scalar")},
}

func TestModelInferEveryDatatype(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	for _, tc := range datatypeCases {
		encodings := map[string]*inference.ModelInferRequest{
			"raw": {
				ModelName:        "echo",
				Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: tc.dtype, Shape: tc.shape}},
				RawInputContents: [][]byte{tc.raw},
			},
		}
		if tc.typed != nil {
			encodings["typed"] = &inference.ModelInferRequest{
				ModelName: "echo",
				Inputs:    []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: tc.dtype, Shape: tc.shape, Contents: tc.typed}},
			}
		}
		for enc, req := range encodings {
			t.Run(tc.dtype+"/"+enc, func(t *testing.T) {
				res, err := c.ModelInfer(t.Context(), req)
				if err != nil {
					t.Fatalf("ModelInfer: %v", err)
				}
				in := fc.lastRequest().Inputs[0]
				if in.DType.String() != tc.dtype || !in.Shape.Equal(tc.shape) || !bytes.Equal(in.Data, tc.raw) {
					t.Errorf("core got %s%v % x, want %s%v % x", in.DType, in.Shape, in.Data, tc.dtype, tc.shape, tc.raw)
				}
				diffProto(t, "response", res, &inference.ModelInferResponse{
					ModelName: "echo", ModelVersion: "1",
					Outputs:           []*inference.ModelInferResponse_InferOutputTensor{{Name: "x", Datatype: tc.dtype, Shape: tc.shape}},
					RawOutputContents: [][]byte{tc.raw},
				})
			})
		}
	}
}

func TestModelInferParametersAndOutputs(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	p := func(v any) *inference.InferParameter {
		switch v := v.(type) {
		case bool:
			return &inference.InferParameter{ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: v}}
		case int64:
			return &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: v}}
		case uint64:
			return &inference.InferParameter{ParameterChoice: &inference.InferParameter_Uint64Param{Uint64Param: v}}
		case float64:
			return &inference.InferParameter{ParameterChoice: &inference.InferParameter_DoubleParam{DoubleParam: v}}
		case string:
			return &inference.InferParameter{ParameterChoice: &inference.InferParameter_StringParam{StringParam: v}}
		}
		panic(v)
	}
	req := &inference.ModelInferRequest{
		ModelName: "echo", ModelVersion: "1", Id: "req-42",
		Parameters: map[string]*inference.InferParameter{
			"sequence_start": p(true), "priority": p(int64(2)), "sequence_id": p(uint64(7)),
			"temperature": p(0.5), "tag": p("blue"),
		},
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "a", Datatype: "FP32", Shape: []int64{1}},
			{Name: "b", Datatype: "INT64", Shape: []int64{1}},
		},
		Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{
			{Name: "b", Parameters: map[string]*inference.InferParameter{"classification": p(int64(3))}},
			{Name: "a"},
		},
		RawInputContents: [][]byte{le(float32(1)), le(int64(2))},
	}
	res, err := c.ModelInfer(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := fc.lastRequest()
	if got.Model != "echo" || got.Version != "1" || got.ID != "req-42" {
		t.Errorf("core got model/version/id %q/%q/%q", got.Model, got.Version, got.ID)
	}
	wantParams := core.Parameters{"sequence_start": true, "priority": int64(2), "sequence_id": int64(7), "temperature": 0.5, "tag": "blue"}
	if d := cmp.Diff(wantParams, got.Parameters); d != "" {
		t.Errorf("core parameters (-want +got):\n%s", d)
	}
	wantOutputs := []core.RequestedOutput{{Name: "b", Parameters: core.Parameters{"classification": int64(3)}}, {Name: "a"}}
	if d := cmp.Diff(wantOutputs, got.Outputs); d != "" {
		t.Errorf("core requested outputs (-want +got):\n%s", d)
	}
	// The fake echoes the request parameters back; uint64 7 comes back as int64.
	want := &inference.ModelInferResponse{
		ModelName: "echo", ModelVersion: "1", Id: "req-42",
		Parameters: map[string]*inference.InferParameter{
			"sequence_start": p(true), "priority": p(int64(2)), "sequence_id": p(int64(7)),
			"temperature": p(0.5), "tag": p("blue"),
		},
		Outputs: []*inference.ModelInferResponse_InferOutputTensor{
			{Name: "a", Datatype: "FP32", Shape: []int64{1}},
			{Name: "b", Datatype: "INT64", Shape: []int64{1}},
		},
		RawOutputContents: [][]byte{le(float32(1)), le(int64(2))},
	}
	diffProto(t, "response", res, want)

	// Response parameters of Go's other numeric types, and one core cannot send.
	fc.mu.Lock()
	fc.respPar = core.Parameters{"n": 3, "big": uint64(math.MaxUint64), "f": float32(0.5)}
	fc.mu.Unlock()
	res, err = c.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "response parameters", &inference.ModelInferResponse{Parameters: res.GetParameters()}, &inference.ModelInferResponse{
		Parameters: map[string]*inference.InferParameter{"n": p(int64(3)), "big": p(uint64(math.MaxUint64)), "f": p(0.5)},
	})
	fc.mu.Lock()
	fc.respPar = core.Parameters{"bad": []int{1}}
	fc.mu.Unlock()
	_, err = c.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "echo"})
	checkCall(t, "unsupported response parameter", err, codes.Internal, `model "echo": response parameter "bad" has unsupported type []int`)
}

func TestModelInferRejectsBadInput(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{MaxTensorElements: 1 << 20, MaxRank: 4})
	in := func(name, dtype string, shape []int64, contents *inference.InferTensorContents) *inference.ModelInferRequest_InferInputTensor {
		return &inference.ModelInferRequest_InferInputTensor{Name: name, Datatype: dtype, Shape: shape, Contents: contents}
	}
	typed := func(inputs ...*inference.ModelInferRequest_InferInputTensor) *inference.ModelInferRequest {
		return &inference.ModelInferRequest{ModelName: "echo", Inputs: inputs}
	}
	raw := func(x *inference.ModelInferRequest_InferInputTensor, data ...[]byte) *inference.ModelInferRequest {
		return &inference.ModelInferRequest{ModelName: "echo", Inputs: []*inference.ModelInferRequest_InferInputTensor{x}, RawInputContents: data}
	}
	shm := map[string]*inference.InferParameter{"shared_memory_region": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "r0"}}}
	shm8 := map[string]*inference.InferParameter{"shared_memory_region": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "r0"}},
		"shared_memory_byte_size": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 8}}}
	ints := &inference.InferTensorContents{IntContents: []int32{1, 2}}

	for _, tc := range []struct {
		name string
		req  *inference.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown datatype", typed(in("x", "FP31", []int64{1}, nil)), codes.InvalidArgument,
			`input "x": unknown datatype "FP31"`},
		{"contents of the wrong datatype", typed(in("x", "INT32", []int64{2}, &inference.InferTensorContents{Fp32Contents: []float32{1, 2}})), codes.InvalidArgument,
			`input "x": datatype INT32 takes int_contents, got fp32_contents`},
		{"typed FP16", typed(in("x", "FP16", []int64{1}, &inference.InferTensorContents{Fp32Contents: []float32{1}})), codes.InvalidArgument,
			`input "x": FP16 data can only be sent in raw_input_contents, got fp32_contents`},
		{"FP16 with no data", typed(in("x", "FP16", []int64{1}, &inference.InferTensorContents{})), codes.InvalidArgument,
			`input "x": FP16 data can only be sent in raw_input_contents`},
		{"too few values", typed(in("x", "INT32", []int64{3}, ints)), codes.InvalidArgument,
			`input "x": shape [3] needs 3 values, got 2 in int_contents`},
		{"too many values", typed(in("x", "INT32", []int64{1}, ints)), codes.InvalidArgument,
			`input "x": shape [1] needs 1 values, got 2 in int_contents`},
		{"no data at all", typed(in("x", "INT32", []int64{2}, nil)), codes.InvalidArgument,
			`input "x": no data: set contents or raw_input_contents`},
		{"INT8 value out of range", typed(in("x", "INT8", []int64{2}, &inference.InferTensorContents{IntContents: []int32{1, 300}})), codes.InvalidArgument,
			`input "x": int_contents[1] = 300 is out of range for INT8`},
		{"UINT16 value out of range", typed(in("x", "UINT16", []int64{1}, &inference.InferTensorContents{UintContents: []uint32{70000}})), codes.InvalidArgument,
			`input "x": uint_contents[0] = 70000 is out of range for UINT16`},
		{"raw size mismatch", raw(in("x", "FP32", []int64{2}, nil), make([]byte, 4)), codes.InvalidArgument,
			`input "x": raw_input_contents[0] has 4 bytes, shape [2] of FP32 needs 8`},
		{"broken BYTES prefix", raw(in("s", "BYTES", []int64{1}, nil), append(le(uint32(10)), "abc"...)), codes.InvalidArgument,
			`input "s": raw_input_contents[0]: BYTES element length prefix runs past the end of the data`},
		{"truncated BYTES prefix", raw(in("s", "BYTES", []int64{2}, nil), append(bytesElems("ab"), 1, 0)), codes.InvalidArgument,
			`input "s": raw_input_contents[0]: BYTES element length prefix runs past the end of the data`},
		{"BYTES element count", raw(in("s", "BYTES", []int64{3}, nil), bytesElems("a", "b")), codes.InvalidArgument,
			`input "s": shape [3] needs 3 BYTES elements, raw_input_contents[0] holds 2`},
		{"shape overflow", raw(in("x", "FP32", []int64{1 << 62, 1 << 62}, nil), nil), codes.InvalidArgument,
			`input "x": shape [4611686018427387904,4611686018427387904]: element count overflows`},
		{"negative dimension", raw(in("x", "FP32", []int64{-1, 4}, nil), nil), codes.InvalidArgument,
			`input "x": shape [-1,4]: negative dimension -1`},
		{"over the element limit", raw(in("x", "UINT8", []int64{1 << 21}, nil), nil), codes.InvalidArgument,
			`input "x": shape [2097152] has 2097152 elements, over the limit of 1048576`},
		{"over the rank limit", raw(in("x", "UINT8", []int64{1, 1, 1, 1, 1}, nil), []byte{0}), codes.InvalidArgument,
			`input "x": rank 5 exceeds the limit of 4`},
		{"raw and typed mixed", &inference.ModelInferRequest{ModelName: "echo",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{in("a", "INT32", []int64{2}, ints), in("b", "INT32", []int64{1}, nil)},
			RawInputContents: [][]byte{le(int32(1), int32(2)), le(int32(3))}}, codes.InvalidArgument,
			`input "a": contents must not be set when the request uses raw_input_contents`},
		{"raw for some inputs only", &inference.ModelInferRequest{ModelName: "echo",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{in("a", "INT32", []int64{1}, nil), in("b", "INT32", []int64{1}, ints)},
			RawInputContents: [][]byte{le(int32(1))}}, codes.InvalidArgument,
			`raw_input_contents has 1 entries for 2 inputs; it must hold one entry per input, in the order of inputs, or none`},
		{"input named twice", typed(in("x", "INT32", []int64{2}, ints), in("x", "INT32", []int64{2}, ints)), codes.InvalidArgument,
			`input "x": appears more than once in inputs`},
		{"input without a name", typed(in("", "INT32", []int64{2}, ints)), codes.InvalidArgument,
			`inputs[0]: name is required`},
		{"shared memory input without its size", typed(&inference.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "INT32", Shape: []int64{2}, Parameters: shm}), codes.InvalidArgument,
			`input "x": parameters shared_memory_region and shared_memory_byte_size must be given together`},
		{"shared memory output without its size", &inference.ModelInferRequest{ModelName: "echo",
			Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "y", Parameters: shm}}}, codes.InvalidArgument,
			`output "y": parameters shared_memory_region and shared_memory_byte_size must be given together`},
		{"shared memory input and contents", typed(&inference.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "INT32", Shape: []int64{2}, Parameters: shm8, Contents: ints}), codes.InvalidArgument,
			`input "x": takes its data from shared memory (parameter shared_memory_region), so contents must not be set`},
		{"shared memory input, size not the shape's", typed(&inference.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "INT32", Shape: []int64{3}, Parameters: shm8}), codes.InvalidArgument,
			`input "x": shared_memory_byte_size 8 does not match shape [3] of INT32 (3 elements of 4 bytes)`},
		{"shared memory input on a server without regions", typed(&inference.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "INT32", Shape: []int64{2}, Parameters: shm8}), codes.InvalidArgument,
			`input "x": system shared memory is not enabled on this server`},
		{"raw for the input in shared memory too", &inference.ModelInferRequest{ModelName: "echo",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "a", Datatype: "INT32", Shape: []int64{2}, Parameters: shm8}, in("b", "INT32", []int64{1}, nil)},
			RawInputContents: [][]byte{le(int32(1), int32(2)), le(int32(3))}}, codes.InvalidArgument,
			`raw_input_contents has 2 entries for 1 inputs not in shared memory; it must hold one entry per such input, in the order of inputs, or none`},
		{"output requested twice", &inference.ModelInferRequest{ModelName: "echo",
			Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "y"}, {Name: "y"}}}, codes.InvalidArgument,
			`output "y" is requested more than once`},
		{"uint64 parameter too large", &inference.ModelInferRequest{ModelName: "echo",
			Parameters: map[string]*inference.InferParameter{"sequence_id": {ParameterChoice: &inference.InferParameter_Uint64Param{Uint64Param: math.MaxUint64}}}}, codes.InvalidArgument,
			`request parameter "sequence_id": uint64 value 18446744073709551615 does not fit in int64`},
		{"parameter without a value", &inference.ModelInferRequest{ModelName: "echo",
			Parameters: map[string]*inference.InferParameter{"priority": {}}}, codes.InvalidArgument,
			`request parameter "priority" has no value`},
		{"unknown model", &inference.ModelInferRequest{ModelName: "nope"}, codes.NotFound,
			`Request for unknown model: 'nope' is not found`},
		{"unknown version", &inference.ModelInferRequest{ModelName: "echo", ModelVersion: "3"}, codes.NotFound,
			`Request for unknown model: 'echo' version 3 is not found`},
		{"model busy", &inference.ModelInferRequest{ModelName: "busy"}, codes.Unavailable,
			`model "busy": queue is full`},
		{"backend failure", &inference.ModelInferRequest{ModelName: "broken"}, codes.Internal,
			`backend exploded`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ModelInfer(t.Context(), tc.req)
			checkCall(t, "ModelInfer", err, tc.code, tc.msg)
		})
	}
}

func TestModelInferLargeTensor(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	const n = 2 << 20 // 8 MiB of FP32, twice grpc-go's default limit
	data := bytes.Repeat(le(float32(0.5)), n)
	res, err := c.ModelInfer(t.Context(), &inference.ModelInferRequest{
		ModelName:        "echo",
		Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, n}}},
		RawInputContents: [][]byte{data},
	})
	if err != nil {
		t.Fatalf("8 MiB request: %v", err)
	}
	if got := res.GetRawOutputContents(); len(got) != 1 || !bytes.Equal(got[0], data) {
		t.Errorf("8 MiB response came back altered (%d outputs)", len(got))
	}
}

func TestMessageLimitIsEnforced(t *testing.T) {
	lim := core.DefaultLimits()
	lim.MaxGRPCMessageSize = 1 << 20
	c, _ := newTestClient(t, &fakeCore{}, lim)
	req := func(size int) *inference.ModelInferRequest {
		return &inference.ModelInferRequest{
			ModelName:        "echo",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "UINT8", Shape: []int64{int64(size)}}},
			RawInputContents: [][]byte{make([]byte, size)},
		}
	}
	_, err := c.ModelInfer(t.Context(), req(2<<20))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("2 MiB request to a 1 MiB server: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := c.ModelInfer(t.Context(), req(512<<10)); err != nil {
		t.Errorf("512 KiB request to a 1 MiB server: %v", err)
	}
}
