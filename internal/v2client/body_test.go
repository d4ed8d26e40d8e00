package v2client

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

func twoInputs() []*tensor.Tensor {
	return []*tensor.Tensor{
		{Name: "A", DType: tensor.Uint8, Shape: tensor.Shape{3}, Data: []byte{1, 2, 3}},
		{Name: "B", DType: tensor.Int32, Shape: tensor.Shape{1}, Data: []byte{0xfe, 0xff, 0xff, 0xff}},
	}
}

// jsonOf decodes the JSON part of a body.
func jsonOf(t *testing.T, b Body) map[string]any {
	t.Helper()
	n := len(b.data)
	if b.binary {
		n = b.headerLen
		if h, _ := strconv.Atoi(b.hlen); h != n {
			t.Fatalf("header says %s, JSON part is %d bytes", b.hlen, n)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(b.data[:n], &got); err != nil {
		t.Fatalf("body %s: %v", b.data, err)
	}
	return got
}

func wantJSON(t *testing.T, what string, got map[string]any, want string) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(w, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestEncodeRESTJSON(t *testing.T) {
	b, err := EncodeREST(&Request{ID: "r1", Inputs: twoInputs(), Outputs: []string{"Y"},
		Parameters: []Param{{"sequence_id", uint64(7)}, {"tag", "x\"y"}, {"f", 0.5}, {"on", true}}})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "JSON body", jsonOf(t, b), `{"parameters":{"sequence_id":7,"tag":"x\"y","f":0.5,"on":true},"id":"r1",
		"inputs":[{"name":"A","shape":[3],"datatype":"UINT8","data":[1,2,3]},{"name":"B","shape":[1],"datatype":"INT32","data":[-2]}],
		"outputs":[{"name":"Y"}]}`)
}

func TestEncodeRESTBinary(t *testing.T) {
	b, err := EncodeREST(&Request{Inputs: twoInputs(), Binary: true})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "binary header", jsonOf(t, b), `{"parameters":{"binary_data_output":true},
		"inputs":[{"name":"A","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}},
		          {"name":"B","shape":[1],"datatype":"INT32","parameters":{"binary_data_size":4}}]}`)
	if tail := string(b.data[b.headerLen:]); tail != "\x01\x02\x03\xfe\xff\xff\xff" {
		t.Errorf("binary part %q", tail)
	}
	// Named outputs are asked for one by one instead.
	b, _ = EncodeREST(&Request{Inputs: twoInputs()[:1], Outputs: []string{"Y"}, Binary: true})
	wantJSON(t, "binary with outputs", jsonOf(t, b), `{"parameters":{},
		"inputs":[{"name":"A","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}}],
		"outputs":[{"name":"Y","parameters":{"binary_data":true}}]}`)
}

func TestEncodeRESTRegionsAndSequence(t *testing.T) {
	b, err := EncodeREST(&Request{Inputs: twoInputs(), InputRegions: []Region{{"r_in0", 3, 3}, {"r_in1", 1, 4}},
		Outputs: []string{"OUT"}, OutputRegions: []Region{{"r_out0", 0, 64}}, Binary: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.binary {
		t.Error("a body whose tensors are in regions is binary, want JSON")
	}
	wantJSON(t, "regions", jsonOf(t, b), `{"parameters":{},
		"inputs":[
			{"name":"A","shape":[3],"datatype":"UINT8","parameters":{"shared_memory_region":"r_in0","shared_memory_offset":3,"shared_memory_byte_size":3}},
			{"name":"B","shape":[1],"datatype":"INT32","parameters":{"shared_memory_region":"r_in1","shared_memory_offset":1,"shared_memory_byte_size":4}}],
		"outputs":[{"name":"OUT","parameters":{"shared_memory_region":"r_out0","shared_memory_offset":0,"shared_memory_byte_size":64}}]}`)
	// A sequence step finds the parameters' opening, and leaves b as it was.
	before := string(b.data)
	seq, err := b.WithParameters(Param{"sequence_id", uint64(7)}, Param{"sequence_start", true})
	if err != nil {
		t.Fatal(err)
	}
	if p := jsonOf(t, seq)["parameters"].(map[string]any); p["sequence_id"] != 7.0 || p["sequence_start"] != true {
		t.Errorf("in sequence: %s", seq.data)
	}
	if string(b.data) != before {
		t.Error("WithParameters changed the body it was called on")
	}
	if _, err := EncodeREST(&Request{Inputs: twoInputs(), InputRegions: []Region{{"r", 0, 1}}}); err == nil {
		t.Error("one region for two inputs was accepted")
	}
}

func TestWithParametersKeepsBinaryHeader(t *testing.T) {
	b, _ := EncodeREST(&Request{Inputs: twoInputs(), Binary: true})
	seq, err := b.WithParameters(Param{"sequence_id", "user-1"}, Param{"sequence_end", true})
	if err != nil {
		t.Fatal(err)
	}
	got := jsonOf(t, seq)
	if p := got["parameters"].(map[string]any); p["sequence_id"] != "user-1" || p["binary_data_output"] != true {
		t.Errorf("parameters %v", p)
	}
	if string(seq.data[seq.headerLen:]) != string(b.data[b.headerLen:]) {
		t.Error("the binary part moved")
	}
	if _, err := b.WithParameters(Param{"bad", []int{1}}); err == nil {
		t.Error("a []int parameter was accepted")
	}
}

func TestDecodeREST(t *testing.T) {
	header := `{"model_name":"m","model_version":"3","id":"x","outputs":[
		{"name":"bin","datatype":"INT16","shape":[2],"parameters":{"binary_data_size":4}},
		{"name":"js","datatype":"FP16","shape":[1,2],"data":[[1.5,-2]]},
		{"name":"s","datatype":"BYTES","shape":[1],"data":["hi"]}]}`
	r, err := DecodeREST(strconv.Itoa(len(header)), append([]byte(header), 1, 0, 0xff, 0xff))
	if err != nil {
		t.Fatal(err)
	}
	if r.ModelName != "m" || r.ModelVersion != "3" || r.ID != "x" || len(r.Outputs) != 3 {
		t.Fatalf("response %+v", r)
	}
	if d := r.Output("bin").Data; string(d) != "\x01\x00\xff\xff" {
		t.Errorf("bin = %v", d)
	}
	if d := r.Output("js").Data; len(d) != 4 || tensor.FP16ToFloat32(uint16(d[0])|uint16(d[1])<<8) != 1.5 {
		t.Errorf("js = %v", d)
	}
	if _, err := r.Select([]string{"s", "nope"}); err == nil {
		t.Error("Select found an output the response lacks")
	}
	for _, bad := range []struct{ hlen, body string }{
		{"", `{"outputs":[{"name":"y","datatype":"INT8","shape":[3],"data":[1,2]}]}`}, // shape and data disagree
		{"", `{"outputs":[{"name":"y","datatype":"INT8","shape":[1],"data":[300]}]}`}, // out of range
		{"9", `{}`}, // header past the body
		{"", `{"outputs":[{"name":"y","datatype":"NOPE","shape":[1],"data":[1]}]}`},                          // unknown datatype
		{"", `{"outputs":[{"name":"y","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":1}}]}`}, // no bytes
	} {
		if _, err := DecodeREST(bad.hlen, []byte(bad.body)); err == nil {
			t.Errorf("DecodeREST(%q, %s) accepted it", bad.hlen, bad.body)
		}
	}
}

func TestEncodeGRPC(t *testing.T) {
	m := (&GRPC{}).Model("m", "2")
	req, err := m.EncodeGRPC(&Request{ID: "i", Inputs: twoInputs(), Outputs: []string{"Y"},
		Parameters: []Param{{"sequence_id", uint64(9)}, {"sequence_start", true}, {"p", 1.5}, {"n", int64(-1)}}})
	if err != nil {
		t.Fatal(err)
	}
	if req.GetModelName() != "m" || req.GetModelVersion() != "2" || req.GetId() != "i" || len(req.GetRawInputContents()) != 2 ||
		req.GetInputs()[1].GetDatatype() != "INT32" || req.GetOutputs()[0].GetName() != "Y" {
		t.Errorf("request %v", req)
	}
	if p := req.GetParameters(); p["sequence_id"].GetUint64Param() != 9 || !p["sequence_start"].GetBoolParam() ||
		p["p"].GetDoubleParam() != 1.5 || p["n"].GetInt64Param() != -1 {
		t.Errorf("parameters %v", p)
	}
	req, _ = m.EncodeGRPC(&Request{Inputs: twoInputs(), InputRegions: []Region{{"a", 0, 3}, {"b", 8, 4}},
		Outputs: []string{"Y"}, OutputRegions: []Region{{"o", 0, 64}}})
	if req.GetRawInputContents() != nil || req.GetInputs()[1].GetParameters()["shared_memory_offset"].GetInt64Param() != 8 ||
		req.GetOutputs()[0].GetParameters()["shared_memory_region"].GetStringParam() != "o" {
		t.Errorf("regions: %v", req)
	}
	resp, err := DecodeGRPC(&inference.ModelInferResponse{ModelVersion: "2",
		Outputs:    []*inference.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "INT32", Shape: []int64{2}, Contents: &inference.InferTensorContents{IntContents: []int32{1, -1}}}},
		Parameters: map[string]*inference.InferParameter{"k": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "v"}}}})
	if err != nil || resp.ModelVersion != "2" || string(resp.Outputs[0].Data) != "\x01\x00\x00\x00\xff\xff\xff\xff" || resp.Parameters["k"] != "v" {
		t.Errorf("DecodeGRPC = %+v, %v", resp, err)
	}
}
