package bench

import (
	"testing"

	inference "github.com/ferryml/ferry/internal/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func TestWireCodecReadsWhatTheGeneratorChecks(t *testing.T) {
	resp := &inference.ModelInferResponse{
		ModelName: "m", Id: "7",
		Parameters:        map[string]*inference.InferParameter{"x": {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: true}}},
		Outputs:           []*inference.ModelInferResponse_InferOutputTensor{{Name: "a"}, {Name: "b", Shape: []int64{2}}},
		RawOutputContents: [][]byte{{1, 2}, {3}},
	}
	var unary inferReply
	if err := (wireCodec{}).Unmarshal(encoded(t, resp), &unary); err != nil || unary.outputs != 2 || unary.err() != nil {
		t.Errorf("unary reply %+v, %v; want 2 outputs", unary, err)
	}
	// The same bytes split across two buffers, as gRPC may hand them over.
	whole := encoded(t, resp)[0].ReadOnlyData()
	split := mem.BufferSlice{mem.SliceBuffer(whole[:5]), mem.SliceBuffer(whole[5:])}
	if err := (wireCodec{}).Unmarshal(split, &unary); err != nil || unary.outputs != 2 {
		t.Errorf("split unary reply %+v, %v; want 2 outputs", unary, err)
	}

	var stream streamReply
	if err := (wireCodec{}).Unmarshal(encoded(t, &inference.ModelStreamInferResponse{InferResponse: resp}), &stream); err != nil ||
		stream.errMsg != "" || stream.infer.outputs != 2 {
		t.Errorf("stream reply %+v, %v; want 2 outputs", stream, err)
	}
	if err := (wireCodec{}).Unmarshal(encoded(t, &inference.ModelStreamInferResponse{ErrorMessage: "model m is not ready"}), &stream); err != nil ||
		stream.errMsg != "model m is not ready" {
		t.Errorf("stream error reply %+v, %v", stream, err)
	}
	if err := (wireCodec{}).Unmarshal(encoded(t, &inference.ModelInferResponse{ModelName: "m"}), &unary); err != nil || unary.err() == nil {
		t.Errorf("a response without outputs: %+v, %v; want the reply to say so", unary, err)
	}
	if err := (wireCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer{0x2a, 0x05, 1}}, &unary); err == nil {
		t.Error("a truncated response was accepted")
	}

	// Other messages go through protobuf both ways; an encoded request goes as it is.
	req := &inference.ModelInferRequest{ModelName: "m"}
	out, err := (wireCodec{}).Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back inference.ModelInferRequest
	if err := (wireCodec{}).Unmarshal(out, &back); err != nil || back.ModelName != "m" {
		t.Errorf("round trip through protobuf: %v, %v", &back, err)
	}
	raw, _ := proto.Marshal(req)
	if out, err := (wireCodec{}).Marshal(encodedRequest(raw)); err != nil || string(out.Materialize()) != string(raw) {
		t.Errorf("encoded request sent as %x, %v; want %x", out.Materialize(), err, raw)
	}
}

func encoded(t testing.TB, m proto.Message) mem.BufferSlice {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}
}

// FuzzWireReply feeds the response readers arbitrary bytes: they may refuse them, never
// crash, and whenever protobuf itself accepts the bytes they count the same outputs.
func FuzzWireReply(f *testing.F) {
	for _, m := range []proto.Message{
		&inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "a"}}},
		&inference.ModelStreamInferResponse{ErrorMessage: "e"},
		&inference.ModelStreamInferResponse{InferResponse: &inference.ModelInferResponse{Id: "1"}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		data := mem.BufferSlice{mem.SliceBuffer(b)}
		var unary inferReply
		if err := (wireCodec{}).Unmarshal(data, &unary); err == nil {
			var want inference.ModelInferResponse
			if proto.Unmarshal(b, &want) == nil && len(want.Outputs) != unary.outputs {
				t.Fatalf("counted %d outputs, protobuf reads %d", unary.outputs, len(want.Outputs))
			}
		}
		var stream streamReply
		if err := (wireCodec{}).Unmarshal(data, &stream); err == nil {
			var want inference.ModelStreamInferResponse
			if proto.Unmarshal(b, &want) == nil && (want.ErrorMessage != stream.errMsg || len(want.GetInferResponse().GetOutputs()) != stream.infer.outputs) {
				t.Fatalf("read %+v, protobuf reads %v", stream, &want)
			}
		}
	})
}
