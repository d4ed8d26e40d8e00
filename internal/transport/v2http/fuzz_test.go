package v2http

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
)

// fuzzLimits keep fuzzed shapes small enough that the fuzzer spends its time on parsing.
var fuzzLimits = core.Limits{MaxBodyBytes: 1 << 20, MaxTensorElements: 1 << 16, MaxRank: 8}

// checkDecoded asserts what every successful decode must hold: tensors whose bytes
// match their shapes, within the limits.
func checkDecoded(t *testing.T, req *core.InferRequest) {
	t.Helper()
	for _, in := range req.Inputs {
		if err := in.Validate(); err != nil {
			t.Fatalf("decoded input %q does not validate: %v", in.Name, err)
		}
		if err := fuzzLimits.CheckShape(in.Name, in.Shape); err != nil {
			t.Fatalf("decoded input %q is over the limits: %v", in.Name, err)
		}
	}
}

// FuzzDecodeInferJSON decodes arbitrary JSON bodies. Beyond not crashing, a body that
// decodes must survive a round trip: its tensors, written back as V2 JSON tensors and
// decoded again, come back identical.
func FuzzDecodeInferJSON(f *testing.F) {
	for _, seed := range fuzzJSONSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeInferRequest(body, -1, fuzzLimits)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("decode error %v maps to %d, want 400", err, statusOf(err))
			}
			return
		}
		checkDecoded(t, req)
		enc, err := encodeInferResponse(&core.InferRequest{}, &core.InferResponse{Outputs: req.Inputs}, nil)
		if err != nil {
			return // e.g. BYTES that are not UTF-8 have no JSON form
		}
		again := bytes.Replace(enc.header, []byte(`{"model_name":"","outputs":`), []byte(`{"inputs":`), 1)
		req2, err := DecodeInferRequest(again, -1, fuzzLimits)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if diff := cmp.Diff(req.Inputs, req2.Inputs); diff != "" {
			t.Fatalf("round trip changed the tensors (-first +second):\n%s\nbody: %q", diff, again)
		}
	})
}

// FuzzParseBinary decodes arbitrary bodies split by an arbitrary
// Inference-Header-Content-Length, and arbitrary raw binary bodies.
func FuzzParseBinary(f *testing.F) {
	for _, seed := range fuzzBinarySeeds {
		f.Add(seed.body, seed.headerLength)
	}
	raws := []core.TensorMetadata{
		{Name: "x", DataType: "FP32", Shape: []int64{-1, 4}},
		{Name: "y", DataType: "UINT8", Shape: []int64{2, -1}},
		{Name: "s", DataType: "BYTES", Shape: []int64{-1, 1}},
	}
	f.Fuzz(func(t *testing.T, body []byte, headerLength int64) {
		if headerLength != 0 {
			req, err := DecodeInferRequest(body, headerLength, fuzzLimits)
			if err == nil {
				checkDecoded(t, req)
			} else if statusOf(err) != 400 {
				t.Fatalf("decode error %v maps to %d, want 400", err, statusOf(err))
			}
			return
		}
		for _, md := range raws {
			for _, batching := range []bool{false, true} {
				in, err := rawInput(body, md, batching, fuzzLimits)
				if err != nil {
					continue
				}
				checkDecoded(t, &core.InferRequest{Inputs: []*tensor.Tensor{in}})
			}
		}
	})
}

var fuzzJSONSeeds = []string{
	`{"id":"1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]}]}`,
	`{"inputs":[{"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,true]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`,
	`{"inputs":[{"name":"u","shape":[2],"datatype":"UINT64","data":[0,18446744073709551615]},{"name":"i","shape":[2],"datatype":"INT8","data":[-128,127]}]}`,
	`{"inputs":[{"name":"h","shape":[3],"datatype":"FP16","data":[1.5,-65504,6e-8]},{"name":"g","shape":[1],"datatype":"BF16","data":[3.14]}]}`,
	`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a\u00e9\n","\ud83d\ude00"]}]}`,
	`{"inputs":[{"data":[[[1],[2]]],"datatype":"INT16","shape":[1,2,1],"name":"late"}],"parameters":{"p":1,"q":"s","r":true,"f":0.5}}`,
	`{"inputs":[{"name":"x","shape":[],"datatype":"FP64","data":[1e308]}]}`,
	`{"inputs":[{"name":"x","shape":[0,4],"datatype":"INT32","data":[]}]}`,
	`{"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}`,
	`{"unknown":{"a":[1,{"b":null}],"c":"d"},"inputs":[]}`,
}

var fuzzBinarySeeds = []struct {
	body         []byte
	headerLength int64
}{
	{append([]byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`), 0, 0, 128, 63, 0, 0, 0, 64), 91},
	{append([]byte(`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`), 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'), 92},
	{append([]byte(`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`), 9, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'), 92},
	{[]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}, 0},
	{[]byte("raw text"), 0},
	{[]byte(`{"inputs":[]}`), 1000},
	{[]byte(`{"inputs":[]}`), -1},
}

// FuzzFloatParsing checks the fast float path against strconv on arbitrary JSON numbers.
func FuzzFloatParsing(f *testing.F) {
	for _, s := range []string{"0", "-0.5", "1e22", "16777217", "3.4028235e38", "1.0000000596046448", "9007199254740993e-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		s := &scanner{buf: []byte(tok)}
		num, _, err := s.number()
		if err != nil || len(num) != len(tok) {
			return // not a JSON number
		}
		for _, dt := range []tensor.DType{tensor.FP32, tensor.FP64} {
			bits := 32
			if dt == tensor.FP64 {
				bits = 64
			}
			want, werr := strconv.ParseFloat(tok, bits)
			d := &dataDecoder{dt: dt, name: "x"}
			if gerr := d.float(num); (werr != nil) != (gerr != nil) {
				t.Fatalf("%s %q: strconv err %v, ours %v", dt, tok, werr, gerr)
			} else if werr == nil {
				var got float64
				if dt == tensor.FP32 {
					got = float64(math.Float32frombits(binary.LittleEndian.Uint32(d.out)))
				} else {
					got = math.Float64frombits(binary.LittleEndian.Uint64(d.out))
				}
				if math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("%s %q: got %v, strconv %v", dt, tok, got, want)
				}
			}
		}
	})
}
