package v2grpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/inference"
)

// FuzzUnmarshalInfer checks that unmarshalInfer decodes what proto.Unmarshal does,
// whatever the bytes: the same message, or an error both ways.
func FuzzUnmarshalInfer(f *testing.F) {
	for _, req := range seedRequests() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// raw_input_contents before and between other fields, and with a wrong wire type.
	mixed := protowire.AppendTag(nil, rawInputContentsField, protowire.BytesType)
	mixed = protowire.AppendBytes(mixed, []byte("ab"))
	mixed = protowire.AppendTag(mixed, 1, protowire.BytesType)
	mixed = protowire.AppendString(mixed, "m")
	mixed = protowire.AppendTag(mixed, rawInputContentsField, protowire.BytesType)
	mixed = protowire.AppendBytes(mixed, nil)
	mixed = protowire.AppendTag(mixed, 1, protowire.BytesType)
	mixed = protowire.AppendString(mixed, "n")
	f.Add(mixed)
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, rawInputContentsField, protowire.VarintType), 3))
	f.Add([]byte{0x3a, 0x05, 'x'}) // raw_input_contents cut short
	f.Fuzz(func(t *testing.T, b []byte) {
		want, got := &inference.ModelInferRequest{}, &inference.ModelInferRequest{Id: "stale"}
		wantErr := proto.Unmarshal(b, want)
		_, gotErr := unmarshalInfer(b, got)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("proto.Unmarshal: %v; unmarshalInfer: %v", wantErr, gotErr)
		}
		if wantErr == nil && !proto.Equal(got, want) {
			t.Fatalf("unmarshalInfer decoded\n%v\nproto.Unmarshal\n%v", got, want)
		}
	})
}

func TestInferCodecRecyclesOnlyTheRequestsItDecoded(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 1<<20)
	b, err := proto.Marshal(&inference.ModelInferRequest{ModelName: "m", RawInputContents: [][]byte{big, {1}}})
	if err != nil {
		t.Fatal(err)
	}
	decoded := &inference.ModelInferRequest{}
	if err := newInferCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, decoded); err != nil {
		t.Fatal(err)
	}
	raw := decoded.GetRawInputContents()
	if len(raw) != 2 || !bytes.Equal(raw[0], big) || !bytes.Equal(raw[1], []byte{1}) {
		t.Fatalf("decoded raw_input_contents of %d entries, want the 2 sent", len(raw))
	}
	if &raw[0][0] == &b[len(b)-len(big)-3] {
		t.Error("raw_input_contents alias the gRPC buffer, which grpc-go reuses")
	}
	if got := recyclable(decoded); len(got) != 2 || &got[0][0] != &raw[0][0] {
		t.Errorf("recyclable(decoded request) = %d buffers, want its 2", len(got))
	}
	if got := recyclable(decoded); got != nil {
		t.Error("a decoded request's buffers were recyclable twice")
	}
	local := &inference.ModelInferRequest{RawInputContents: [][]byte{big}}
	if got := recyclable(local); got != nil {
		t.Error("the buffers of a request made in this process were recyclable")
	}
	// A request too small to hold a buffer worth recycling goes through the proto codec.
	sb, _ := proto.Marshal(&inference.ModelInferRequest{ModelName: "m", RawInputContents: [][]byte{{1, 2}}})
	small := &inference.ModelInferRequest{}
	if err := newInferCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(sb)}, small); err != nil || small.GetModelName() != "m" {
		t.Fatalf("small request decoded as %v, %v", small, err)
	}
	if got := recyclable(small); got != nil {
		t.Error("the buffers of a small request were recyclable")
	}
	// Other messages go through the proto codec.
	var md inference.ModelMetadataRequest
	mb, _ := proto.Marshal(&inference.ModelMetadataRequest{Name: "m"})
	if err := newInferCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(mb)}, &md); err != nil || md.GetName() != "m" {
		t.Errorf("ModelMetadataRequest decoded as %v, %v", &md, err)
	}
}
