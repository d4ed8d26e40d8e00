package bench

import (
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"google.golang.org/protobuf/proto"
)

func TestRepliesReadWhatTheGeneratorChecks(t *testing.T) {
	resp := &inference.ModelInferResponse{
		ModelName: "m", Id: "7",
		Parameters:        map[string]*inference.InferParameter{"x": {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: true}}},
		Outputs:           []*inference.ModelInferResponse_InferOutputTensor{{Name: "a"}, {Name: "b", Shape: []int64{2}}},
		RawOutputContents: [][]byte{{1, 2}, {3}},
	}
	if unary, err := readInferReply(encoded(t, resp)); err != nil || unary.outputs != 2 || unary.err() != nil {
		t.Errorf("unary reply %+v, %v; want 2 outputs", unary, err)
	}
	if stream, err := readStreamReply(encoded(t, &inference.ModelStreamInferResponse{InferResponse: resp})); err != nil ||
		stream.errMsg != "" || stream.infer.outputs != 2 {
		t.Errorf("stream reply %+v, %v; want 2 outputs", stream, err)
	}
	if stream, err := readStreamReply(encoded(t, &inference.ModelStreamInferResponse{ErrorMessage: "model m is not ready"})); err != nil ||
		stream.errMsg != "model m is not ready" {
		t.Errorf("stream error reply %+v, %v", stream, err)
	}
	if unary, err := readInferReply(encoded(t, &inference.ModelInferResponse{ModelName: "m"})); err != nil || unary.err() == nil {
		t.Errorf("a response without outputs: %+v, %v; want the reply to say so", unary, err)
	}
	if _, err := readInferReply([]byte{0x2a, 0x05, 1}); err == nil {
		t.Error("a truncated response was accepted")
	}
}

func encoded(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
		if unary, err := readInferReply(b); err == nil {
			var want inference.ModelInferResponse
			if proto.Unmarshal(b, &want) == nil && len(want.Outputs) != unary.outputs {
				t.Fatalf("counted %d outputs, protobuf reads %d", unary.outputs, len(want.Outputs))
			}
		}
		if stream, err := readStreamReply(b); err == nil {
			var want inference.ModelStreamInferResponse
			if proto.Unmarshal(b, &want) == nil && (want.ErrorMessage != stream.errMsg || len(want.GetInferResponse().GetOutputs()) != stream.infer.outputs) {
				t.Fatalf("read %+v, protobuf reads %v", stream, &want)
			}
		}
	})
}
