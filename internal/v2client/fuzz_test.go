package v2client

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/inference"
)

// restBody is a JSON header followed by binary data, as an upstream sends it with the
// binary tensor data extension; it returns the header length to send along.
func restBody(header string, bin ...byte) (string, []byte) {
	return strconv.Itoa(len(header)), append([]byte(header), bin...)
}

// FuzzDecodeREST feeds DecodeREST arbitrary answers. A server (a remote backend's
// upstream) is another process, so what it sends is input like any request: it may be
// refused with an error, never crash the client, and every output accepted is a valid
// tensor.
func FuzzDecodeREST(f *testing.F) {
	f.Add("", []byte(`{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1,2.5]}]}`))
	f.Add("", []byte(`{"outputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":["abc"]}]}`))
	hlen, body := restBody(`{"outputs":[{"name":"y","datatype":"INT8","shape":[2],"parameters":{"binary_data_size":2}}]}`, 1, 2)
	f.Add(hlen, body)
	hlen, body = restBody(`{"outputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]}`, 1, 0, 0, 0, 'x')
	f.Add(hlen, body)
	f.Add("-1", []byte(`{}`))
	f.Fuzz(func(t *testing.T, hlen string, body []byte) {
		resp, err := DecodeREST(hlen, body)
		if err != nil {
			return
		}
		for _, o := range resp.Outputs {
			if err := o.Validate(); err != nil {
				t.Fatalf("accepted an invalid output %q: %v", o.Name, err)
			}
		}
	})
}

// FuzzDecodeGRPC does the same for ModelInferResponse messages off the wire.
func FuzzDecodeGRPC(f *testing.F) {
	for _, r := range []*inference.ModelInferResponse{
		{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "FP32", Shape: []int64{1}}}, RawOutputContents: [][]byte{{0, 0, 128, 63}}},
		{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "INT32", Shape: []int64{2}, Contents: &inference.InferTensorContents{IntContents: []int32{1, 2}}}}},
		{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "s", Datatype: "BYTES", Shape: []int64{1}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("hi")}}}}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		var resp inference.ModelInferResponse
		if proto.Unmarshal(wire, &resp) != nil {
			return
		}
		out, err := DecodeGRPC(&resp)
		if err != nil {
			return
		}
		for _, o := range out.Outputs {
			if err := o.Validate(); err != nil {
				t.Fatalf("accepted an invalid output %q: %v", o.Name, err)
			}
		}
	})
}
