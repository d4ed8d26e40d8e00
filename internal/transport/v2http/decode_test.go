package v2http

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// le builds little-endian bytes from values of one fixed-size type.
func le(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func bytesData(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = tensor.AppendBytesElement(b, []byte(e))
	}
	return b
}

func oneInput(datatype, shape, data string) string {
	return `{"inputs":[{"name":"x","datatype":"` + datatype + `","shape":` + shape + `,"data":` + data + `}]}`
}

func TestDecodeData(t *testing.T) {
	for _, tc := range []struct {
		name, datatype, shape, data string
		want                        []byte
	}{
		{"bool", "BOOL", "[3]", "[true,false,true]", []byte{1, 0, 1}},
		{"uint8 bounds", "UINT8", "[2]", "[0,255]", []byte{0, 255}},
		{"uint16", "UINT16", "[1]", "[65535]", le(uint16(65535))},
		{"uint32", "UINT32", "[1]", "[4294967295]", le(uint32(4294967295))},
		{"uint64 max", "UINT64", "[1]", "[18446744073709551615]", le(uint64(math.MaxUint64))},
		{"int8 bounds", "INT8", "[2]", "[-128,127]", le(int8(-128), int8(127))},
		{"int16", "INT16", "[2]", "[-32768,-0]", le(int16(-32768), int16(0))},
		{"int32", "INT32", "[1]", "[-2147483648]", le(int32(math.MinInt32))},
		{"int64 bounds", "INT64", "[2]", "[-9223372036854775808,9223372036854775807]", le(int64(math.MinInt64), int64(math.MaxInt64))},
		{"fp16", "FP16", "[4]", "[1,-2.5,65504,6e-8]", le(uint16(0x3c00), uint16(0xc100), uint16(0x7bff), uint16(0x0001))},
		{"bf16", "BF16", "[2]", "[1,-2.5]", le(uint16(0x3f80), uint16(0xc020))},
		{"fp32 exponent forms", "FP32", "[3]", "[1E2,-2.5e-1,0]", le(float32(100), float32(-0.25), float32(0))},
		{"fp64", "FP64", "[2]", "[0.1,-1e300]", le(0.1, -1e300)},
		{"bytes with escapes", "BYTES", "[3]", `["a","\u00e9\t\"","\ud83d\ude00"]`, bytesData("a", "é\t\"", "😀")},
		{"bytes empty element", "BYTES", "[1]", `[""]`, bytesData("")},
		{"nested 2x2", "INT32", "[2,2]", "[[1,2],[3,4]]", le(int32(1), int32(2), int32(3), int32(4))},
		{"nested 2x2x2 partly flat", "INT8", "[2,2,2]", "[[1,2,3,4],[5,6,7,8]]", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"nested 2x2x2 full", "INT8", "[2,2,2]", "[[[1,2],[3,4]],[[5,6],[7,8]]]", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"flat for 3 dims", "INT8", "[2,1,2]", "[1,2,3,4]", []byte{1, 2, 3, 4}},
		{"scalar", "FP64", "[]", "[2]", le(2.0)},
		{"zero elements", "FP32", "[0,3]", "[]", []byte{}},
		{"whitespace", "UINT8", "[ 2 ]", "[ 1 ,\n 2\t]", []byte{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := oneInput(tc.datatype, tc.shape, tc.data)
			req, err := DecodeInferRequest([]byte(body), -1, core.DefaultLimits())
			if err != nil {
				t.Fatalf("DecodeInferRequest(%s) = %v", body, err)
			}
			if got := req.Inputs[0].Data; !bytes.Equal(got, tc.want) {
				t.Errorf("DecodeInferRequest(%s) data = %x, want %x", body, got, tc.want)
			}
			if err := req.Inputs[0].Validate(); err != nil {
				t.Errorf("decoded tensor does not validate: %v", err)
			}
		})
	}
}

func TestDecodeRequestFields(t *testing.T) {
	body := `{"model_name":"ignored","id":"r1","parameters":{"n":-3,"f":1.5,"s":"v","b":false,"big":1e400},` +
		`"outputs":[{"name":"y","parameters":{"binary_data":true}},{"name":"z"}],` +
		`"inputs":[{"data":[1,2],"parameters":{"custom":1},"datatype":"INT64","shape":[2],"name":"late"}]}`
	req, err := DecodeInferRequest([]byte(body), -1, core.DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), `parameter "big": 1e400 is out of range`) {
		t.Fatalf("a float parameter out of range: err = %v", err)
	}
	body = strings.Replace(body, `,"big":1e400`, "", 1)
	req, err = DecodeInferRequest([]byte(body), -1, core.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := &core.InferRequest{
		ID:         "r1",
		Parameters: core.Parameters{"n": int64(-3), "f": 1.5, "s": "v", "b": false},
		Outputs: []core.RequestedOutput{
			{Name: "y", Parameters: core.Parameters{"binary_data": true}},
			{Name: "z"},
		},
		Inputs: []*tensor.Tensor{tensorOf("late", tensor.Int64, []int64{2}, le(int64(1), int64(2)))},
	}
	if diff := cmp.Diff(want, req, cmpopts.IgnoreUnexported(core.InferRequest{})); diff != "" {
		t.Errorf("decoded request mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	limits := core.Limits{MaxBodyBytes: 1 << 20, MaxTensorElements: 1000, MaxRank: 4}
	for _, tc := range []struct {
		name, body, wantErr string
	}{
		{"not an object", `[1]`, `malformed JSON at offset 0: the inference request must be a JSON object, found an array`},
		{"truncated", `{"inputs":[{"name":"x"`, `malformed JSON at offset 22: expected ',' or '}' in object, found end of input`},
		{"trailing garbage", `{} {}`, `malformed JSON at offset 3: expected the end of the body after the top-level value, found an object`},
		{"bad literal", `{"id":tru}`, `malformed JSON at offset 6: expected a string, found a boolean`},
		{"unknown datatype", oneInput("FP33", "[1]", "[1]"), `input "x": unknown datatype "FP33"`},
		{"too few values", oneInput("FP32", "[2]", "[1]"), `input "x": shape [2] needs 2 values, got 1`},
		{"too many values", oneInput("FP32", "[1]", "[1,2]"), `input "x": shape [1] needs 1 values, got more`},
		{"shape product overflows", oneInput("FP32", "[4294967296,4294967296]", "[1]"), `input "x": shape [4294967296,4294967296]: element count overflows`},
		{"over element limit", oneInput("FP32", "[1001]", "[1]"), `input "x": shape [1001] has 1001 elements, over the limit of 1000`},
		{"over rank limit", oneInput("FP32", "[1,1,1,1,1]", "[1]"), `input "x": shape has more than 4 dimensions, the rank limit`},
		{"negative dimension", oneInput("FP32", "[-1]", "[1]"), `input "x": shape[0] = -1 is not a non-negative 64-bit integer`},
		{"fractional dimension", oneInput("FP32", "[1.5]", "[1]"), `input "x": shape[0] = 1.5 is not a non-negative 64-bit integer`},
		{"uint8 out of range", oneInput("UINT8", "[1]", "[256]"), `input "x": element 0: 256 is out of range for UINT8`},
		{"negative unsigned", oneInput("UINT32", "[1]", "[-1]"), `input "x": element 0: -1 is out of range for UINT32`},
		{"int8 underflow", oneInput("INT8", "[2]", "[0,-129]"), `input "x": element 1: -129 is out of range for INT8`},
		{"int64 overflow", oneInput("INT64", "[1]", "[9223372036854775808]"), `input "x": element 0: 9223372036854775808 is out of range for INT64`},
		{"uint64 overflow", oneInput("UINT64", "[1]", "[18446744073709551616]"), `input "x": element 0: 18446744073709551616 is out of range for UINT64`},
		{"fraction for an integer", oneInput("INT32", "[1]", "[1.5]"), `input "x": element 0: 1.5 is not an integer, as INT32 needs`},
		{"fp32 overflow", oneInput("FP32", "[1]", "[1e39]"), `input "x": element 0: 1e39 is out of range for FP32`},
		{"fp16 overflow", oneInput("FP16", "[1]", "[65520]"), `input "x": element 0: 65520 is out of range for FP16`},
		{"number for BOOL", oneInput("BOOL", "[1]", "[1]"), `input "x": element 0: expected true or false for BOOL, found a number`},
		{"string for FP32", oneInput("FP32", "[1]", `["1"]`), `input "x": element 0: expected a number for FP32, found a string`},
		{"number for BYTES", oneInput("BYTES", "[1]", `[1]`), `input "x": element 0: expected a string for BYTES, found a number`},
		{"data not an array", oneInput("FP32", "[1]", `1`), `input "x": data must be an array, found a number`},
		{"invalid number", oneInput("FP32", "[1]", `[01]`), `malformed JSON at offset 62: expected ',' or ']' in data of input "x", found a number`},
		{"hex number", oneInput("FP32", "[1]", `[0x1]`), `malformed JSON at offset 62: expected ',' or ']' in data of input "x", found character 'x'`},
		{"ragged nesting", oneInput("FP32", "[2,2]", `[[1,2,3],[4]]`), `input "x": shape [2,2] needs 2 values per innermost array, got 3`},
		{"wrong outer count", oneInput("FP32", "[2,2]", `[[1,2],[3,4],[5,6]]`), `input "x": shape [2,2] needs 4 values, got more`},
		{"nesting deeper than shape", oneInput("FP32", "[2]", `[[1,2]]`), `input "x": data nests deeper than shape [2] allows`},
		{"mixed nesting", oneInput("FP32", "[2,1]", `[[1],2]`), `input "x": data mixes values and arrays at the same depth`},
		{"missing name", `{"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]}`, `inputs[0]: missing "name"`},
		{"missing datatype", `{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, `input "x": missing "datatype"`},
		{"missing shape", `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, `input "x": missing "shape"`},
		{"duplicate field", `{"inputs":[{"name":"x","name":"y"}]}`, `input "x": duplicate field "name"`},
		{"duplicate top-level field", `{"id":"a","id":"b"}`, `inference request: duplicate field "id"`},
		{"data and binary", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]}`, `input "x": has both "data" and parameter binary_data_size`},
		{"negative binary size", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":-4}}]}`, `input "x": parameter binary_data_size must be a non-negative integer, got -4`},
		{"binary without header", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`, `input "x": binary_data_size is 4 but the request has no binary data (no Inference-Header-Content-Length header)`},
		{"binary_data not bool", `{"inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":1}}]}`, `output "y": parameter binary_data must be a boolean, got 1`},
		{"binary_data_output not bool", `{"inputs":[],"parameters":{"binary_data_output":"yes"}}`, `request: parameter binary_data_output must be a boolean, got yes`},
		{"object parameter", `{"parameters":{"p":{}}}`, `request: parameter "p" must be a string, number or boolean, found an object`},
		{"output without name", `{"outputs":[{}]}`, `outputs[0]: missing "name"`},
		{"input name not UTF-8", "{\"inputs\":[{\"name\":\"\xff\",\"datatype\":\"BOOL\",\"shape\":[1],\"data\":[true]}]}", `inputs[0]: name "\xff" is not valid UTF-8`},
		{"output name not UTF-8", "{\"outputs\":[{\"name\":\"a\xc3\"}]}", `outputs[0]: name "a\xc3" is not valid UTF-8`},
		{"missing data", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]}`, `input "x": missing "data" (or parameter binary_data_size for binary data, or shared_memory_region for shared memory)`},
		{"shared memory input without its size", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"shared_memory_region":"r"}}]}`, `input "x": parameters shared_memory_region and shared_memory_byte_size must be given together`},
		{"shared memory input and data", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"shared_memory_region":"r","shared_memory_byte_size":4}}]}`, `input "x": takes its data from shared memory (parameter shared_memory_region), so it must not have "data" or parameter binary_data_size`},
		{"shared memory input and binary", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4,"shared_memory_region":"r","shared_memory_byte_size":4}}]}`, `input "x": takes its data from shared memory (parameter shared_memory_region), so it must not have "data" or parameter binary_data_size`},
		{"shared memory input, size not the shape's", `{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"shared_memory_region":"r","shared_memory_byte_size":4}}]}`, `input "x": shared_memory_byte_size 4 does not match shape [2] of FP32 (2 elements of 4 bytes)`},
		{"shared memory input without regions", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"shared_memory_region":"r","shared_memory_byte_size":4}}]}`, `input "x": system shared memory is not enabled on this server`},
		{"shared memory output, negative offset", `{"outputs":[{"name":"y","parameters":{"shared_memory_region":"r","shared_memory_byte_size":4,"shared_memory_offset":-1}}]}`, `output "y": parameter shared_memory_offset must be a non-negative integer, got -1`},
		{"shared memory output and classification", `{"outputs":[{"name":"y","parameters":{"classification":2,"shared_memory_region":"r","shared_memory_byte_size":4}}]}`, `output "y": an output in shared memory cannot also take parameter classification`},
		{"control character in string", "{\"id\":\"a\x01\"}", `malformed JSON at offset 8: control character 0x01 in string`},
		{"bad escape", `{"id":"\x"}`, `malformed JSON at offset 7: invalid escape '\x' in string`},
		{"deeply nested unknown field", `{"x":` + strings.Repeat("[", 100000) + `}`, `malformed JSON at offset 100005: expected a value, found character '}'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeInferRequest([]byte(tc.body), -1, limits)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("DecodeInferRequest(%.200s)\n err = %v\nwant %s", tc.body, err, tc.wantErr)
			}
			if statusOf(err) != 400 {
				t.Errorf("status of %v = %d, want 400", err, statusOf(err))
			}
		})
	}
}

// TestDecodeBoundsAllocation checks that a shape far larger than its data does not
// allocate for the shape: the body bounds the buffer.
func TestDecodeBoundsAllocation(t *testing.T) {
	body := []byte(oneInput("FP64", "[100000000]", "[1]"))
	limits := core.Limits{MaxTensorElements: 1 << 30}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeInferRequest(body, -1, limits)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "needs 100000000 values, got 1") {
		t.Fatalf("err = %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("decoding a 1-value body for a 100M-element shape allocated %d bytes", grew)
	}
}

// TestFloatParsingMatchesStrconv checks the fast float path against strconv on edge
// cases and many random tokens, for FP32 and FP64.
func TestFloatParsingMatchesStrconv(t *testing.T) {
	toks := []string{"0", "-0", "1", "0.1", "-2.5e-3", "1e22", "1e23", "1e-22", "1e-23", "9007199254740992",
		"9007199254740993", "16777217", "16777219", "3.4028235e38", "3.4028236e38", "1.17549435e-38", "1e-45", "1e-46",
		"0.000000000000000000000000000000000000000000001", "1234567890123456789", "12345678901234567890",
		"1.0000000596046448", "1.00000005960464477539062500001", "4.9406564584124654e-324", "1.7976931348623157e308"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var b []byte
		if r.IntN(2) == 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, r.Uint64N(1<<r.UintN(62)), 10)
		if r.IntN(2) == 0 {
			b = append(b, '.')
			b = strconv.AppendUint(b, r.Uint64N(1<<r.UintN(50)), 10)
		}
		if r.IntN(3) == 0 {
			b = append(b, 'e')
			b = strconv.AppendInt(b, r.Int64N(90)-45, 10)
		}
		toks = append(toks, string(b))
	}
	for _, dt := range []tensor.DType{tensor.FP32, tensor.FP64} {
		bits := 64
		if dt == tensor.FP32 {
			bits = 32
		}
		for _, tok := range toks {
			want, err := strconv.ParseFloat(tok, bits)
			d := &dataDecoder{dt: dt, name: "x"}
			gotErr := d.float([]byte(tok))
			if (err != nil) != (gotErr != nil) {
				t.Fatalf("%s %s: strconv err %v, ours %v", dt, tok, err, gotErr)
			}
			if err != nil {
				continue
			}
			var got float64
			if dt == tensor.FP32 {
				got = float64(math.Float32frombits(binary.LittleEndian.Uint32(d.out)))
			} else {
				got = math.Float64frombits(binary.LittleEndian.Uint64(d.out))
			}
			if math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%s %s: got %v, strconv %v", dt, tok, got, want)
			}
		}
	}
}
