package v2grpc

import (
	"runtime"
	"slices"
	"sync"
	"weak"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/shm"
)

// rawInputContentsField is ModelInferRequest's raw_input_contents field number.
const rawInputContentsField = 7

// inferCodec is grpc-go's proto codec, except that it copies a ModelInferRequest's
// raw_input_contents into buffers recycled from answered requests (shm.Buffer), where
// protobuf copies them into fresh ones: at 16 MiB that copy faulted in new pages, 18%
// of the server's CPU, and the garbage made the collector run every few requests
// (server CPU per 16 MiB identity_fp32 request 34-40 -> 21-23 ms). A message too small
// to hold an input worth recycling goes through the proto codec as it is.
type inferCodec struct{ encoding.CodecV2 }

func newInferCodec() inferCodec { return inferCodec{encoding.GetCodecV2(protocodec.Name)} }

// Unmarshal decodes data into v.
func (c inferCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*inference.ModelInferRequest)
	if !ok || data.Len() < shm.MinPooled { // no input worth recycling
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	pooled, err := unmarshalInfer(buf.ReadOnlyData(), req)
	if err == nil && pooled {
		markPooled(req)
	}
	return err
}

// unmarshalInfer is proto.Unmarshal(b, req) with raw_input_contents copied into
// shm.Buffer's buffers, reporting whether any is large enough to be recycled. The
// other fields are merged in, a run between two raw_input_contents entries at a time,
// as unmarshalling the whole merges them.
func unmarshalInfer(b []byte, req *inference.ModelInferRequest) (pooled bool, err error) {
	proto.Reset(req)
	merge := proto.UnmarshalOptions{Merge: true}
	var raw [][]byte
	start := 0 // of the run of other fields
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if m < 0 {
			return false, protowire.ParseError(m)
		}
		if num == rawInputContentsField && typ == protowire.BytesType {
			if err := merge.Unmarshal(b[start:i], req); err != nil {
				return false, err
			}
			v, _ := protowire.ConsumeBytes(b[i+n:])
			in := shm.Buffer(int64(len(v)))
			copy(in, v)
			raw = append(raw, in)
			pooled = pooled || len(in) >= shm.MinPooled
			start = i + n + m
		}
		i += n + m
	}
	if err := merge.Unmarshal(b[start:], req); err != nil {
		return false, err
	}
	req.RawInputContents = raw
	return pooled, nil
}

// pooled holds the requests inferCodec decoded: only their raw_input_contents may be
// recycled, as a request made in this process (a test's, an embedder's) owns its
// buffers. The keys are weak, and an entry goes with its request, answered or not.
var pooled sync.Map // weak.Pointer[inference.ModelInferRequest] -> struct{}

func markPooled(req *inference.ModelInferRequest) {
	k := weak.Make(req)
	pooled.Store(k, struct{}{})
	runtime.AddCleanup(req, func(k weak.Pointer[inference.ModelInferRequest]) { pooled.Delete(k) }, k)
}

// recyclable is req's raw_input_contents if inferCodec decoded req, they have not been
// taken before and one is worth recycling, else nil. The last is checked first: a small
// request costs no weak pointer.
func recyclable(req *inference.ModelInferRequest) [][]byte {
	raw := req.GetRawInputContents()
	if !slices.ContainsFunc(raw, func(b []byte) bool { return len(b) >= shm.MinPooled }) {
		return nil
	}
	if _, ok := pooled.LoadAndDelete(weak.Make(req)); ok {
		return raw
	}
	return nil
}
